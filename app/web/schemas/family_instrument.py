"""Chapter §3.4's families on this server: which are loaded, the judge on a picture, the autoregressive model's
likelihood of a token grid (EQ MM3.5), the tokenizer's codebook beside the VAE, and the cost against N timed."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.lab.family_cost import FULL_DIFFUSION_MAX_TOKENS, LINEAR_BAND, REPEATS, TOKEN_COUNTS
from app.lab.timing import MIN_ROUNDS
from app.service.imaging import decode_png, from_base64
from app.web.schemas.common import SCENE_PROMPT_RULES, Rule, ScenePrompt, Seed, Strict, known_words
from app.web.schemas.lab import JudgedAttributes
from app.web.schemas.timing import Remeasure, TimingConditions, TimingSpread
from app.world.prompts import parse_prompt

FamilyName = Literal["autoregressive", "masked", "diffusion"]
PNG_SIZE = "its length is bounded by the request body's limit"  # no maxLength: past one, a body is over the limit (413)
MAX_PNG_SIDE = 1024
MAX_TOKENS = 1024  # a 32 x 32 grid, the chapter's N; with the body's limit in mind (1,025 numbers fit in it)

PNG_INVALID = Rule("png_invalid", f"png_base64 must be a base64 PNG file of at most {MAX_PNG_SIDE} pixels a side")
SOURCE_NEEDS = Rule("source_needs", "png_base64 is sent with source 'image' and tokens with source 'tokens', each "
                                    "only then")
IMAGE_SIZE = Rule("image_size", "the image must be as large as the tokenizer's images (GET /instruments/families "
                                "says how large)")
TOKEN_COUNT = Rule("token_count", "tokens must hold one code per token of the loaded model's grid (N)")
TOKEN_RANGE = Rule("token_range", "every token must be a code of the loaded codebook, 0 to K - 1")
_NEEDS = {"png_base64": "image", "tokens": "tokens"}


def png_image(text: str):
    """A base64 PNG -> uint8 (H, W, 3); ValueError in words otherwise."""
    try:
        data = from_base64(text)
    except ValueError:
        raise ValueError("not base64") from None
    return decode_png(data, MAX_PNG_SIDE)


# ---------------------------------------------------------------- what is loaded


class FamilySize(BaseModel):
    """One family's network as loaded."""

    model_config = ConfigDict(from_attributes=True)

    resolution: int = Field(description="Image side, pixels")
    grid: int = Field(description="Tokens per side (diffusion: the DiT's patch grid)")
    tokens: int = Field(description="N, tokens per image")
    width: int
    depth: int
    heads: int
    parameters: int = Field(description="The transformer's parameters (the caption encoder and decoders apart)")
    codebook_size: int | None = Field(description="K, codes of the VQ tokenizer (token families)")
    downsample_factor: int = Field(description="Pixels per token side (token families) or per latent cell "
                                               "(diffusion)")
    patch: int | None = Field(description="Latent cells per token side (diffusion)")


class FamilyState(BaseModel):
    family: FamilyName
    loaded: bool
    reason: str | None = Field(description="Why it is not loaded; null when it is")
    model_id: str | None = Field(description="Short SHA-256 of its weights files")
    size: FamilySize | None
    sequential_forwards: int | None = Field(description="Network forwards one after another to draw one image at "
                                                        "the defaults: one per token, one per masked round, one "
                                                        "per denoising step")


class FamiliesResult(BaseModel):
    """The three families of chapter §3.4 as this server holds them."""

    families: list[FamilyState] = Field(description="autoregressive, masked, diffusion")
    rounds: int = Field(description="The masked sampler's default rounds")
    steps: int = Field(description="The diffusion sampler's default steps")


# ---------------------------------------------------------------- the judge


class FamilyJudgeRequest(Strict):
    """One picture and the prompt it was drawn for."""

    RULES = (*SCENE_PROMPT_RULES, PNG_INVALID)

    prompt: ScenePrompt
    png_base64: str = Field(description=f"The picture, a base64 PNG; {PNG_INVALID.text}; {PNG_SIZE}")

    _words = field_validator("prompt")(known_words(parse_prompt))

    @field_validator("png_base64")
    @classmethod
    def _a_png(cls, text: str) -> str:
        try:
            png_image(text)
        except ValueError as err:
            raise PNG_INVALID.error("png_base64 is {problem}", problem=str(err)) from None
        return text


