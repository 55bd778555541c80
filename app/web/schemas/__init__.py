"""Pydantic request/response models: the API's single source of truth.

Every numeric input is bounded here (an unbounded count is a denial of service waiting to happen).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.world.scenes import MAX_PROMPT_CHARS, PromptError, parse_prompt


class Strict(BaseModel):
    """Base for query models: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- latent vs pixel (MM3.1, EQ MM3.3)


class CompressionQuery(Strict):
    """The latent-vs-pixel instrument's inputs: image size, the VAE's f and c_z, the DiT's patch size."""

    height: int = Field(512, ge=8, le=4096, description="Image height H in pixels")
    width: int = Field(512, ge=8, le=4096, description="Image width W in pixels")
    f: int = Field(8, ge=1, le=64, validate_default=True, description="The VAE's downsampling factor f; must divide H and W")
    channels: int = Field(4, ge=1, le=64, description="Latent channels c_z")
    patch: int = Field(2, ge=1, le=16, validate_default=True, description="DiT patch side p, in latent cells; must divide H/f and W/f")

    @field_validator("f")
    @classmethod
    def _f_divides_image(cls, f: int, info: ValidationInfo) -> int:
        height, width = info.data.get("height"), info.data.get("width")
        if height is not None and width is not None and (height % f or width % f):
            raise ValueError(f"f = {f} must divide the height ({height}) and the width ({width})")
        return f

    @field_validator("patch")
    @classmethod
    def _patch_divides_latent(cls, patch: int, info: ValidationInfo) -> int:
        height, width, f = info.data.get("height"), info.data.get("width"), info.data.get("f")
        if None not in (height, width, f) and ((height // f) % patch or (width // f) % patch):
            raise ValueError(f"patch {patch} must divide the latent grid {height // f} x {width // f}")
        return patch


class CompressionTensor(BaseModel):
    """One tensor the denoiser works on at every step, cut into p x p patch tokens."""

    model_config = ConfigDict(from_attributes=True)

    shape: tuple[int, int, int] = Field(description="(height, width, channels)")
    values: int = Field(description="Number of values, H W C")
    grid_positions: int = Field(description="Spatial positions, H W")
    tokens: int = Field(description="DiT tokens, (H/p)(W/p)")
    values_per_token: int = Field(description="Values in one patch token, p^2 C")
    attention_pairs: int = Field(description="tokens^2: attention scores per head and layer")


class CompressionCurvePoint(BaseModel):
    """The latent's cost at one f (current c_z and patch), relative to pixel space."""

    model_config = ConfigDict(from_attributes=True)

    f: int
    ratio: float = Field(description="3 f^2 / c_z")
    values: int
    tokens: int
    attention_pairs: int
    values_fraction: float = Field(description="Latent values / pixel values")
    attention_fraction: float = Field(description="Latent attention pairs / pixel attention pairs")


class CompressionPreset(BaseModel):
    """A named (f, c_z) setting offered as a button."""

    model_config = ConfigDict(from_attributes=True)

    key: str
    name: str
    f: int
    channels: int
    note: str


class CompressionResult(BaseModel):
    """EQ MM3.3 worked out: the pixel tensor, the latent tensor, and what one denoising step costs in each."""

    model_config = ConfigDict(from_attributes=True)

    height: int
    width: int
    f: int
    channels: int
    patch: int
    pixel: CompressionTensor = Field(description="The RGB image, (H, W, 3)")
    latent: CompressionTensor = Field(description="The VAE latent, (H/f, W/f, c_z)")
    ratio: float = Field(description="EQ MM3.3: pixel values / latent values = 3 f^2 / c_z")
    grid_reduction: int = Field(description="Spatial positions, pixel / latent = f^2")
    token_reduction: int = Field(description="DiT tokens at the same patch size, pixel / latent = f^2")
    attention_reduction: int = Field(description="Attention pairs, pixel / latent = f^4")
    values_fraction: float = Field(description="Per-step values relative to pixel space, 1 / ratio")
    attention_fraction: float = Field(description="Per-step attention cost relative to pixel space, 1 / f^4")
    curve: list[CompressionCurvePoint] = Field(description="Every valid f for this image, c_z and patch")
    presets: list[CompressionPreset]


# ---------------------------------------------------------------- guidance scale (MM3.2, EQ MM3.4)

ColourClass = Literal["red", "orange", "yellow", "green", "blue", "purple"]
Point = tuple[float, float]


class GuidanceQuery(Strict):
    """The guidance instrument's inputs: a scale, a seed, the toy's prompt, and the worked example's two estimates."""

    scale: float = Field(
        7.5, ge=0, le=20, description="Guidance scale s of EQ MM3.4 (0: no prompt, 1: plain conditional)"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the starting noise x_T (the same for every scale)")
    samples: int = Field(256, ge=16, le=512, description="Number of samples drawn per scale")
    prompt_class: ColourClass = Field("red", description="The prompt: which colour blob of the toy data to ask for")
    eps_uncond: float = Field(0.20, ge=-10, le=10, description="Worked example: the unconditional noise estimate")
    eps_cond: float = Field(0.50, ge=-10, le=10, description="Worked example: the conditional noise estimate")


class GuidanceWorked(BaseModel):
    """EQ MM3.4 on one value: eps_uncond + s (eps_cond - eps_uncond)."""

    eps_uncond: float
    eps_cond: float
    direction: float = Field(description="eps_cond - eps_uncond, the conditional direction")
    guided: float = Field(description="The guided noise estimate at the requested scale")
    norm: float = Field(description="Its magnitude |guided|")


class GuidanceClass(BaseModel):
    """One blob of the toy data: a colour word of the scene grammar."""

    name: str
    mean: Point
    rgb: tuple[int, int, int]


class GuidanceArrow(BaseModel):
    """The conditional direction drawn as an arrow: unconditional samples' centroid -> conditional samples' centroid."""

    start: Point
    end: Point


class GuidanceCurve(BaseModel):
    """Adherence, diversity and the off-cloud share measured on a fixed grid of scales (same seed, same noise)."""

    scales: list[float]
    adherence: list[float]
    diversity: list[float]
    beyond_data: list[float]


class GuidanceSampler(BaseModel):
    """How the toy's samples are drawn."""

    name: str
    steps: int
    train_steps: int
    beta_start: float
    beta_end: float


class CfgRow(BaseModel):
    """One row of the chapter's CFG snippet: the guided vector at s and its L2 norm."""

    scale: float
    guided: list[float]
    norm: float


class CfgNormCurve(BaseModel):
    scales: list[float]
    norm: list[float]


class CfgSnippet(BaseModel):
    """The chapter's CFG snippet, computed: its example vectors, its table, the norm over s, the current s's row."""

    eps_uncond: list[float]
    eps_cond: list[float]
    direction: list[float]
    rows: list[CfgRow]
    current: CfgRow
    norm_curve: CfgNormCurve


class GuidanceResult(BaseModel):
    """EQ MM3.4 measured on a toy diffusion with an exact noise predictor (2-D mixture of six colour blobs)."""

    scale: float
    seed: int
    samples: int
    prompt_class: str
    regime: Literal["ignores the prompt", "conditional", "sweet spot", "over-saturated"]
    adherence: float = Field(description="Share of samples whose nearest class mean is the prompt's (0..1)")
    diversity: float = Field(description="RMS distance of the samples to their centroid, in latent units")
    beyond_data: float = Field(description="Share of samples outside every class's 99.9% radius (0..1)")
    chance_adherence: float = Field(description="Adherence of a sampler that ignores the prompt entirely, 1/K")
    worked_example: GuidanceWorked
    classes: list[GuidanceClass]
    class_std: float = Field(description="Standard deviation of every blob per axis, latent units")
    data_cloud_radius: float = Field(description="Radius holding 99.9% of a blob's data, latent units")
    uncond_points: list[Point] = Field(description="Samples at s = 0 (unconditional), from the same noise")
    guided_points: list[Point] = Field(description="Samples at the requested s")
    arrow: GuidanceArrow
    guided_centroid: Point
    curve: GuidanceCurve
    sampler: GuidanceSampler
    snippet: CfgSnippet


# ---------------------------------------------------------------- denoising walk (EQ MM3.1-3.2)


class DenoisingQuery(Strict):
    """The denoising walk's inputs: the chapter's first snippet with its defaults."""

    target_x: float = Field(1.5, ge=-3, le=3, description="First component of the target latent x0")
    target_y: float = Field(-0.8, ge=-3, le=3, description="Second component of the target latent x0")
    steps: int = Field(40, ge=2, le=1000, description="Number of steps T of the schedule and of the walk")
    beta_start: float = Field(1e-3, ge=1e-5, le=0.5, description="beta at t = 0 (linear schedule, EQ MM3.1)")
    beta_end: float = Field(0.08, ge=1e-5, le=0.5, validate_default=True, description="beta at t = T-1; must exceed beta_start")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of numpy's default_rng, as in the snippet")
    eps_error: float = Field(
        0.0, ge=0, le=1, description="Std of an error added to the oracle's noise estimate (0: the oracle)"
    )
    signal_fraction: float = Field(0.36, ge=0, le=1, description="An abar at which to evaluate EQ MM3.1's coefficients")

    @field_validator("beta_end")
    @classmethod
    def _end_above_start(cls, beta_end: float, info: ValidationInfo) -> float:
        start = info.data.get("beta_start")
        if start is not None and beta_end <= start:
            raise ValueError(f"must be larger than beta_start ({start})")
        return beta_end


class DenoisingSchedule(BaseModel):
    """The schedule against t = 0..T-1 (EQ MM3.1): beta_t, abar_t and the two coefficients."""

    t: list[int]
    beta: list[float]
    abar: list[float]
    sqrt_abar: list[float]
    sqrt_one_minus_abar: list[float]


class DenoisingPath(BaseModel):
    """The reverse walk in walk order (t = T-1 down to 0)."""

    t: list[int]
    x_t: list[Point] = Field(description="T+1 points: the starting noise x_T, then the latent after each step")
    x0_hat: list[Point] = Field(description="The clean latent implied at each step")
    eps_hat: list[Point] = Field(description="The noise predicted at each step")


class DenoisingForward(BaseModel):
    """EQ MM3.1 at one signal fraction abar: the two coefficients and a cloud of draws of x_t given x0."""

    abar: float
    sqrt_abar: float
    sqrt_one_minus_abar: float
    variance_check: float = Field(description="sqrt_abar^2 + sqrt_one_minus_abar^2 (always 1)")
    nearest_t: int = Field(description="The schedule's step whose abar_t is closest")
    nearest_abar: float
    cloud: list[Point]


class DenoisingResult(BaseModel):
    """The chapter's first snippet made live: an oracle denoiser walking a 2-D latent from noise to x0."""

    target: Point
    recovered: Point
    l2_error: float = Field(description="|recovered - target|, latent units")
    abar_start: float = Field(description="abar at t = T-1, where the walk starts")
    abar_end: float = Field(description="abar at t = 0, the last step")
    prior_kl: float = Field(description="KL(q(x_T | x0) || N(0, I)) in nats: how far the schedule ends from pure noise")
    steps: int
    seed: int
    eps_error: float
    schedule: DenoisingSchedule
    walk: DenoisingPath
    forward: DenoisingForward
    printout: list[str] = Field(description="The four lines the chapter's snippet prints")


# ---------------------------------------------------------------- frame coherence (MM3.3, EQ MM3.6)


class CoherenceQuery(Strict):
    """The frame-coherence instrument's inputs: how jointly frames are denoised, the clip, its spacetime patches."""

    coherence: float = Field(0.5, ge=0, le=1, description="0: every frame denoised on its own; 1: the clip denoised jointly")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the starting noise (the same noise at every coherence)")
    frames: int = Field(8, ge=2, le=64, description="Frames T_f in the clip (latent frames)")
    latent_height: int = Field(32, ge=1, le=256, description="Latent height H in cells")
    latent_width: int = Field(32, ge=1, le=256, description="Latent width W in cells")
    p_t: int = Field(1, ge=1, le=16, validate_default=True, description="Temporal patch size p_t in frames; must divide frames")
    p_h: int = Field(2, ge=1, le=16, validate_default=True, description="Patch height p_h in latent cells; must divide latent_height")
    p_w: int = Field(2, ge=1, le=16, validate_default=True, description="Patch width p_w in latent cells; must divide latent_width")

    @field_validator("p_t", "p_h", "p_w")
    @classmethod
    def _patch_divides_its_axis(cls, patch: int, info: ValidationInfo) -> int:
        axis, label = _PATCH_AXES[info.field_name]
        total = info.data.get(axis)
        if total is not None and total % patch:
            raise ValueError(f"{info.field_name} = {patch} must divide the {label} ({total})")
        return patch


_PATCH_AXES = {"p_t": ("frames", "frames"), "p_h": ("latent_height", "latent height"),
               "p_w": ("latent_width", "latent width")}


class CoherenceTokens(BaseModel):
    """EQ MM3.6: N = (T_f / p_t) (H / p_h)(W / p_w)."""

    model_config = ConfigDict(from_attributes=True)

    temporal: int = Field(description="T_f / p_t")
    spatial: int = Field(description="(H / p_h)(W / p_w) per temporal slice")
    total: int = Field(description="N, spacetime patches")


class CoherenceRegime(BaseModel):
    """A regime holds while the mean jump is below `upper` (frame sides per frame; null: no bound)."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    upper: float | None


class CoherenceJumpPoint(BaseModel):
    """The expected mean jump (frame sides per frame) at one coherence."""

    model_config = ConfigDict(from_attributes=True)

    coherence: float
    jump: float


class CoherenceCostPoint(BaseModel):
    """Attention cost at one clip length."""

    model_config = ConfigDict(from_attributes=True)

    frames: int
    tokens: int = Field(description="N")
    joint: int = Field(description="N^2 attention pairs")
    factorised: int = Field(description="T S^2 + S T^2 attention pairs")


class CoherenceResult(BaseModel):
    """A path denoised at the requested coherence, its flicker measured, and the clip priced by EQ MM3.6."""

    model_config = ConfigDict(from_attributes=True)

    coherence: float
    seed: int
    frames: int
    latent_height: int
    latent_width: int
    p_t: int
    p_h: int
    p_w: int
    x: list[float] = Field(description="Per frame: the object's x, 0..1 of the frame width")
    y: list[float] = Field(description="Per frame: the object's y, 0..1 of the frame height, 0 at the top")
    mean_jump: float = Field(description="Mean frame-to-frame distance, in frame sides per frame")
    mean_jump_cells: float = Field(description="The same in latent cells per frame")
    expected_jump: float = Field(description="The mean jump expected at this coherence for exact draws from the prior")
    jump_curve: list[CoherenceJumpPoint] = Field(description="expected_jump over coherence 0, 0.05, ..., 1")
    regime: Literal["smooth", "mostly coherent", "jittery", "flicker"]
    regimes: list[CoherenceRegime] = Field(description="The regimes' thresholds on the mean jump")
    tokens: CoherenceTokens
    joint_cost: int = Field(description="Joint space-time attention, N^2 pairs")
    factorised_cost: int = Field(description="Spatial then temporal attention, T S^2 + S T^2 pairs")
    factorised_saving: float = Field(description="joint_cost / factorised_cost")
    steps: int = Field(description="DDIM steps of the toy sampler")
    cost_curve: list[CoherenceCostPoint] = Field(description="Joint and factorised cost for clips of 2..64 frames")


# ---------------------------------------------------------------- text-to-image generation (§3.3, EQ MM3.4)

MAX_SEED = 2**31 - 1
GenerationSampler = Literal["dpmpp_2m", "ddim", "ddpm"]


def prompt_error_detail(err: PromptError) -> PydanticCustomError:
    """A PromptError as a pydantic error: the message lists the vocabulary, ctx carries it as a list."""
    kind = "prompt_unknown_words" if err.unknown_words else "prompt_invalid"
    # "message" goes last: pydantic fills "{name}" from ctx in order, and the user's words may contain braces.
    ctx = {"unknown_words": err.unknown_words, "vocabulary": err.vocabulary, "message": str(err)}
    return PydanticCustomError(kind, "{message}", ctx)


class GenerateRequest(Strict):
    """One text-to-image request; the settings-dependent caps (steps, batch) are checked by limit_errors()."""

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, examples=["a large red circle at the top left"],
                        description="What to draw, in the scene grammar's words; empty = unconditional")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS,
                                 description="The caption guidance steers away from (EQ MM3.4); empty = null caption")
    steps: int = Field(20, ge=1, le=1000, description="Denoising steps; at most the server's DIFFUSION_LAB_MAX_STEPS")
    guidance_scale: float = Field(5.0, ge=0, le=20, allow_inf_nan=False,
                                  description="Guidance scale s of EQ MM3.4: 0 unconditional, 1 conditional only")
    guidance_rescale: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                                    description="Pull the guided estimate's std back to the conditional one's; 0 = off")
    sampler: GenerationSampler = Field("dpmpp_2m", description="dpmpp_2m (default), ddim or ddpm")
    eta: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                       description="DDIM's stochasticity, 0 = deterministic; the other samplers ignore it")
    batch_size: int = Field(1, ge=1, le=64, description="Images to draw; at most the server's DIFFUSION_LAB_MAX_BATCH")
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="Seed of image 0 (image i starts from the noise of seed + i); absent = random")

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _known_words(cls, text: str) -> str:
        try:
            parse_prompt(text)
        except PromptError as err:
            raise prompt_error_detail(err) from None
        return text

    @field_validator("seed")
    @classmethod
    def _batch_seeds_fit(cls, seed: int | None, info: ValidationInfo) -> int | None:
        batch = info.data.get("batch_size")
        if seed is not None and batch is not None and seed + batch - 1 > MAX_SEED:
            raise ValueError(f"seed + batch_size - 1 must be at most {MAX_SEED} (image i uses seed + i)")
        return seed

    def limit_errors(self, max_steps: int, max_batch: int) -> list[dict]:
        """Errors shaped like pydantic's for the caps the server's settings put on steps and batch_size."""
        errors = []
        for field, cap, env in (("steps", max_steps, "MAX_STEPS"), ("batch_size", max_batch, "MAX_BATCH")):
            value = getattr(self, field)
            if value > cap:
                errors.append({"type": "less_than_equal", "loc": (field,), "input": value, "ctx": {"le": cap},
                               "msg": f"Input should be less than or equal to {cap} (this server's "
                                      f"DIFFUSION_LAB_{env})"})
        return errors


class GenerateParameters(GenerateRequest):
    """The request as it was run: every default filled in, and the seed that was used."""

    seed: int = Field(ge=0, le=MAX_SEED, description="Seed of image 0 (image i starts from the noise of seed + i)")


class GeneratedImage(BaseModel):
    """One image of the batch."""

    png_base64: str = Field(description="The PNG file, base64; its 'parameters' text chunk holds the settings")
    seed: int = Field(description="The seed of this image's starting noise")
    width: int = Field(description="Pixels")
    height: int = Field(description="Pixels")


class GenerateTimings(BaseModel):
    """Where the time went, in seconds (server side)."""

    queue_s: float = Field(description="Waiting for a free sampler thread")
    sampling_s: float = Field(description="The denoising loop")
    decode_s: float = Field(description="VAE decoding of the latents")
    encode_s: float = Field(description="PNG encoding")
    total_s: float = Field(description="From admission to the response, all of the above included")
    network_forwards: int = Field(description="Denoiser calls (conditional and unconditional batched as one)")


class GenerateResult(BaseModel):
    """The images with everything needed to reproduce them."""

    images: list[GeneratedImage]
    prompt_canonical: str = Field(description="The caption the model was conditioned on ('' = unconditional)")
    negative_prompt_canonical: str = Field(description="The caption of the unconditional branch")
    parameters: GenerateParameters
    timings: GenerateTimings
    model_id: str = Field(description="Short SHA-256 of the weights files")
    device: str = Field(description="Where the model runs, e.g. cpu or cuda:0")


# ---------------------------------------------------------------- live sampling stream (§3.3, EQ MM3.1)


class GenerateStreamQuery(GenerateRequest):
    """GET /generate/stream's query: a GenerateRequest, plus whether to send per-step previews."""

    previews: bool = Field(True, description="Send small PNGs of x_t, x̂0 (one VAE decode per step) and ε̂ each step")


class GenerateCheck(BaseModel):
    """A request that would be accepted, as the model will read it."""

    prompt_canonical: str = Field(description="The caption the model will be conditioned on ('' = unconditional)")
    negative_prompt_canonical: str = Field(description="The caption of the unconditional branch")


class StreamStart(BaseModel):
    """Event `start`: the job was admitted; everything needed to reproduce it."""

    id: str = Field(description="This request's id (uuid4), repeated in every event of the stream")
    parameters: GenerateParameters = Field(description="The request with defaults filled in and the seed used")
    total_steps: int
    prompt_canonical: str
    negative_prompt_canonical: str
    previews: bool = Field(description="Whether step events carry preview images")
    preview_seed: int = Field(description="Previews follow image 0 of the batch, the one drawn from this seed")
    latent_shape: list[int] = Field(description="[c_z, h, w] of one latent")
    resolution: int = Field(description="Image side in pixels")
    latent_preview: str = Field(description="How x_t and ε̂ previews map latent values to colours")


class StepPreviews(BaseModel):
    """Small PNGs (base64) of image 0 at one step."""

    x_t: str = Field(description="The noisy latent x_t itself (latent-size PNG; see start.latent_preview)")
    x0_hat: str = Field(description="The predicted clean sample x̂0 decoded by the VAE (image-size PNG)")
    eps_hat: str = Field(description="The guided noise estimate ε̂ (latent-size PNG, mapped like x_t)")


class StepEvent(BaseModel):
    """Event `step` of every stream, image or video: one denoising step done, where it is, and the time."""

    id: str = Field(description="The stream's id")
    index: int = Field(description="0-based step number (within its method, on the video stream)")
    total: int = Field(description="Steps of this run (of this method, on the video stream)")
    t: int = Field(description="Timestep of this step's input x_t")
    abar_t: float = Field(description="ᾱ_t of EQ MM3.1")
    sqrt_abar_t: float = Field(description="√ᾱ_t, the weight of the clean sample in x_t (EQ MM3.1)")
    sqrt_one_minus_abar_t: float = Field(description="√(1-ᾱ_t), the weight of the noise in x_t (EQ MM3.1)")
    elapsed_s: float = Field(description="Seconds since a worker picked the job up")
    remaining_s: float = Field(description="Estimated seconds of sampling left: mean time per step x steps left "
                                           "(every method of the run included)")


class StreamStep(StepEvent):
    """Event `step` of the image stream: the step, with previews of image 0."""

    previews: StepPreviews | None = Field(description="None when previews=false")


class StreamResult(GenerateResult):
    """Event `result`: the same payload as POST /generate, with the stream's id."""

    id: str


class StreamError(BaseModel):
    """Event `error`: the job failed after the stream started."""

    id: str
    status: int = Field(description="The HTTP status the REST endpoint would have answered: 503 (time limit, "
                                    "shutting down) or 500")
    detail: str


class GenerationLimits(BaseModel):
    """This server's caps on a generation request."""

    max_steps: int
    max_batch: int
    max_prompt_chars: int
    queue_size: int = Field(description="Jobs that may wait for a sampler thread")
    worker_threads: int = Field(description="Jobs that run at once")
    request_timeout_s: float = Field(description="Time limit of one job, queueing included")


class QueueState(BaseModel):
    """The sampler's load right now."""

    running: int
    waiting: int
    capacity: int = Field(description="worker_threads + queue_size: beyond this a request gets 429")


class ModelLive(BaseModel):
    """Facts about the model as this server holds it, measured now."""

    loaded: bool
    load_error: str | None = Field(description="Why the model is not loaded, when it is not")
    device: str | None
    model_id: str | None = Field(description="Short SHA-256 of the weights files")
    resolution: int | None = Field(description="Image side in pixels")
    parameters: dict[str, int] | None = Field(description="Parameter counts: vae, text_encoder, denoiser, total")
    samplers: list[str]
    vocabulary: list[str] = Field(description="The words a prompt may use (synonyms such as 'big' are accepted too)")
    limits: GenerationLimits
    queue: QueueState | None


class ModelCardResult(BaseModel):
    """The model card file written by `diffusion-lab evaluate`, and the live facts."""

    card_found: bool
    card_error: str | None = Field(description="Why there is no card, when there is none")
    card: dict[str, Any] | None = Field(description="models/model-card.json: name, architecture, training, "
                                                    "vocabulary, defaults, evaluation, generated_at, command")
    live: ModelLive
    video: "VideoModelSection | None" = Field(None, description="The video model (null when its files are absent)")


# ---------------------------------------------------------------- guidance lab on the real model (EQ MM3.4)

from app.lab import guidance as _lab  # noqa: E402  (its constants bound the requests below)

GridScale = Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)]
GridSeed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def _known_prompt(text: str) -> str:
    try:
        parse_prompt(text)
    except PromptError as err:
        raise prompt_error_detail(err) from None
    return text


def steps_limit_error(steps: int, max_steps: int) -> list[dict]:
    """A pydantic-shaped error when steps exceeds the server's DIFFUSION_LAB_MAX_STEPS, else none."""
    if steps <= max_steps:
        return []
    return [{"type": "less_than_equal", "loc": ("steps",), "input": steps, "ctx": {"le": max_steps},
             "msg": f"Input should be less than or equal to {max_steps} (this server's DIFFUSION_LAB_MAX_STEPS)"}]


class GridRequest(Strict):
    """A grid of guidance scales (columns) x seeds (rows): the same starting noise along each row."""

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, examples=["a large red circle at the top left"],
                        description="What to draw, in the scene grammar's words")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="The unconditional branch's caption")
    scales: list[GridScale] = Field(default_factory=lambda: list(_lab.GRID_SCALES), min_length=1,
                                    max_length=_lab.MAX_GRID_SCALES,
                                    description=f"Guidance scales s of EQ MM3.4, 0..20, at most "
                                                f"{_lab.MAX_GRID_SCALES}")
    seeds: list[GridSeed] | Annotated[int, Field(ge=1, le=_lab.MAX_GRID_SEEDS)] = Field(
        4, validate_default=True, description=f"The seeds of the rows (a list of at most {_lab.MAX_GRID_SEEDS}, no repeats), or how many "
                       "rows, seeded `seed`, `seed` + 1, ...")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="First seed when `seeds` is a count; absent = random")
    steps: int = Field(20, ge=1, le=1000, description="Denoising steps; at most the server's DIFFUSION_LAB_MAX_STEPS")
    sampler: GenerationSampler = Field("dpmpp_2m", description="dpmpp_2m (default), ddim or ddpm")

    _words = field_validator("prompt", "negative_prompt")(_known_prompt)

    @field_validator("seeds")
    @classmethod
    def _seed_list(cls, seeds, info: ValidationInfo):
        if isinstance(seeds, list):
            if not 1 <= len(seeds) <= _lab.MAX_GRID_SEEDS:
                raise ValueError(f"give 1 to {_lab.MAX_GRID_SEEDS} seeds, got {len(seeds)}")
            if len(set(seeds)) != len(seeds):
                raise ValueError("the seeds must differ (a repeated seed draws the same image twice)")
        rows, scales = (len(seeds) if isinstance(seeds, list) else seeds), len(info.data.get("scales") or [])
        if scales * rows > _lab.MAX_GRID_IMAGES:
            raise PydanticCustomError("grid_too_large", "{scales} scales x {rows} seeds = {images} images; at most "
                                      "{cap} per grid", {"scales": scales, "rows": rows, "images": scales * rows,
                                                         "cap": _lab.MAX_GRID_IMAGES})
        return seeds

    @field_validator("seed")
    @classmethod
    def _rows_fit(cls, seed: int | None, info: ValidationInfo) -> int | None:
        count = info.data.get("seeds")
        if seed is not None and isinstance(count, int) and seed + count - 1 > MAX_SEED:
            raise ValueError(f"seed + seeds - 1 must be at most {MAX_SEED} (row i uses seed + i)")
        return seed

    def seed_list(self, first: int) -> list[int]:
        """The rows' seeds: the list as given, or `seeds` consecutive ones from `first`."""
        return list(self.seeds) if isinstance(self.seeds, list) else [first + i for i in range(self.seeds)]


