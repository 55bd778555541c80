"""What the latent buys, timed on this machine (EQ MM3.3): one denoiser forward on the VAE's latent vs on pixels.

The served DiT runs once on its latent grid. The same architecture (width, depth, heads, caption attention) is then
built for the full pixel grid, patch 2 and patch 1, with random weights: only its cost is measured, its output
means nothing. Each forward is timed a few times within a time budget and the median reported; where one full
pixel-space forward would not fit the budget, one transformer block is timed and multiplied by the depth (all
blocks are identical), and the figure is marked as estimated. The result is cached per process and model.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import torch

from app.instruments.compression import compression_ratio
from app.lab.once import MeasuredOnce
from app.nets.dit import DiT, DiTBlock
from app.pipelines.image import Pipeline

BUDGET_S = 2.0  # CPU seconds the whole measurement may take (a little more if one forward alone is longer)
LATENT_REPEATS, PIXEL_REPEATS = 7, 3
FULL_FORWARD_MAX_TOKENS = 1024  # above this a pixel-space forward is estimated from one block
RGB = 3


@dataclass(frozen=True)
class ForwardTiming:
    """One denoiser forward on one grid: its size and its measured wall time."""

    label: str
    grid: tuple[int, int, int]  # (height, width, channels) of the tensor the DiT denoises
    patch: int
    tokens: int
    attention_pairs: int  # tokens^2 per head and layer
    weights: str  # "trained" or "random"
    estimated: bool  # True: one block timed, times the depth
    median_ms: float
    runs_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class MeasuredCompression:
    """The served model's latent vs its architecture on pixels, timed here; the VAE's compression and quality."""

    latent: ForwardTiming
    pixel: list[ForwardTiming]
    dit: dict[str, int]  # width, depth, heads, parameters of the served DiT
    resolution: int
    f: int
    latent_channels: int
    ratio: float  # EQ MM3.3: 3 f^2 / c_z
    psnr_db: float | None
    psnr_source: str
    device: str
    torch_threads: int
    measured_s: float
    measured_at: str
    cached: bool = False


def _timed(run, repeats: int, deadline: float) -> list[float]:
    """Call run() up to `repeats` times (at least once) while time is left before deadline; ms per call."""
    runs: list[float] = []
    while len(runs) < repeats and (not runs or time.perf_counter() + runs[-1] / 1000 < deadline):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) * 1000)
    return runs


def _context(dit: DiT, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A caption-sized context (1, L, D) and an all-true key mask: enough for the cost, the values do not matter."""
    context = torch.randn(1, 12, dit.config.context_dim, generator=torch.Generator().manual_seed(0)).to(device)
    return context, torch.ones(1, 12, dtype=torch.bool, device=device)


@torch.inference_mode()
def time_latent(pipeline: Pipeline, deadline: float) -> ForwardTiming:
    """The served DiT on its own latent grid, with its trained weights."""
    dit, device = pipeline.dit, pipeline.device
    cfg = dit.config
    x = torch.randn(1, cfg.latent_channels, cfg.latent_size, cfg.latent_size, device=device)
    t = torch.full((1,), 500, device=device)
    context, mask = _context(dit, device)
    dit(x, t, context, mask)  # warm-up: first calls pay for allocations
    runs = _timed(lambda: dit(x, t, context, mask), LATENT_REPEATS, deadline)
    tokens = (cfg.latent_size // cfg.patch) ** 2
    return ForwardTiming("latent (trained DiT)", (cfg.latent_size, cfg.latent_size, cfg.latent_channels), cfg.patch,
                         tokens, tokens * tokens, "trained", False, statistics.median(runs), runs)


@torch.inference_mode()
def time_pixels(pipeline: Pipeline, patch: int, deadline: float) -> ForwardTiming:
    """The served DiT's architecture on the pixel grid at this patch size, randomly initialised."""
    side, device = pipeline.resolution, pipeline.device
    tokens = (side // patch) ** 2
    config = replace(pipeline.dit.config, latent_size=side, latent_channels=RGB, patch=patch)
    context, mask = _context(pipeline.dit, device)
    torch.manual_seed(0)
    if tokens <= FULL_FORWARD_MAX_TOKENS:
        dit = DiT(config).to(device).eval()
        x = torch.randn(1, RGB, side, side, device=device)
        t = torch.full((1,), 500, device=device)
        runs = _timed(lambda: dit(x, t, context, mask), PIXEL_REPEATS, deadline)
        median, estimated = statistics.median(runs), False
    else:
        block = DiTBlock(config.width, config.heads, config.mlp_ratio, config.context_dim).to(device).eval()
        tokens_in = torch.randn(1, tokens, config.width, device=device)
        c = torch.randn(1, config.width, device=device)
        runs = [ms * config.depth for ms in _timed(lambda: block(tokens_in, c, context, mask), 1, deadline)]
        median, estimated = statistics.median(runs), True
    return ForwardTiming(f"pixels, patch {patch} (random weights)", (side, side, RGB), patch, tokens,
                         tokens * tokens, "random", estimated, median, runs)


def vae_psnr(pipeline: Pipeline, card: dict | None) -> tuple[float | None, str]:
    """The VAE's mean reconstruction PSNR: the model card's evaluation, else the validation saved in its weights."""
    try:
        return float(card["evaluation"]["vae"]["psnr_db_mean"]), "the model card's evaluation"
    except (KeyError, TypeError, ValueError):
        pass
    validation = pipeline.metadata.get("vae", {}).get("validation") or {}
    if "psnr_db" in validation:
        return float(validation["psnr_db"]), "the VAE's training validation"
    return None, "not measured"


def measure(pipeline: Pipeline, card: dict | None = None, budget_s: float = BUDGET_S) -> MeasuredCompression:
    """Time the latent forward and the pixel-space forwards (patch 2, then patch 1) within budget_s."""
    started = time.perf_counter()
    deadline = started + budget_s
    latent = time_latent(pipeline, started + 0.15 * budget_s)
    pixel = [time_pixels(pipeline, patch, deadline) for patch in (2, 1) if pipeline.resolution % patch == 0]
    f, c_z = pipeline.vae.config.downsample_factor, pipeline.vae.config.latent_channels
    cfg = pipeline.dit.config
    psnr, source = vae_psnr(pipeline, card)
    return MeasuredCompression(
        latent=latent, pixel=pixel,
        dit={"width": cfg.width, "depth": cfg.depth, "heads": cfg.heads,
             "parameters": sum(p.numel() for p in pipeline.dit.parameters())},
        resolution=pipeline.resolution, f=f, latent_channels=c_z, ratio=compression_ratio(f, c_z),
        psnr_db=psnr, psnr_source=source, device=str(pipeline.device), torch_threads=torch.get_num_threads(),
        measured_s=time.perf_counter() - started,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


_measured = MeasuredOnce()


def measured_once(pipeline: Pipeline, model_id: str, card: dict | None = None) -> MeasuredCompression:
    """measure() the first time per process and model; afterwards the cached result (cached=True)."""
    return _measured.get(model_id, lambda: measure(pipeline, card))
