"""The chapter's instruments: latent vs pixel, guidance scale, the denoising walk, frame coherence."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.instruments.guidance import SNIPPET_EPS_COND, SNIPPET_EPS_UNCOND, SNIPPET_SCALES
from app.web.schemas.common import Rule, Seed, Strict

# ---------------------------------------------------------------- latent vs pixel (MM3.1, EQ MM3.3)

F_DIVIDES = Rule("f_divides_image", "f must divide the height and the width")
PATCH_DIVIDES = Rule("patch_divides_latent", "patch must divide the latent grid, height / f by width / f")


class CompressionQuery(Strict):
    """The latent-vs-pixel instrument's inputs: image size, the VAE's f and c_z, the DiT's patch size."""

    RULES = (F_DIVIDES, PATCH_DIVIDES)
    IN_QUERY = True

    height: int = Field(512, ge=8, le=4096, description="Image height H in pixels")
    width: int = Field(512, ge=8, le=4096, description="Image width W in pixels")
    f: int = Field(8, ge=1, le=64, validate_default=True,
                   description=f"The VAE's downsampling factor f; {F_DIVIDES.text}")
    channels: int = Field(4, ge=1, le=64, description="Latent channels c_z")
    patch: int = Field(2, ge=1, le=16, validate_default=True,
                       description=f"DiT patch side p, in latent cells; {PATCH_DIVIDES.text}")

    @field_validator("f")
    @classmethod
    def _f_divides_image(cls, f: int, info: ValidationInfo) -> int:
        height, width = info.data.get("height"), info.data.get("width")
        if height is not None and width is not None and (height % f or width % f):
            raise F_DIVIDES.error("f = {f} must divide the height ({height}) and the width ({width})",
                                  f=f, height=height, width=width)
        return f

    @field_validator("patch")
    @classmethod
    def _patch_divides_latent(cls, patch: int, info: ValidationInfo) -> int:
        height, width, f = info.data.get("height"), info.data.get("width"), info.data.get("f")
        if None not in (height, width, f) and ((height // f) % patch or (width // f) % patch):
            raise PATCH_DIVIDES.error("patch {patch} must divide the latent grid {rows} x {columns}",
                                      patch=patch, rows=height // f, columns=width // f)
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

    IN_QUERY = True

    scale: float = Field(
        7.5, ge=0, le=20, description="Guidance scale s of EQ MM3.4 (0: no prompt, 1: plain conditional)"
    )
    seed: Seed = Field(0, description="Seed of the starting noise x_T (the same for every scale)")
    samples: int = Field(256, ge=16, le=512, description="Number of samples drawn per scale")
    prompt_class: ColourClass = Field("red", description="The prompt: which colour blob of the toy data to ask for")
    eps_uncond: float = Field(0.20, ge=-10, le=10, description="Worked example: the unconditional noise estimate")
    eps_cond: float = Field(0.50, ge=-10, le=10, description="Worked example: the conditional noise estimate")


SAME_LENGTH = Rule("same_length", "eps_cond must have as many components as eps_uncond")
Component = Annotated[float, Field(ge=-10, le=10)]
TableScale = Annotated[float, Field(ge=0, le=100)]


class CfgTableQuery(Strict):
    """The CFG snippet's inputs: two noise estimates (a list parameter is repeated: eps_uncond=0.2&eps_uncond=-0.1),
    the scales of its table and the s whose row is highlighted; the snippet's own values by default."""

    RULES = (SAME_LENGTH,)
    IN_QUERY = True

    eps_uncond: list[Component] = Field(list(SNIPPET_EPS_UNCOND), min_length=1, max_length=16,
                                        description="The noise estimate with the caption dropped, ε(∅)")
    eps_cond: list[Component] = Field(list(SNIPPET_EPS_COND), min_length=1, max_length=16, validate_default=True,
                                      description=f"The noise estimate with the caption, ε(c); {SAME_LENGTH.text}")
    scales: list[TableScale] = Field(list(SNIPPET_SCALES), min_length=1, max_length=41,
                                     description="The guidance scales s of the table's rows")
    scale: TableScale = Field(7.5, description="The s whose row is answered as `current`")

    @field_validator("eps_cond")
    @classmethod
    def _as_long_as_uncond(cls, eps_cond: list[float], info: ValidationInfo) -> list[float]:
        uncond = info.data.get("eps_uncond")
        if uncond is not None and len(eps_cond) != len(uncond):
            raise SAME_LENGTH.error("eps_cond has {cond} components and eps_uncond {uncond}; they must match",
                                    cond=len(eps_cond), uncond=len(uncond))
        return eps_cond


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


BETA_ORDER = Rule("beta_order", "beta_end must be larger than beta_start")


class DenoisingQuery(Strict):
    """The denoising walk's inputs: the chapter's first snippet with its defaults."""

    RULES = (BETA_ORDER,)
    IN_QUERY = True

    target_x: float = Field(1.5, ge=-3, le=3, description="First component of the target latent x0")
    target_y: float = Field(-0.8, ge=-3, le=3, description="Second component of the target latent x0")
    steps: int = Field(40, ge=2, le=1000, description="Number of steps T of the schedule and of the walk")
    beta_start: float = Field(1e-3, ge=1e-5, le=0.5, description="beta at t = 0 (linear schedule, EQ MM3.1)")
    beta_end: float = Field(0.08, ge=1e-5, le=0.5, validate_default=True,
                            description=f"beta at t = T-1; {BETA_ORDER.text}")
    seed: Seed = Field(0, description="Seed of numpy's default_rng, as in the snippet")
    eps_error: float = Field(
        0.0, ge=0, le=1, description="Std of an error added to the oracle's noise estimate (0: the oracle)"
    )
    signal_fraction: float = Field(0.36, ge=0, le=1, description="An abar at which to evaluate EQ MM3.1's coefficients")

    @field_validator("beta_end")
    @classmethod
    def _end_above_start(cls, beta_end: float, info: ValidationInfo) -> float:
        start = info.data.get("beta_start")
        if start is not None and beta_end <= start:
            raise BETA_ORDER.error("beta_end must be larger than beta_start ({beta_start})", beta_start=start)
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


PATCH_DIVIDES_AXIS = Rule("patch_divides_axis", "p_t must divide frames, p_h latent_height and p_w latent_width")


class CoherenceQuery(Strict):
    """The frame-coherence instrument's inputs: how jointly frames are denoised, the clip, its spacetime patches."""

    RULES = (PATCH_DIVIDES_AXIS,)
    IN_QUERY = True

    coherence: float = Field(0.5, ge=0, le=1,
                             description="0: every frame denoised on its own; 1: the clip denoised jointly")
    seed: Seed = Field(0, description="Seed of the starting noise (the same noise at every coherence)")
    frames: int = Field(8, ge=2, le=64, description="Frames T_f in the clip (latent frames)")
    latent_height: int = Field(32, ge=1, le=256, description="Latent height H in cells")
    latent_width: int = Field(32, ge=1, le=256, description="Latent width W in cells")
    p_t: int = Field(1, ge=1, le=16, validate_default=True,
                     description="Temporal patch size p_t in frames; must divide frames")
    p_h: int = Field(2, ge=1, le=16, validate_default=True,
                     description="Patch height p_h in latent cells; must divide latent_height")
    p_w: int = Field(2, ge=1, le=16, validate_default=True,
                     description="Patch width p_w in latent cells; must divide latent_width")

    @field_validator("p_t", "p_h", "p_w")
    @classmethod
    def _patch_divides_its_axis(cls, patch: int, info: ValidationInfo) -> int:
        axis, label = _PATCH_AXES[info.field_name]
        total = info.data.get(axis)
        if total is not None and total % patch:
            raise PATCH_DIVIDES_AXIS.error(f"{info.field_name} = {{patch}} must divide the {label} ({{total}})",
                                           patch=patch, total=total)
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
