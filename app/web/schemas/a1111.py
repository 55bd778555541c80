"""AUTOMATIC1111's web UI API as this server speaks it: txt2img, progress, interrupt, png-info and what clients read
when they connect (sd-models, samplers, schedulers, options).

Like A1111 itself, txt2img ignores fields it does not know (clients send dozens: hires fix, face restoration,
scripts); the fields it does know are checked, and a value this model cannot honour (another sampler or size,
hires fix) is a 422 naming the field.
"""

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.service.imaging import SAMPLER_NAMES
from app.service.jobs import MAX_SEED
from app.web.middleware import MAX_BODY_BYTES
from app.web.schemas.common import (
    SCENE_PROMPT_RULES,
    SERVED_LIMIT,
    Eta,
    GuidanceScale,
    NegativePrompt,
    Rule,
    ScenePrompt,
    Steps,
    Strict,
    known_words,
    limit_error,
    only,
    seeds_fit,
    steps_limit_error,
)
from app.web.schemas.generation import GenerateRequest
from app.world.prompts import parse_prompt

# A1111's name of each sampler we have, and the aliases it answers to (its own, and ours).
SAMPLER_ALIASES = {"DPM++ 2M": ("k_dpmpp_2m", "dpmpp_2m"), "DDIM": ("ddim",), "DDPM": ("ddpm",)}
SAMPLER_IDS = {name: ours for ours, name in SAMPLER_NAMES.items()} | {
    alias: ours for ours, name in SAMPLER_NAMES.items() for alias in SAMPLER_ALIASES[name]}
A1111Sampler = Literal[tuple(SAMPLER_IDS)]
SCHEDULERS = ("automatic", "Automatic")  # the schedule the model was trained on; no other
SAMPLER_UNKNOWN = ("sampler '{value}' is not served: this model samples with DPM++ 2M, DDIM or DDPM "
                   "(GET /sdapi/v1/samplers)")

SEEDS_FIT, _seeds_fit = seeds_fit("batch_size x n_iter", "image i uses seed + i")
SIZE_SERVED = Rule("size_unavailable", "width and height must be the model's image side, the `resolution` of "
                                       "GET /api/v1/model (64 for the trained model); absent = it")
IMAGES_SERVED = Rule("images_per_request", "batch_size x n_iter images at most, this server's "
                                           "DIFFUSION_LAB_MAX_BATCH")
SAMPLER_INDEX = Rule("sampler_unknown", "sampler_index, the old name of sampler_name, is read when sampler_name is "
                                        "absent, and must then be one of its names")
NO_HIRES = Rule("hires_unavailable", "enable_hr must be false: the model draws only its own size, there is no "
                                     "hires fix")


