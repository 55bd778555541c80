"""Text-to-image generation: POST /generate's request and its images."""

from pydantic import BaseModel, Field, field_validator

from app.web.schemas.common import (
    GUIDANCE_METHOD_RULE,
    SCENE_PROMPT_RULES,
    SERVED_LIMIT,
    Eta,
    GuidanceMethod,
    GuidanceRescale,
    GuidanceScale,
    NegativePrompt,
    Sampler,
    ScenePrompt,
    Seed,
    Steps,
    Strict,
    Timings,
    guidance_method_fits,
    known_words,
    limit_error,
    seeds_fit,
    steps_limit_error,
)
from app.world.prompts import parse_prompt

# ---------------------------------------------------------------- text-to-image generation (§3.3, EQ MM3.4)

SEEDS_FIT, _seeds_fit = seeds_fit("batch_size", "image i uses seed + i")


class GenerateRequest(Strict):
    """One text-to-image request; the settings-dependent caps (steps, batch) are checked by limit_errors()."""

    RULES = (*SCENE_PROMPT_RULES, SEEDS_FIT, GUIDANCE_METHOD_RULE)

    prompt: ScenePrompt
    negative_prompt: NegativePrompt = ""
    steps: Steps = 20
    guidance_scale: GuidanceScale = Field(5.0, description="Guidance scale s of EQ MM3.4: 0 unconditional, "
                                                           "1 conditional only")
    guidance_rescale: GuidanceRescale = 0.0
    sampler: Sampler = "dpmpp_2m"
    eta: Eta = 0.0
    guidance_method: GuidanceMethod = "cfg"
    batch_size: int = Field(1, ge=1, json_schema_extra={SERVED_LIMIT: "max_batch"},
                            description="Images to draw; at most the server's DIFFUSION_LAB_MAX_BATCH")
    seed: Seed | None = Field(None, description="Seed of image 0 (image i starts from the noise of seed + i); "
                                                f"absent = random; {SEEDS_FIT.text}")

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_prompt))
    _seeds = field_validator("seed")(_seeds_fit)
    _method = field_validator("guidance_method")(guidance_method_fits)

    def limit_errors(self, max_steps: int, max_batch: int) -> list[dict]:
        """Errors shaped like pydantic's for the caps the server's settings put on steps and batch_size."""
        return steps_limit_error(self.steps, max_steps) + limit_error(
            "batch_size", self.batch_size, max_batch, "this server's DIFFUSION_LAB_MAX_BATCH")


class GenerateParameters(GenerateRequest):
    """The request as it was run: every default filled in, and the seed that was used."""

    seed: Seed = Field(description="Seed of image 0 (image i starts from the noise of seed + i)")


class GeneratedImage(BaseModel):
    """One image of the batch."""

    png_base64: str = Field(description="The PNG file, base64; its 'parameters' text chunk holds the settings")
    seed: int = Field(description="The seed of this image's starting noise")
    width: int = Field(description="Pixels")
    height: int = Field(description="Pixels")


class GenerateTimings(Timings):
    """Where the time went: the queue, sampling, decoding and encoding."""

    sampling_s: float = Field(description="The denoising loop")
    decode_s: float = Field(description="VAE decoding of the latents")
    encode_s: float = Field(description="PNG encoding")


class GenerateResult(BaseModel):
    """The images with everything needed to reproduce them."""

    images: list[GeneratedImage]
    prompt_canonical: str = Field(description="The caption the model was conditioned on ('' = unconditional)")
    negative_prompt_canonical: str = Field(description="The caption of the unconditional branch")
    parameters: GenerateParameters
    timings: GenerateTimings
    model_id: str = Field(description="Short SHA-256 of the weights files")
    device: str = Field(description="Where the model runs, e.g. cpu or cuda:0")