class JudgedAttributes(BaseModel):
    """What the program judge reads in one image (None: it cannot tell)."""

    shape: str | None
    colour: str | None
    size: str | None
    position: str | None
    clean: bool = Field(description="One flat shape in a palette colour on a light background")


class GridImage(BaseModel):
    seed: int
    png_base64: str = Field(description="The PNG file, base64")
    judged: JudgedAttributes


class GridColumn(BaseModel):
    """One guidance scale across the seeds, measured."""

    scale: float
    images: list[GridImage] = Field(description="One per seed, in the order of `seeds`")
    adherence: dict[str, float] = Field(description="Share of the images showing each attribute the prompt names, "
                                                    "'clean', and 'all' (every named attribute right and clean)")
    diversity_rms: float = Field(description="Mean pairwise RMS distance between the seeds' images, pixels in "
                                             "[0, 1] (app/evaluation/image.py pairwise_rms)")


class LabTimings(BaseModel):
    """Where the time went, in seconds."""

    queue_s: float = Field(description="Waiting for a sampler thread")
    sampling_s: float = Field(description="The batched denoising loop")
    total_s: float = Field(description="From admission to the response, judging and PNG encoding included")
    batch_jobs: int = Field(description="Jobs that shared the pipeline call (this one included)")
    network_forwards: int = Field(description="Denoiser calls")