class FamilyJudgeResult(BaseModel):
    prompt_canonical: str
    judged: JudgedAttributes = Field(description="One-shape prompts: what the judge reads; two-shape prompts: only "
                                                 "`clean` (exactly two clean shapes), the shapes are in `objects`")
    objects: list[JudgedAttributes] | None = Field(None, description="Two-shape prompts: each shape found")
    adherence: dict[str, float] = Field(description="1 or 0 per attribute the prompt names ('clean'; two shapes: "
                                                    "'count', 'binding', 'relation'), and 'all'")


# ---------------------------------------------------------------- EQ MM3.5


class LikelihoodRequest(Strict):
    """Which token grid to score: a scene drawn for the prompt, an image re-encoded by the tokenizer, or the tokens."""

    RULES = (*SCENE_PROMPT_RULES, PNG_INVALID, SOURCE_NEEDS, IMAGE_SIZE, TOKEN_COUNT, TOKEN_RANGE)

    prompt: ScenePrompt = ""
    source: Literal["scene", "image", "tokens"] = Field(
        "scene", description="'scene': the first scene of the grammar drawn from scene_seed that shows what the "
                             "prompt names; 'image': png_base64 encoded by the tokenizer (a decoded image need not "
                             "encode back to the tokens it was decoded from); 'tokens': the grid as given")
    scene_seed: Seed = Field(0, description="Seed of the scene drawn for source 'scene'")
    png_base64: str | None = Field(None, validate_default=True,
                                   description=f"Source 'image': the picture; {PNG_INVALID.text}; {IMAGE_SIZE.text}; "
                                               f"{PNG_SIZE}")
    tokens: list[Annotated[int, Field(ge=0)]] | None = Field(None, max_length=MAX_TOKENS, validate_default=True,
                                     description=f"Source 'tokens': codebook indices in raster order, row by row; "
                                                 f"{TOKEN_COUNT.text}; {TOKEN_RANGE.text}")

    _words = field_validator("prompt")(known_words(parse_prompt))

    @field_validator("png_base64", "tokens")
    @classmethod
    def _with_its_source(cls, value, info: ValidationInfo):
        wanted, source = _NEEDS[info.field_name], info.data.get("source")
        if source is not None and (value is None) == (source == wanted):
            said = "is required with" if value is None else "is only sent with"
            raise SOURCE_NEEDS.error(f"{info.field_name} {said} source '{wanted}' (source is {{source}})",
                                     source=source)
        if info.field_name == "png_base64" and value is not None:
            try:
                png_image(value)
            except ValueError as err:
                raise PNG_INVALID.error("png_base64 is {problem}", problem=str(err)) from None
        return value


class LikelihoodResult(BaseModel):
    """EQ MM3.5's factors of one token grid under the loaded autoregressive model, in bits."""

    source: str
    prompt_canonical: str = Field(description="The caption the model is conditioned on ('' = unconditional)")
    scene_caption: str | None = Field(description="Source 'scene': the full caption of the scene drawn")
    grid: int
    codebook_size: int = Field(description="K")
    tokens: list[list[int]] = Field(description="The grid scored (grid x grid), raster order")
    log2_probs: list[list[float]] = Field(description="log2 p(z_i | z_<i, c) of each token, bits (<= 0)")
    total_bits: float = Field(description="-Σ log2 p: the grid's code length under the model")
    bits_per_token: float
    uniform_bits: float = Field(description="N log2 K: the code length of a model that gives every code the same "
                                            "probability")
    unconditional_bits: float = Field(description="The same grid's code length under the empty caption")
    picture_png_base64: str = Field(description="The scene drawn or the image given (the tokens' decoding for "
                                                "source 'tokens')")
    decoded_png_base64: str = Field(description="What the scored tokens decode to")
    model_id: str