class Txt2ImgRequest(Strict):
    """POST /sdapi/v1/txt2img: the fields this model honours; others are ignored, as A1111 ignores unknown ones."""

    model_config = ConfigDict(extra="ignore")
    RULES = (*SCENE_PROMPT_RULES, SEEDS_FIT, SIZE_SERVED, IMAGES_SERVED, SAMPLER_INDEX, NO_HIRES)

    prompt: ScenePrompt = ""
    negative_prompt: NegativePrompt = ""
    steps: Steps = 20
    cfg_scale: GuidanceScale = Field(5.0, description="Guidance scale s of EQ MM3.4 (this server's default, 5, draws "
                                                      "its shapes best; A1111's is 7)")
    sampler_name: A1111Sampler | None = Field(None, description="DPM++ 2M (default), DDIM or DDPM, or an alias "
                                                                "GET /sdapi/v1/samplers lists")
    sampler_index: str | None = Field(None, max_length=64, description=SAMPLER_INDEX.text)
    scheduler: Literal[SCHEDULERS] | None = Field(None, description="automatic: the schedule the model was "
                                                                    "trained on")
    batch_size: int = Field(1, ge=1, json_schema_extra={SERVED_LIMIT: "max_batch"},
                            description=f"Images sampled together. {IMAGES_SERVED.text}")
    n_iter: int = Field(1, ge=1, json_schema_extra={SERVED_LIMIT: "max_batch"},
                        description=f"Batches; here sampled as one. {IMAGES_SERVED.text}")
    seed: int = Field(-1, ge=-1, le=MAX_SEED, description=f"Seed of image 0 (image i uses seed + i); -1 = random; "
                                                          f"{SEEDS_FIT.text}")
    width: int | None = Field(None, ge=1, le=8192, description=SIZE_SERVED.text)
    height: int | None = Field(None, ge=1, le=8192, description=SIZE_SERVED.text)
    eta: Eta | None = Field(None, description="DDIM's stochasticity (A1111's eta); the other samplers ignore it")
    enable_hr: bool = Field(False, description=NO_HIRES.text)
    send_images: bool = Field(True, description="Whether the answer carries the images")

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_prompt))
    _seeds = field_validator("seed")(_seeds_fit)
    _sampler = field_validator("sampler_name", mode="before")(only(SAMPLER_IDS, "sampler_unknown", SAMPLER_UNKNOWN))
    _scheduler = field_validator("scheduler", mode="before")(only(
        SCHEDULERS, "scheduler_unknown", "scheduler '{value}' is not served: the model samples on the schedule it "
                                         "was trained with, 'automatic'"))

    @field_validator("sampler_index")
    @classmethod
    def _old_sampler_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("sampler_name", "") is None and value not in SAMPLER_IDS:
            raise SAMPLER_INDEX.error(SAMPLER_UNKNOWN, value=value[:64])
        return value

    @property
    def images(self) -> int:
        return self.batch_size * self.n_iter

    def limit_errors(self, max_steps: int, max_batch: int, resolution: int) -> list[dict]:
        """The caps the server's settings put on steps and images, and the model's one size (no hires fix), as
        pydantic-shaped errors."""
        errors = steps_limit_error(self.steps, max_steps)
        for field in ("batch_size", "n_iter"):
            errors += limit_error(field, getattr(self, field), max_batch, "this server's DIFFUSION_LAB_MAX_BATCH")
        if not errors and self.images > max_batch:
            errors.append({"type": IMAGES_SERVED.type, "loc": ("n_iter",), "input": self.n_iter,
                           "msg": f"batch_size x n_iter is {self.images} images; this server's "
                                  f"DIFFUSION_LAB_MAX_BATCH allows {max_batch}"})
        for field in ("width", "height"):
            if getattr(self, field) not in (None, resolution):
                errors.append({"type": SIZE_SERVED.type, "loc": (field,), "input": getattr(self, field),
                               "msg": f"this model draws only {resolution}x{resolution} images; set width and "
                                      f"height to {resolution}"})
        if self.enable_hr:
            errors.append({"type": NO_HIRES.type, "loc": ("enable_hr",), "input": True, "msg": NO_HIRES.text})
        return errors

    def sampler(self) -> str:
        """Our sampler: sampler_name's, else sampler_index's, else the default."""
        return SAMPLER_IDS[self.sampler_name or self.sampler_index or "DPM++ 2M"]

    def generate_request(self) -> GenerateRequest:
        """The same request in /api/v1/generate's words: the n_iter batches are one batch, image i of seed + i, as
        A1111 numbers them."""
        return GenerateRequest(prompt=self.prompt, negative_prompt=self.negative_prompt, steps=self.steps,
                               guidance_scale=self.cfg_scale, sampler=self.sampler(), eta=self.eta or 0.0,
                               batch_size=self.images, seed=None if self.seed < 0 else self.seed)


class Txt2ImgInfo(BaseModel):
    """What txt2img's `info` string holds (JSON), as A1111 writes it."""

    prompt: str
    all_prompts: list[str]
    negative_prompt: str
    all_negative_prompts: list[str]
    seed: int = Field(description="The seed of image 0 (drawn when the request said -1)")
    all_seeds: list[int]
    subseed: int = -1
    all_subseeds: list[int]
    subseed_strength: float = 0.0
    width: int
    height: int
    sampler_name: str
    cfg_scale: float
    steps: int
    batch_size: int
    n_iter: int
    restore_faces: bool = False
    sd_model_name: str
    sd_model_hash: str
    seed_resize_from_w: int = -1
    seed_resize_from_h: int = -1
    denoising_strength: float | None = None
    extra_generation_params: dict[str, Any] = {}
    index_of_first_image: int = 0
    infotexts: list[str] = Field(description="Each image's `parameters` chunk, as written into its PNG")
    styles: list[str] = []
    job_timestamp: str = Field(description="When the job ended, YYYYmmddHHMMSS (UTC)")
    clip_skip: int = 1
    is_using_inpainting_conditioning: bool = False
    interrupted: bool = Field(False, description="True when POST /sdapi/v1/interrupt stopped the job (no images)")
    version: str

    @classmethod
    def of(cls, req: Txt2ImgRequest, seeds: list[int], seed: int, side: int, sampler_name: str, cfg_scale: float,
           steps: int, model_name: str, model_hash: str, infotexts: list[str], interrupted: bool,
           version: str) -> "Txt2ImgInfo":
        """A1111's record of a run: the request's prompts once per image, the seeds used, the model, now."""
        return cls(prompt=req.prompt, all_prompts=[req.prompt] * len(seeds), negative_prompt=req.negative_prompt,
                   all_negative_prompts=[req.negative_prompt] * len(seeds), seed=seed, all_seeds=seeds,
                   all_subseeds=[-1] * len(seeds), width=side, height=side, sampler_name=sampler_name,
                   cfg_scale=cfg_scale, steps=steps, batch_size=req.batch_size, n_iter=req.n_iter,
                   sd_model_name=model_name, sd_model_hash=model_hash, infotexts=infotexts,
                   job_timestamp=time.strftime("%Y%m%d%H%M%S", time.gmtime()), interrupted=interrupted,
                   version=version)