class GridResult(BaseModel):
    """The grid: per scale column the images (same seed per row) and what was measured on them."""

    prompt_canonical: str
    negative_prompt_canonical: str
    seeds: list[int]
    steps: int
    sampler: str
    columns: list[GridColumn]
    timings: LabTimings
    model_id: str


class SweepRequest(Strict):
    """A small live version of the model card's guidance sweep: the card's first full prompts, a few seeds."""

    prompts: int = Field(4, ge=1, le=8, description="How many of the card's full prompts (app.evaluation.image.full_prompts)")
    seeds: int = Field(2, ge=2, le=4, description="Seeds per prompt (prompt i uses seeds i*seeds, ...), as the card")
    scales: list[GridScale] = Field(default_factory=lambda: list(_lab.SWEEP_SCALES), min_length=1, max_length=4,
                                    validate_default=True, description="Guidance scales s, at most 4")
    steps: int = Field(20, ge=1, le=1000, description="Denoising steps; at most the server's DIFFUSION_LAB_MAX_STEPS")
    sampler: GenerationSampler = "dpmpp_2m"

    @field_validator("scales")
    @classmethod
    def _bounded(cls, scales: list[float], info: ValidationInfo) -> list[float]:
        images = (info.data.get("prompts") or 0) * (info.data.get("seeds") or 0) * len(scales)
        if images > _lab.MAX_SWEEP_IMAGES:
            raise PydanticCustomError("sweep_too_large", "prompts x seeds x scales = {images} images; at most {cap}",
                                      {"images": images, "cap": _lab.MAX_SWEEP_IMAGES})
        return scales


