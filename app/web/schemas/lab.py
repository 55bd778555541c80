"""The guidance lab on the real model: the scale x seed grid, a live sweep, one step taken apart, forwards timed."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.lab import guidance as _lab
from app.web.schemas.common import (
    GUIDANCE_METHOD_RULE,
    SCENE_PROMPT_RULES,
    Caption,
    Fraction,
    GenerationSampler,
    GuidanceMethod,
    GuidanceScale,
    Rule,
    Sampler,
    ScenePrompt,
    Seed,
    Steps,
    Strict,
    guidance_method_fits,
    known_words,
    seeds_fit,
)
from app.web.schemas.families import (
    DIFFUSION,
    KNOB_FAMILY_RULE,
    Family,
    FamilyField,
    Rounds,
    Temperature,
    TopK,
    knob_field,
    knob_fits_family,
    knob_limit_errors,
)
from app.web.schemas.timing import RecordedTiming, TimingComparison, TimingConditions, TimingSpread
from app.world.prompts import parse_prompt

# ---------------------------------------------------------------- guidance lab on the real model (EQ MM3.4)

LabNegativePrompt = Annotated[Caption, Field(description="The unconditional branch's caption; the same grammar as "
                                                        "prompt")]
GRID_SIZE = Rule("grid_too_large", f"len(scales) x rows must be at most {_lab.MAX_GRID_IMAGES} images")
GRID_SEEDS_FIT, _grid_seeds_fit = seeds_fit("seeds", "row i uses seed + i")
# The schema states the list's bounds; the validator says them in one message (a union's own errors name both arms).
SeedList = Annotated[list[Seed], Field(json_schema_extra={"minItems": 1, "maxItems": _lab.MAX_GRID_SEEDS,
                                                          "uniqueItems": True})]


class GridRequest(Strict):
    """A grid of guidance scales (columns) x seeds (rows): the same starting noise along each row, drawn by one
    family (EQ MM3.4 guides diffusion's noise estimates, the token families' logits)."""

    RULES = (*SCENE_PROMPT_RULES, GRID_SIZE, GRID_SEEDS_FIT, GUIDANCE_METHOD_RULE, KNOB_FAMILY_RULE)

    prompt: ScenePrompt
    negative_prompt: LabNegativePrompt = ""
    family: FamilyField = DIFFUSION  # before the knobs: their validator reads it
    scales: list[GuidanceScale] = Field(default_factory=lambda: list(_lab.GRID_SCALES), min_length=1,
                                        max_length=_lab.MAX_GRID_SCALES,
                                        description=f"Guidance scales s of EQ MM3.4, 0..20, at most "
                                                    f"{_lab.MAX_GRID_SCALES}; {GRID_SIZE.text}")
    seeds: SeedList | Annotated[int, Field(ge=1, le=_lab.MAX_GRID_SEEDS)] = Field(
        4, validate_default=True, description=f"The seeds of the rows (a list of at most {_lab.MAX_GRID_SEEDS}, "
                                              "no repeats), or how many rows, seeded `seed`, `seed` + 1, ...; "
                                              f"{GRID_SIZE.text}")
    seed: Seed | None = Field(None, description="First seed when `seeds` is a count; absent = random; "
                                                f"{GRID_SEEDS_FIT.text}")
    steps: Steps = knob_field(Steps, 20, "steps")
    sampler: Sampler = knob_field(Sampler, "dpmpp_2m", "sampler")
    guidance_method: GuidanceMethod = knob_field(GuidanceMethod, "cfg", "guidance_method")
    temperature: Temperature = 1.0
    top_k: TopK = 0
    rounds: Rounds = 8

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_prompt))
    _knobs = field_validator("steps", "sampler", "guidance_method", "temperature", "top_k", "rounds")(
        knob_fits_family)  # before _method: a token family's method is refused
    _method = field_validator("guidance_method")(guidance_method_fits)

    def limit_errors(self, max_steps: int, codebook_size: int | None) -> list[dict]:
        """The served caps on the family's knobs (diffusion's steps, a token family's top_k), pydantic-shaped."""
        return knob_limit_errors(self.family, self.steps, max_steps, self.top_k, codebook_size)

    @field_validator("seeds")
    @classmethod
    def _seed_list(cls, seeds, info: ValidationInfo):
        if isinstance(seeds, list):
            if not 1 <= len(seeds) <= _lab.MAX_GRID_SEEDS:
                raise PydanticCustomError("seeds_count", "give 1 to {cap} seeds, got {given}",
                                          {"cap": _lab.MAX_GRID_SEEDS, "given": len(seeds)})
            if len(set(seeds)) != len(seeds):
                raise PydanticCustomError("seeds_repeated", "the seeds must differ (a repeated seed draws the same "
                                                            "image twice)")
        rows, scales = (len(seeds) if isinstance(seeds, list) else seeds), len(info.data.get("scales") or [])
        if scales * rows > _lab.MAX_GRID_IMAGES:
            raise GRID_SIZE.error("{scales} scales x {rows} seeds = {images} images; at most {cap} per grid",
                                  scales=scales, rows=rows, images=scales * rows, cap=_lab.MAX_GRID_IMAGES)
        return seeds

    _rows = field_validator("seed")(_grid_seeds_fit)

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
    judged: JudgedAttributes = Field(description="One-shape prompts: what the judge reads; two-shape prompts: only "
                                                 "`clean` (exactly two clean shapes), the shapes are in `objects`")
    objects: list[JudgedAttributes] | None = Field(None, description="Two-shape prompts: each shape the judge "
                                                                     "finds, largest first")


