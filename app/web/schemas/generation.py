"""Text-to-image generation: POST /generate's request and its images."""

from pydantic import BaseModel, Field, field_validator, model_serializer

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
)
from app.web.schemas.families import (
    DIFFUSION,
    GUIDANCE_DEFAULTS,
    GUIDANCE_SCALE_TEXT,
    KNOB_FAMILIES,
    KNOB_FAMILY_RULE,
    FamilyField,
    Rounds,
    Temperature,
    TopK,
    knob_field,
    knob_fits_family,
    knob_limit_errors,
)
from app.world.prompts import parse_prompt

# ---------------------------------------------------------------- text-to-image generation (§3.3, EQ MM3.4)

SEEDS_FIT, _seeds_fit = seeds_fit("batch_size", "image i uses seed + i")


class GenerateRequest(Strict):
    """One text-to-image request to one family; the settings-dependent caps (steps, batch, the codebook) are checked
    by limit_errors()."""

    RULES = (*SCENE_PROMPT_RULES, SEEDS_FIT, GUIDANCE_METHOD_RULE, KNOB_FAMILY_RULE)

    prompt: ScenePrompt
    negative_prompt: NegativePrompt = ""
    family: FamilyField = DIFFUSION  # before the knobs: their validator reads it
    steps: Steps = knob_field(Steps, 20, "steps")
    guidance_scale: GuidanceScale = Field(GUIDANCE_DEFAULTS[DIFFUSION], description=GUIDANCE_SCALE_TEXT)
    guidance_rescale: GuidanceRescale = knob_field(GuidanceRescale, 0.0, "guidance_rescale")
    sampler: Sampler = knob_field(Sampler, "dpmpp_2m", "sampler")
    eta: Eta = knob_field(Eta, 0.0, "eta")
    guidance_method: GuidanceMethod = knob_field(GuidanceMethod, "cfg", "guidance_method")
    temperature: Temperature = 1.0
    top_k: TopK = 0
    rounds: Rounds = 8
    batch_size: int = Field(1, ge=1, json_schema_extra={SERVED_LIMIT: "max_batch"},
                            description="Images to draw; at most the server's DIFFUSION_LAB_MAX_BATCH")
    seed: Seed | None = Field(None, description="Seed of image 0 (image i starts from the noise of seed + i); "
                                                f"absent = random; {SEEDS_FIT.text}")

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_prompt))
    _seeds = field_validator("seed")(_seeds_fit)
    _knobs = field_validator(*KNOB_FAMILIES)(knob_fits_family)  # before _method: a token family's method is refused
    _method = field_validator("guidance_method")(guidance_method_fits)

    def limit_errors(self, max_steps: int, max_batch: int, codebook_size: int | None = None) -> list[dict]:
        """Errors shaped like pydantic's for the caps the server's settings put on steps (diffusion's) and
        batch_size, and the loaded codebook's size on top_k (a token family's, when given)."""
        return knob_limit_errors(self.family, self.steps, max_steps, self.top_k, codebook_size) + limit_error(
            "batch_size", self.batch_size, max_batch, "this server's DIFFUSION_LAB_MAX_BATCH")


class GenerateParameters(GenerateRequest):
    """The request as it was run: every default filled in (the family's own), and the seed that was used. The knobs
    of other families are left out, so the parameters, sent back, draw the same images."""

    steps: Steps | None = Field(None, description="Denoising steps (diffusion; absent for the token families)")
    guidance_rescale: GuidanceRescale | None = Field(None, description="Diffusion's guidance rescale")
    sampler: Sampler | None = Field(None, description="Diffusion's sampler")
    eta: Eta | None = Field(None, description="Diffusion's DDIM eta")
    guidance_method: GuidanceMethod | None = Field(None, description="Diffusion's guidance method")
    temperature: Temperature | None = Field(None, description="The token families' temperature")
    top_k: TopK | None = Field(None, description="The token families' top-k (0 = every code)")
    rounds: Rounds | None = Field(None, description="The masked family's rounds")
    seed: Seed = Field(description="Seed of image 0 (image i starts from the noise of seed + i)")

    @model_serializer(mode="wrap")
    def _used_knobs_only(self, handler):  # unannotated: the schema stays the fields'
        return {name: value for name, value in handler(self).items() if value is not None or name not in KNOB_FAMILIES}


class GeneratedImage(BaseModel):
    """One image of the batch."""

    png_base64: str = Field(description="The PNG file, base64; its 'parameters' text chunk holds the settings")
    seed: int = Field(description="The seed of this image's starting noise")
    width: int = Field(description="Pixels")
    height: int = Field(description="Pixels")


class GenerateTimings(Timings):
    """Where the time went: the queue, sampling, decoding and encoding."""

    sampling_s: float = Field(description="The denoising loop, or drawing the tokens")
    decode_s: float = Field(description="Decoding: the VAE's of the latents, or the VQ decoder's of the tokens")
    encode_s: float = Field(description="PNG encoding")
    network_forwards: int = Field(description="Network forwards one after another (each with the conditional and "
                                              "unconditional rows batched as one): diffusion's steps, the "
                                              "autoregressive family's one per token, the masked family's rounds")


class GenerateResult(BaseModel):
    """The images with everything needed to reproduce them."""

    images: list[GeneratedImage]
    prompt_canonical: str = Field(description="The caption the model was conditioned on ('' = unconditional)")
    negative_prompt_canonical: str = Field(description="The caption of the unconditional branch")
    parameters: GenerateParameters
    timings: GenerateTimings
    model_id: str = Field(description="Short SHA-256 of the family's weights files")
    device: str = Field(description="Where the model runs, e.g. cpu or cuda:0")