class SweepPoint(BaseModel):
    scale: float
    adherence: dict[str, float] = Field(description="As in the card's guidance_sweep: per attribute, clean, all")
    diversity_rms: float = Field(description="Mean over prompts of the pairwise RMS distance across seeds")
    images: int


class SweepResult(BaseModel):
    """Adherence and diversity against s, measured live on a small sample (compare the card's full sweep)."""

    live: bool = Field(True, description="Always true: measured for this request, not read from the card")
    prompts: list[str]
    seeds: int
    steps: int
    sampler: str
    points: list[SweepPoint]
    timings: LabTimings
    model_id: str


class GuidanceInterval(Strict):
    """Where guidance applies, as fractions of the way from pure noise (0) to clean (1)."""

    start: float = Field(0.2, ge=0, le=1, allow_inf_nan=False, description="Guidance starts here")
    end: float = Field(0.8, ge=0, le=1, allow_inf_nan=False, description="and stops here (inclusive)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.start > self.end:
            raise ValueError(f"start ({self.start}) must not be after end ({self.end})")
        return self


class GuidanceAnatomyRequest(Strict):
    """One run taken apart at one step, and the same seed drawn with three ways of guiding."""

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, examples=["a large red circle at the top left"],
                        description="What to draw, in the scene grammar's words")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="The unconditional branch's caption")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="The seed of the starting noise (the same for every variant)")
    steps: int = Field(20, ge=1, le=1000, description="Denoising steps; at most the server's DIFFUSION_LAB_MAX_STEPS")
    sampler: GenerationSampler = "dpmpp_2m"
    guidance_scale: float = Field(5.0, ge=0, le=20, allow_inf_nan=False, description="s of EQ MM3.4")
    at_step: int | None = Field(None, ge=0, le=999, description="The step to take apart (0 = the noisiest); "
                                                                 "absent = the middle one; below `steps`")
    variant: Literal["cfg", "cfg_rescale", "cfg_interval"] = Field("cfg", description="Whose step is taken apart")
    rescale: float = Field(0.7, ge=0, le=1, allow_inf_nan=False, description="φ of the cfg_rescale variant")
    interval: GuidanceInterval = Field(default_factory=GuidanceInterval,
                                       description="Where the cfg_interval variant guides")

    _words = field_validator("prompt", "negative_prompt")(_known_prompt)

    @field_validator("at_step")
    @classmethod
    def _inside_the_run(cls, at_step: int | None, info: ValidationInfo) -> int | None:
        steps = info.data.get("steps")
        if at_step is not None and steps is not None and at_step >= steps:
            raise ValueError(f"at_step must be below steps ({steps}): steps are numbered 0 .. {steps - 1}")
        return at_step

    def step_index(self) -> int:
        return self.at_step if self.at_step is not None else self.steps // 2