class Txt2ImgResponse(BaseModel):
    images: list[str] = Field(description="PNG files, base64, each with its `parameters` chunk and XMP packet; empty "
                                          "when the job was interrupted or send_images was false")
    parameters: dict[str, Any] = Field(description="The request as it was read")
    info: str = Field(description="JSON (Txt2ImgInfo): the seeds, the infotexts, the model")


class ProgressQuery(Strict):
    IN_QUERY = True

    skip_current_image: bool = Field(False, description="Leave out (and do not ask for) the x̂0 preview")


class ProgressState(BaseModel):
    skipped: bool = False
    interrupted: bool
    job: str = Field(description="'txt2img' while the caller has a job, else ''")
    job_count: int = Field(description="The caller's jobs, running or waiting")
    job_no: int = 0
    sampling_step: int
    sampling_steps: int


class ProgressResponse(BaseModel):
    """The caller's job (its client key, as the fair queue knows it): no one else's is visible."""

    progress: float = Field(description="Steps done / steps of the caller's running job; 0 when it has none")
    eta_relative: float = Field(description="Seconds of sampling left, at the mean step time so far")
    state: ProgressState
    current_image: str | None = Field(description="The x̂0 preview (PNG, base64) decoded at the step after the "
                                                  "previous progress request asked for it; null before")
    textinfo: str | None = Field(description="'waiting in the queue' or 'sampling', when there is a job")


class Interrupted(BaseModel):
    interrupted: int = Field(description="How many of the caller's jobs were stopped")


IMAGE_INVALID = Rule("image_invalid", "image must be a PNG file in base64 (a data: URL prefix is allowed)")


class PngInfoRequest(Strict):
    RULES = (IMAGE_INVALID,)

    # A request body is at most MAX_BODY_BYTES: base64 is one byte a character, and the cap leaves room for the JSON
    # around it, so a value one past the cap is this field's 422, not the body's 413.
    image: str = Field(max_length=MAX_BODY_BYTES - 1024, pattern=r"^(data:image/[a-z]+;base64,)?[A-Za-z0-9+/]*={0,2}$",
                       description=IMAGE_INVALID.text)


class PngInfoResponse(BaseModel):
    info: str = Field(description="The `parameters` text; '' when the PNG has none")
    items: dict[str, Any] = Field(description="The PNG's other text chunks (the XMP packet among them)")
    parameters: dict[str, Any] = Field(description="The text read as A1111 reads it: Prompt, Negative prompt, Steps, "
                                                   "Sampler, CFG scale, Seed, Size-1, Size-2, ...")


class SdModel(BaseModel):
    title: str
    model_name: str
    hash: str
    sha256: str | None = None
    filename: str
    config: str | None = None


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, Any] = {}


class SchedulerItem(BaseModel):
    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float = -1
    need_inner_model: bool = False


class A1111Options(BaseModel):
    """The options clients read at connect (read-only here: one model, one VAE)."""

    sd_model_checkpoint: str | None = Field(description="The model's title in GET /sdapi/v1/sd-models; null before "
                                                        "it is loaded")
    sd_checkpoint_hash: str | None
    sd_vae: str = "Automatic"
    CLIP_stop_at_last_layers: int = 1
    samples_format: str = "png"
    eta_ddim: float = 0.0
    live_previews_enable: bool = True


class A1111Error(BaseModel):
    """A1111's refusal body (its API middleware's); a bad field is a 422 in FastAPI's shape instead."""

    error: str
    detail: str
    body: str
    errors: str
