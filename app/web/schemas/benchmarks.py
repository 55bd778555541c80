"""Recorded benchmarks: bench/results/scaling.json as bench/scaling.py wrote it."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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


# ---------------------------------------------------------------- recorded benchmarks (bench/video.py)


class VideoForwardRow(BaseModel):
    frames: int = Field(ge=1)
    attention: Literal["factorised", "joint"]
    tokens: int = Field(ge=1)
    median_ms: Positive
    best_ms: Positive
    parameters: int = Field(ge=1)
    load_average: float = Field(ge=0)


class VideoRecord(BaseModel):
    """The parts of bench/results/video.json that live timings are compared with (the file holds more)."""

    threads: int = Field(ge=1)
    torch: str
    forward: list[VideoForwardRow]
    command: str | None = None  # written by bench/video.py since these fields were added
    recorded_at: str | None = None
    machine: ScalingMachine | None = None