class EstimateMap(BaseModel):
    """One estimate at the chosen step, drawn as its latent channels (see `display`)."""

    name: Literal["eps_uncond", "eps_cond", "difference", "guided"]
    png_base64: str
    display_scale: float = Field(description="The |value| drawn at full colour")
    norm: float = Field(description="L2 norm over the whole latent")
    rms: float = Field(description="Root mean square per latent value")
    x0_png_base64: str | None = Field(description="The image the estimate implies: x̂0 of EQ MM3.1, decoded "
                                                  "(none for the difference)")


class StepAnatomy(BaseModel):
    index: int
    total: int
    t: int = Field(description="Timestep of the step's input x_t")
    abar_t: float
    guided: bool = Field(description="Whether the variant guided this step (else its result is ε(c) alone)")
    scale: float
    maps: list[EstimateMap] = Field(description="ε(∅), ε(c), ε(c) − ε(∅) and the guided result, in that order")


class VariantImage(BaseModel):
    """The final image of one way of guiding, on the same seed."""

    variant: str
    label: str
    formula: str
    source: str
    png_base64: str
    guidance_scale: float
    rescale: float
    interval_timesteps: tuple[int, int] | None = Field(description="(t_lo, t_hi), inclusive, where it guides")
    guided_steps: int = Field(description="Steps of the run that applied guidance")
    judged: JudgedAttributes
    matches: dict[str, bool] = Field(description="Per attribute the prompt names, and 'all', whether the image "
                                                 "shows it")