class GridColumn(BaseModel):
    """One guidance scale across the seeds, measured."""

    scale: float
    images: list[GridImage] = Field(description="One per seed, in the order of `seeds`")
    adherence: dict[str, float] = Field(description="Share of the images showing each attribute the prompt names, "
                                                    "'clean', and 'all' (every named attribute right and clean); "
                                                    "for two-shape prompts 'count' (exactly two clean shapes), "
                                                    "'binding' (each named shape with its attributes), 'relation' "
                                                    "(when named) and 'all'")
    diversity_rms: float = Field(description="Mean pairwise RMS distance between the seeds' images, pixels in "
                                             "[0, 1] (app/evaluation/image.py pairwise_rms)")


class LabTimings(BaseModel):
    """Where the time went, in seconds."""

    queue_s: float = Field(description="Waiting for a sampler thread")
    sampling_s: float = Field(description="The batched denoising loop")
    total_s: float = Field(description="From admission to the response, judging and PNG encoding included")
    batch_jobs: int = Field(description="Jobs that shared the pipeline call (this one included)")
    network_forwards: int = Field(description="Network forwards one after another: denoiser calls (diffusion), one "
                                              "per token (autoregressive), the rounds (masked)")


class GridResult(BaseModel):
    """The grid: per scale column the images (same seed per row) and what was measured on them."""

    prompt_canonical: str
    negative_prompt_canonical: str
    family: Family
    seeds: list[int]
    steps: int | None = Field(description="Diffusion's steps; null for the token families")
    sampler: str | None = Field(description="Diffusion's sampler; null for the token families")
    columns: list[GridColumn]
    timings: LabTimings
    model_id: str


SWEEP_SIZE = Rule("sweep_too_large", f"prompts x seeds x len(scales) must be at most {_lab.MAX_SWEEP_IMAGES} images")


class SweepRequest(Strict):
    """A small live version of the model card's guidance sweep: the card's first full prompts, a few seeds."""

    RULES = (SWEEP_SIZE,)

    prompts: int = Field(4, ge=1, le=8,
                         description="How many of the card's full prompts (app.evaluation.image.full_prompts)")
    seeds: int = Field(2, ge=2, le=4, description="Seeds per prompt (prompt i uses seeds i*seeds, ...), as the card")
    scales: list[GuidanceScale] = Field(default_factory=lambda: list(_lab.SWEEP_SCALES), min_length=1, max_length=4,
                                        validate_default=True,
                                        description=f"Guidance scales s, at most 4; {SWEEP_SIZE.text}")
    steps: Steps = 20
    sampler: GenerationSampler = "dpmpp_2m"
    category: Literal[_lab.SWEEP_CATEGORIES] = Field(  # type: ignore[valid-type]
        "single", description="Whose prompts: 'single' (the card's full one-shape prompts) or a two-shape category "
                              "of the card's pairs section (app/measure/pairs.py)")

    @field_validator("scales")
    @classmethod
    def _bounded(cls, scales: list[float], info: ValidationInfo) -> list[float]:
        images = (info.data.get("prompts") or 0) * (info.data.get("seeds") or 0) * len(scales)
        if images > _lab.MAX_SWEEP_IMAGES:
            raise SWEEP_SIZE.error("prompts x seeds x scales = {images} images; at most {cap}",
                                   images=images, cap=_lab.MAX_SWEEP_IMAGES)
        return scales


class SweepPoint(BaseModel):
    scale: float
    adherence: dict[str, float] = Field(description="As in the card's guidance_sweep: per attribute, clean, all; "
                                                    "two-shape categories: count, binding, relation (when named), "
                                                    "all")
    diversity_rms: float = Field(description="Mean over prompts of the pairwise RMS distance across seeds")
    images: int


class SweepResult(BaseModel):
    """Adherence and diversity against s, measured live on a small sample (compare the card's full sweep)."""

    live: bool = Field(True, description="Always true: measured for this request, not read from the card")
    category: str
    prompts: list[str]
    seeds: int
    steps: int
    sampler: str
    points: list[SweepPoint]
    timings: LabTimings
    model_id: str


INTERVAL_ORDER = Rule("interval_order", "interval.start must not be after interval.end")
AT_STEP_RANGE = Rule("at_step_range", "at_step must be below steps")