# ---------------------------------------------------------------- the codebook


class FamilyCeiling(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    psnr_db: float = Field(description="Mean PSNR of the one-shape reconstructions")
    pair_psnr_db: float = Field(description="... of the two-shape ones")
    judge_all: float = Field(description="Share of one-shape reconstructions the judge reads exactly as drawn")
    pair_judge_all: float = Field(description="... of two-shape ones the pair judge reads exactly as drawn")


class CodebookResult(BaseModel):
    """The VQ tokenizer's codebook on held-out scenes, and the ceiling its reconstructions set, beside the VAE."""

    model_config = ConfigDict(from_attributes=True)

    codebook_size: int = Field(description="K")
    code_dim: int
    grid: int
    tokens: int = Field(description="N per image")
    downsample_factor: int
    resolution: int
    codes_used: int = Field(description="Codes that at least one token of the held-out scenes takes")
    dead_codes: int
    perplexity: float = Field(description="exp(entropy) of the codes' frequencies: K when all are used alike")
    usage: float = Field(description="codes_used / K")
    tokenizer: FamilyCeiling
    vae: FamilyCeiling = Field(description="The diffusion model's continuous VAE on the same scenes, for comparison")
    vae_downsample_factor: int
    vae_latent_channels: int
    vae_resolution: int
    scenes: int = Field(description="Held-out scenes of each kind (one shape, two shapes)")
    seed: int = Field(description="Their seed (the validation seed no training run draws from)")
    measured_s: float
    measured_at: str
    cached: bool
    model_id: str = Field(description="The token family whose tokenizer was measured")
    vae_model_id: str


# ---------------------------------------------------------------- cost against N


class FamilyCostQuery(Strict):
    IN_QUERY = True

    repeats: int = Field(REPEATS, ge=MIN_ROUNDS, le=7, description="Interleaved rounds asked for (fewer when the "
                                                                   "time budget runs out, never under "
                                                                   f"{MIN_ROUNDS})")
    remeasure: Remeasure = False


class FamilyArchitecture(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    served: bool = Field(description="The loaded model's size; false: another's, as `note` says")
    note: str
    width: int
    depth: int
    heads: int
    codebook_size: int | None
    patch: int | None
    latent_channels: int | None


class FamilyCostPoint(TimingSpread):
    model_config = ConfigDict(from_attributes=True)

    tokens: int = Field(description="N")
    grid: int
    forwards: int = Field(description="Sequential network forwards per image")
    per_forward_ms: float = Field(description="median_ms / forwards")


class FamilyCostCurve(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    family: FamilyName
    architecture: FamilyArchitecture
    points: list[FamilyCostPoint] = Field(description=f"One per N in {list(TOKEN_COUNTS)}")
    exponent: float = Field(description="Time per image ~ N^k: the least-squares slope on log-log axes")
    local_exponents: list[float | None] = Field(description="The slope between each N and the one before")
    forwards_exponent: float = Field(description="Sequential forwards ~ N^k (1: they grow as N; 0: fixed)")


class FamilyGrowth(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    exponent: float
    band: tuple[float, float] = Field(description=f"Exponents read as roughly linear, {LINEAR_BAND}")
    verdict: Literal["roughly linear", "faster than linear", "slower than linear"]
    text: str


class FamilyCostResult(BaseModel):
    """One image's sampling time per family at each N, timed here with random weights of the served sizes."""

    model_config = ConfigDict(from_attributes=True)

    curves: list[FamilyCostCurve] = Field(description="autoregressive, masked, diffusion; diffusion above "
                                                f"{FULL_DIFFUSION_MAX_TOKENS} tokens estimated from one step")
    autoregressive: FamilyGrowth = Field(description="How the autoregressive time grew with N, read from the data")
    conditions: TimingConditions
    repeats: int
    rounds: int = Field(description="The masked sampler's rounds")
    steps: int = Field(description="The diffusion sampler's steps")
    sampler: str
    guidance_scale: float
    device: str
    torch_threads: int
    measured_s: float
    measured_at: str
    cached: bool