class GuidanceAnatomyResult(BaseModel):
    """EQ MM3.4 at one step: the two estimates, their difference and the result; three variants' final images."""

    prompt_canonical: str
    negative_prompt_canonical: str
    seed: int
    steps: int
    sampler: str
    variant: str = Field(description="Whose step `step` shows")
    convention: str
    display: str = Field(description="How the maps are normalised for display")
    step: StepAnatomy
    variants: list[VariantImage]
    timings: LabTimings
    model_id: str


class ForwardTiming(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    grid: tuple[int, int, int] = Field(description="(height, width, channels) of the tensor denoised")
    patch: int
    tokens: int
    attention_pairs: int = Field(description="tokens², per head and layer")
    weights: Literal["trained", "random"]
    estimated: bool = Field(description="True: one transformer block timed, times the depth")
    median_ms: float = Field(description="Median wall time of one forward, milliseconds")
    runs_ms: list[float]


class MeasuredCompressionResult(BaseModel):
    """One denoiser forward on the real latent vs on pixels, timed on this server; the real VAE's numbers."""

    model_config = ConfigDict(from_attributes=True)

    latent: ForwardTiming
    pixel: list[ForwardTiming] = Field(description="The same architecture on the full pixel grid, patch 2 and 1, "
                                                   "randomly initialised: only the cost means something")
    dit: dict[str, int] = Field(description="width, depth, heads, parameters of the served DiT")
    resolution: int
    f: int = Field(description="The VAE's downsampling factor")
    latent_channels: int = Field(description="c_z")
    ratio: float = Field(description="3 f² / c_z, EQ MM3.3")
    psnr_db: float | None = Field(description="The VAE's mean reconstruction PSNR")
    psnr_source: str
    device: str
    torch_threads: int
    measured_s: float = Field(description="Seconds the measurement took")
    measured_at: str = Field(description="UTC, ISO 8601")
    cached: bool = Field(description="True: measured earlier by this server process and reused")



# ---------------------------------------------------------------- text-to-video (§3.4, EQ MM3.6)

from app.world.clips import parse_video_prompt  # noqa: E402

MAX_VIDEO_FRAMES = 16  # the schema's bound; the loaded model's own limit (8 for the served one) is checked per request
AnimationFormat = Literal["apng", "gif"]
ClipMethod = Literal["video", "per_frame"]


def _known_clip_prompt(text: str) -> str:
    try:
        parse_video_prompt(text)
    except PromptError as err:  # a VideoPromptError: the clip grammar's message and vocabulary
        raise prompt_error_detail(err) from None
    return text


def frames_limit_error(frames: int, max_frames: int) -> list[dict]:
    """A pydantic-shaped error when frames exceeds what the loaded video model knows, else none."""
    if frames <= max_frames:
        return []
    return [{"type": "less_than_equal", "loc": ("frames",), "input": frames, "ctx": {"le": max_frames},
             "msg": f"Input should be less than or equal to {max_frames} (the frames the loaded video model "
                    "was trained on)"}]


class VideoRequest(Strict):
    """One text-to-clip request; the server's caps (steps, the model's frames) are checked by limit_errors()."""

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, examples=["a small red circle moving right from the left"],
                        description="The clip, in the clip grammar's words: '{size} {colour} {shape} moving "
                                    "{direction} from the {start}'; empty = unconditional")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS,
                                 description="The caption guidance steers away from (EQ MM3.4); empty = null caption")
    steps: int = Field(20, ge=1, le=1000, description="Denoising steps; at most the server's DIFFUSION_LAB_MAX_STEPS")
    guidance_scale: float = Field(5.0, ge=0, le=20, allow_inf_nan=False, description="Guidance scale s of EQ MM3.4")
    guidance_rescale: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                                    description="Pull the guided estimate's std back to the conditional one's; 0 = off")
    sampler: GenerationSampler = Field("dpmpp_2m", description="dpmpp_2m (default), ddim or ddpm")
    eta: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                       description="DDIM's stochasticity, 0 = deterministic; the other samplers ignore it")
    frames: int = Field(8, ge=2, le=MAX_VIDEO_FRAMES,
                        description="Frames of the clip; at most the loaded video model's (8 for the served one)")
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="Seed of the clip's noise (the baseline's frame k uses seed + k); "
                                         "absent = random")
    compare: bool = Field(False, description="Also sample the per-frame baseline: the image model draws every "
                                             "frame from its own noise")
    format: AnimationFormat = Field("apng", description="The animation's file format: apng (lossless) or gif")
    include_frames: bool = Field(True, description="Also return every frame as a PNG")

    _words = field_validator("prompt", "negative_prompt")(_known_clip_prompt)

    @field_validator("seed")
    @classmethod
    def _baseline_seeds_fit(cls, seed: int | None, info: ValidationInfo) -> int | None:
        frames = info.data.get("frames")
        if seed is not None and frames is not None and seed + frames - 1 > MAX_SEED:
            raise ValueError(f"seed + frames - 1 must be at most {MAX_SEED} (the baseline's frame k uses seed + k)")
        return seed

    def limit_errors(self, max_steps: int, max_frames: int) -> list[dict]:
        """Errors shaped like pydantic's for the server's step cap and the loaded model's frame count."""
        return steps_limit_error(self.steps, max_steps) + frames_limit_error(self.frames, max_frames)