class GuidanceInterval(Strict):
    """Where guidance applies, as fractions of the way from pure noise (0) to clean (1)."""

    RULES = (INTERVAL_ORDER,)

    start: Fraction = Field(0.2, description=f"Guidance starts here; {INTERVAL_ORDER.text}")
    end: Fraction = Field(0.8, description="and stops here (inclusive)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.start > self.end:
            raise INTERVAL_ORDER.error("start ({start}) must not be after end ({end})", start=self.start, end=self.end)
        return self


class GuidanceAnatomyRequest(Strict):
    """One run taken apart at one step, and the same seed drawn with five ways of guiding."""

    RULES = (*SCENE_PROMPT_RULES, AT_STEP_RANGE, *GuidanceInterval.RULES)

    prompt: ScenePrompt
    negative_prompt: LabNegativePrompt = ""
    seed: Seed = Field(0, description="The seed of the starting noise (the same for every variant)")
    steps: Steps = 20
    sampler: GenerationSampler = "dpmpp_2m"
    guidance_scale: GuidanceScale = Field(5.0, description="s of EQ MM3.4")
    at_step: int | None = Field(None, ge=0, le=999, description="The step to take apart (0 = the noisiest); "
                                                                 f"absent = the middle one; {AT_STEP_RANGE.text}")
    variant: Literal["cfg", "cfg_rescale", "cfg_interval", "apg", "cfg++"] = Field(
        "cfg", description="Whose step is taken apart")
    rescale: Fraction = Field(0.7, description="φ of the cfg_rescale variant")
    cfgpp_lambda: Fraction = Field(0.6, description="λ of the cfg++ variant (which always samples with ddim)")
    interval: GuidanceInterval = Field(default_factory=GuidanceInterval,
                                       description=f"Where the cfg_interval variant guides; {INTERVAL_ORDER.text}")

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_prompt))

    @field_validator("at_step")
    @classmethod
    def _inside_the_run(cls, at_step: int | None, info: ValidationInfo) -> int | None:
        steps = info.data.get("steps")
        if at_step is not None and steps is not None and at_step >= steps:
            raise AT_STEP_RANGE.error("at_step must be below steps ({steps}): steps are numbered 0 .. {last}",
                                      steps=steps, last=steps - 1)
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
    guidance_method: str = Field(description="cfg, apg or cfg++")
    sampler: str = Field(description="The sampler of this variant's run (cfg++: always ddim)")
    judged: JudgedAttributes = Field(description="As a grid image's `judged`")
    objects: list[JudgedAttributes] | None = Field(None, description="Two-shape prompts: each shape the judge "
                                                                     "finds, largest first")
    matches: dict[str, bool] = Field(description="Per attribute the prompt names (two shapes: count, binding, "
                                                 "relation), and 'all', whether the image shows it")


class GuidanceAnatomyResult(BaseModel):
    """EQ MM3.4 at one step: the two estimates, their difference and the result; five variants' final images."""

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


class ForwardTiming(TimingSpread):
    model_config = ConfigDict(from_attributes=True)

    label: str
    grid: tuple[int, int, int] = Field(description="(height, width, channels) of the tensor denoised")
    patch: int
    tokens: int
    attention_pairs: int = Field(description="tokens², per head and layer")
    weights: Literal["trained", "random"]
    recorded: RecordedTiming | None = Field(description="The committed benchmark's figure for the same forward; "
                                                        "null when none matches (recorded_note says why)")
    recorded_note: str = Field(description="What the recorded figure timed, or why there is none")


class MeasuredCompressionResult(BaseModel):
    """One denoising step's forward on the real latent vs on pixels, timed on this server; the real VAE's numbers."""

    model_config = ConfigDict(from_attributes=True)

    latent: ForwardTiming
    pixel: list[ForwardTiming] = Field(description="The same architecture on the full pixel grid, patch 2 and 1, "
                                                   "randomly initialised: only the cost means something")
    savings: list[TimingComparison] = Field(description="Each pixel forward against the latent one: the ratio of "
                                                        "medians, and whether the spreads resolve it")
    conditions: TimingConditions
    batch: int = Field(description="Rows per forward: 2, the two rows of classifier-free guidance in one step")
    dit: dict[str, int] = Field(description="width, depth, heads, parameters of the served DiT")
    resolution: int
    f: int = Field(description="The VAE's downsampling factor")
    latent_channels: int = Field(description="c_z")
    ratio: float = Field(description="3 f² / c_z, EQ MM3.3")
    psnr_db: float | None = Field(description="The VAE's mean reconstruction PSNR")
    psnr_source: str
    device: str
    torch_threads: int
    measured_s: float = Field(description="Seconds the measurement took, building the networks included")
    measured_at: str = Field(description="UTC, ISO 8601: when these figures were measured")
    cached: bool = Field(description="True: measured earlier by this server process and reused; "
                                     "?remeasure=true measures again")