class VideoParameters(VideoRequest):
    """The request as it was run: every default filled in, and the seed that was used."""

    seed: int = Field(ge=0, le=MAX_SEED, description="Seed of the clip's noise")


class VideoStreamQuery(VideoRequest):
    """GET /generate/video/stream's query: the fields of POST /generate/video's body."""


class ParsedClipPrompt(BaseModel):
    """The prompt as the clip grammar reads it (None: left open)."""

    model_config = ConfigDict(from_attributes=True)

    shape: str | None
    colour: str | None
    size: str | None
    direction: str | None
    start: str | None = Field(description="Where the shape starts, e.g. 'top left'")


class Animation(BaseModel):
    """The clip as one looping animation file."""

    mime: Literal["image/apng", "image/gif"]
    base64: str = Field(description="The file, base64 (identical consecutive frames are merged, durations summed)")
    frame_ms: int = Field(description="How long each frame shows (GIF counts in hundredths of a second)")


class ClipMetricsResult(BaseModel):
    """VBench-style measures of one clip, read by the app's program judge (app/measure/video.py)."""

    frames: int
    tracked_frames: int = Field(description="Frames in which the judge found a shape")
    temporal_flickering: float = Field(description="1 - mean |frame k+1 - frame k| / 255 (1 = no change)")
    mean_abs_frame_diff: float = Field(description="The same difference, 0..1")
    subject_consistency: float = Field(description="Share of frames whose judged shape, colour and size are the "
                                                   "clip's most common ones")
    motion_smoothness: float = Field(description="exp(-rms / 4 px) of the centroid around the best straight line")
    path_rms_px: float | None
    mean_jump_px: float | None = Field(description="Mean frame-to-frame centroid displacement, pixels")
    mean_jump_frame_widths: float | None
    velocity_px: tuple[float, float] | None = Field(description="Fitted (dx, dy) per frame, y down")
    direction: str | None = Field(description="One of the 8 directions, 'still', or null when untracked")
    shape: str | None
    colour: str | None
    size: str | None
    start: str | None = Field(description="Judged position of the first frame")
    centroids: list[tuple[float, float] | None]
    adherence: dict[str, bool] = Field(description="Per attribute the prompt names, and 'all', whether the clip "
                                                   "shows it")


class VideoClip(BaseModel):
    """One clip: by the space-time model (`video`) or by the image model frame by frame (`per_frame`)."""

    method: ClipMethod
    caption: str = Field(description="The caption the network was conditioned on")
    animation: Animation
    frames: list[str] = Field(description="Every frame as a PNG, base64 (empty when include_frames is false)")
    metrics: ClipMetricsResult
    timings: dict[str, float] = Field(description="sampling_s, decode_s, total_s, network_forwards of this clip")


class VideoTimings(BaseModel):
    """Where the time went, in seconds (server side)."""

    queue_s: float = Field(description="Waiting for a free sampler thread")
    run_s: float = Field(description="The job on the sampler thread: both clips sampled, decoded and measured")
    metrics_s: float = Field(description="Measuring the clips (part of run_s)")
    encode_s: float = Field(description="PNG and animation encoding")
    total_s: float = Field(description="From admission to the response, all of the above included")


class VideoResult(BaseModel):
    """A clip (and, with compare, the per-frame baseline) with everything needed to reproduce it."""

    prompt: str = Field(description="The canonical caption of the prompt")
    parsed: ParsedClipPrompt
    seed: int
    parameters: VideoParameters
    model_id: str = Field(description="Short SHA-256 of the VAE and the video weights files")
    video: VideoClip
    baseline: VideoClip | None = Field(description="The per-frame baseline (compare=true), else null")
    timings: VideoTimings


class VideoStreamStart(BaseModel):
    """Event `start`: the job was admitted."""

    id: str = Field(description="This request's id (uuid4), repeated in every event of the stream")
    total_steps: int = Field(description="Denoising steps of the whole run: steps x methods")
    frames: int
    methods: list[ClipMethod] = Field(description="['video'], or ['video', 'per_frame'] with compare, in the "
                                                  "order they are sampled")
    prompt: str = Field(description="The canonical caption of the prompt")
    parameters: VideoParameters = Field(description="The request with defaults filled in and the seed used")


class VideoStreamStep(StepEvent):
    """Event `step` of the video stream: one denoising step of one method, with every frame's x̂0."""

    method: ClipMethod
    preview: str = Field(description="PNG (base64) of every frame's x̂0 latent side by side, left to right: latent "
                                     "channels 0-2 as RGB over -3..3 (not decoded)")


class VideoStreamResult(VideoResult):
    """Event `result`: the same payload as POST /generate/video, with the stream's id."""

    id: str


class AttentionQuery(Strict):
    """The clip length whose attention is timed, and how many timed runs per variant."""

    frames: int = Field(8, ge=2, le=MAX_VIDEO_FRAMES, description="Frames T_f; at most the loaded video model's")
    repeats: int = Field(3, ge=1, le=5, description="Timed forwards per variant (after one warm-up); the median "
                                                     "is reported")


class AttentionTimingResult(BaseModel):
    """EQ MM3.6 on the served video model: its tokens, the attention pairs, joint vs factorised timed here."""

    model_config = ConfigDict(from_attributes=True)

    frames: int
    repeats: int
    batch: int = Field(description="Clips per forward: 2, the two rows of classifier-free guidance")
    latent_size: int
    patch: int
    tokens_per_frame: int = Field(description="(latent_size / patch)², EQ MM3.6 with p_t = 1")
    tokens: int = Field(description="N = frames × tokens_per_frame")
    joint_pairs: int = Field(description="N²: every token attends to every token of the clip")
    factorised_pairs: int = Field(description="T_f (HW)² + HW T_f²: within each frame, then across frames")
    pair_ratio: float = Field(description="joint_pairs / factorised_pairs")
    factorised_ms: float = Field(description="Median ms of one forward of the served (factorised) video DiT")
    joint_ms: float = Field(description="Median ms of one forward of a joint-attention DiT with the same image "
                                        "weights")
    time_ratio: float = Field(description="joint_ms / factorised_ms")
    factorised_runs_ms: list[float]
    joint_runs_ms: list[float]
    model_id: str
    device: str
    torch_threads: int
    measured_s: float
    measured_at: str = Field(description="UTC, ISO 8601")
    cached: bool = Field(description="True: measured earlier by this server process and reused")


class VideoModelSection(BaseModel):
    """The video model's files and, when loaded, its live facts; its card when models/video-card.json exists."""

    loaded: bool
    load_error: str | None = Field(description="Why the video model is not loaded, when it is not")
    model_id: str | None
    max_frames: int | None
    attention: str | None = Field(description="factorised or joint")
    config: dict[str, Any] | None = Field(description="The video denoiser's config (VideoDiTConfig)")
    text_encoder_config: dict[str, Any] | None
    parameters: dict[str, int] | None = Field(description="text_encoder, denoiser, total (the VAE is the image "
                                                          "model's)")
    training: dict[str, Any] | None = Field(description="The denoiser file's training record: recipe, wall time, "
                                                        "steps, validation, ... (loss curve left out)")
    card_found: bool
    card_error: str | None
    card: dict[str, Any] | None = Field(description="models/video-card.json, when present")
ModelCardResult.model_rebuild()


# ---------------------------------------------------------------- recorded benchmarks (bench/scaling.py)

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Seconds = Positive
Exponent = Annotated[float, Field(allow_inf_nan=False)]


class Recorded(BaseModel):
    """A part of a recorded benchmark file: every field the benchmark writes, no other."""

    model_config = ConfigDict(extra="forbid")


class ScalingMachine(Recorded):
    cpu: str = Field(description="CPU model name (/proc/cpuinfo)")
    cores: int = Field(ge=1, description="Logical CPUs of the machine (os.cpu_count)")
    cores_available: int = Field(ge=1, description="Logical CPUs this process could run on")
    torch: str = Field(description="torch version")
    torch_capability: str | None = Field(description="torch's CPU capability (e.g. AVX512)")
    threads: int = Field(ge=1, description="torch intra-op threads the measurement ran with")
    python: str
    platform: str


class ScalingLoad(Recorded):
    start: float = Field(ge=0, description="1-minute load average before the measurement")
    end: float = Field(ge=0, description="1-minute load average after it")


class ScalingModel(Recorded):
    model_id: str = Field(description="Short SHA-256 of the weights files measured")
    resolution: int = Field(description="Image side the model was trained at, pixels")
    downsample_factor: int = Field(description="The VAE's f: latent side = resolution / f")
    dit: dict[str, int | float | bool] = Field(description="The committed denoiser's DiTConfig")
    parameters: dict[str, int] = Field(description="vae, text_encoder, denoiser, total")


class ScalingSampling(Recorded):
    prompt: str
    sampler: str
    guidance_scale: float
    repeats: int = Field(ge=1, description="Runs per cell at most (fewer once a cell has spent budget_s)")
    budget_s: float = Field(gt=0)


class LinearFit(Recorded):
    fixed_s: float = Field(description="a in t = a + b x: the part that does not grow")
    per_unit_s: float = Field(description="b in t = a + b x: seconds per step (or per image of the batch)")


class PowerFit(Recorded):
    exponent: Exponent = Field(description="k in t = c N^k, the least-squares slope on log-log axes")
    prefactor: float = Field(gt=0, description="c in t = c N^k (in the unit of the fitted times)")


class ScalingStepsRow(Recorded):
    steps: int = Field(ge=1)
    repeats: int = Field(ge=1)
    median_s_per_image: Seconds
    best_s_per_image: Seconds
    runs_s: list[Seconds] = Field(description="Every run's wall seconds (a batch of `batch` images each)")
    load_average: list[float]


class ScalingSteps(Recorded):
    """(a) Seconds per image against the number of denoising steps, at one batch size."""

    batch: int = Field(ge=1)
    rows: list[ScalingStepsRow] = Field(min_length=1)
    fit: LinearFit | None = Field(description="median seconds per image = fixed + per step x steps")
    power: PowerFit | None = Field(description="median seconds per image ~ steps^k")


class ScalingBatchRow(Recorded):
    batch: int = Field(ge=1)
    repeats: int = Field(ge=1)
    median_s_per_batch: Seconds = Field(description="One generate() call of `batch` images, PNGs included")
    median_s_per_image: Seconds
    best_s_per_image: Seconds
    images_per_s: Positive
    speedup: float = Field(gt=0, description="Images per second relative to the smallest batch")
    runs_s: list[Seconds]
    load_average: list[float]


class ScalingBatch(Recorded):
    """(b) Seconds per image and per batch against the batch size, at one number of steps."""

    steps: int = Field(ge=1)
    rows: list[ScalingBatchRow] = Field(min_length=1)
    fit: LinearFit | None = Field(description="median seconds per batch = fixed + per image x batch")
    power: PowerFit | None = Field(description="median seconds per batch ~ batch^k")


class ScalingResolutionRow(Recorded):
    resolution: int = Field(ge=1, description="Image side, pixels")
    latent_size: int = Field(ge=1, description="Latent side = resolution / f")
    tokens: int = Field(ge=1, description="DiT tokens = (latent_size / patch)^2")
    dit_median_ms: Seconds = Field(description="One guided DiT forward (2 rows), median milliseconds")
    dit_best_ms: Seconds
    dit_gflop: float = Field(ge=0, description="GFLOP of that forward (torch.utils.flop_counter)")
    dit_ratio: float = Field(gt=0, description="dit_median_ms / the reference resolution's")
    dit_local_exponent: float | None = Field(description="log-log slope of the DiT time from the previous row")
    dit_runs_ms: list[Seconds]
    vae_median_ms: Seconds = Field(description="One VAE decode (1 image), median milliseconds")
    vae_best_ms: Seconds
    vae_ratio: float = Field(gt=0, description="vae_median_ms / the reference resolution's")
    vae_local_exponent: float | None
    vae_runs_ms: list[Seconds]
    load_average: float


class ScalingResolution(Recorded):
    """(c) One guided DiT forward of the committed architecture (random weights) and one VAE decode per size."""

    dit_weights: Literal["random"] = Field(description="The DiT at each size is built fresh: only its cost is real")
    vae_weights: Literal["trained"] = Field(description="The committed VAE decoder (convolutional: any size)")
    dit_batch: int = Field(ge=1, description="Rows of the DiT forward: 2 = one guided image (cond + uncond)")
    vae_batch: int = Field(ge=1)
    reference_resolution: int = Field(description="The resolution the ratios are relative to")
    rows: list[ScalingResolutionRow] = Field(min_length=1)
    dit_power: PowerFit | None = Field(description="DiT milliseconds ~ tokens^k over all rows")
    vae_power: PowerFit | None = Field(description="VAE decode milliseconds ~ tokens^k (tokens ~ pixels)")


class ScalingResult(Recorded):
    """bench/results/scaling.json as `python bench/scaling.py` recorded it: measured once, not live."""

    format: int = Field(description="The file's format version")
    command: str = Field(description="The command that recorded these numbers")
    recorded_at: str = Field(description="UTC start of the measurement, ISO 8601")
    finished_at: str = Field(description="UTC end, ISO 8601")
    duration_s: float = Field(ge=0)
    quick: bool = Field(description="True: a seconds-long smoke run (--quick), not a measurement to quote")
    machine: ScalingMachine
    load_average: ScalingLoad
    model: ScalingModel
    sampling: ScalingSampling
    steps: ScalingSteps
    batch: ScalingBatch
    resolution: ScalingResolution
