"""What the latent buys, timed on this machine (EQ MM3.3): one denoising step's forward on the VAE's latent vs on pixels.

The served DiT runs on its latent grid. The same architecture (width, depth, heads, caption attention) is then
built for the full pixel grid, patch 2 and patch 1, with random weights: only its cost is measured, its output
means nothing. Every forward takes a batch of 2, the two rows of classifier-free guidance, as one sampling step
does. Where one full pixel-space forward would not fit the time budget, one transformer block is timed and
multiplied by the depth (all blocks are identical), and the figure says so. The three are timed interleaved by
app/lab/timing.py; the result is cached per process and model until someone asks to measure again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import torch

from app.instruments.compression import compression_ratio
from app.lab.once import MeasuredOnce
from app.lab.timing import Candidate, Comparison, Conditions, Spread, compare, interleave
from app.nets.compiled import eager_of
from app.nets.dit import DiT, DiTBlock
from app.pipelines.image import Pipeline

BUDGET_S = 4.0  # wall seconds the rounds may take (at least MIN_ROUNDS are run whatever they cost)
ROUNDS = 5
FULL_FORWARD_MAX_TOKENS = 1024  # above this a pixel-space forward is estimated from one block
GUIDANCE_BATCH = 2
CONTEXT_TOKENS = 12
RGB = 3


@dataclass(frozen=True)
class ForwardTiming:
    """One denoiser forward on one grid: its size, and its timed rounds (Spread's fields)."""

    label: str
    grid: tuple[int, int, int]  # (height, width, channels) of the tensor the DiT denoises
    patch: int
    tokens: int
    attention_pairs: int  # tokens^2 per head and layer
    weights: str  # "trained" or "random"
    runs_ms: list[float]
    median_ms: float
    low_ms: float
    high_ms: float
    min_ms: float
    max_ms: float
    relative_spread: float
    estimated: bool
    basis: str | None


@dataclass(frozen=True)
class MeasuredCompression:
    """The served model's latent vs its architecture on pixels, timed here; the VAE's compression and quality."""

    latent: ForwardTiming
    pixel: list[ForwardTiming]
    savings: list[Comparison]  # each pixel forward against the latent one
    conditions: Conditions
    batch: int
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


@dataclass(frozen=True)
class _Forward:
    """A candidate and the description of its grid, before it is timed."""

    label: str
    grid: tuple[int, int, int]
    patch: int
    tokens: int
    weights: str
    candidate: Candidate

    def timed(self, spread: Spread) -> ForwardTiming:
        return ForwardTiming(self.label, self.grid, self.patch, self.tokens, self.tokens * self.tokens,
                             self.weights, **vars(spread))


def _inputs(dit: DiT, channels: int, side: int, device: torch.device):
    """A guided step's inputs (2 rows): noise, timestep, a caption-sized context and its all-true key mask."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(GUIDANCE_BATCH, channels, side, side, generator=generator).to(device)
    context = torch.randn(GUIDANCE_BATCH, CONTEXT_TOKENS, dit.config.context_dim, generator=generator).to(device)
    mask = torch.ones(GUIDANCE_BATCH, CONTEXT_TOKENS, dtype=torch.bool, device=device)
    return x, torch.full((GUIDANCE_BATCH,), 500, device=device), context, mask


def latent_forward(pipeline: Pipeline) -> _Forward:
    """The served DiT on its own latent grid, with its trained weights (eager, as the pixel-grid DiT it is timed
    against, even when the server samples with the compiled one)."""
    dit = eager_of(pipeline.dit)
    cfg = dit.config
    x, t, context, mask = _inputs(dit, cfg.latent_channels, cfg.latent_size, pipeline.device)
    return _Forward("latent (trained DiT)", (cfg.latent_size, cfg.latent_size, cfg.latent_channels), cfg.patch,
                    (cfg.latent_size // cfg.patch) ** 2, "trained",
                    Candidate("latent", lambda: dit(x, t, context, mask)))


def pixel_forward(pipeline: Pipeline, patch: int) -> _Forward:
    """The served DiT's architecture on the pixel grid at this patch size, randomly initialised."""
    side, device = pipeline.resolution, pipeline.device
    tokens = (side // patch) ** 2
    config = replace(pipeline.dit.config, latent_size=side, latent_channels=RGB, patch=patch)
    torch.manual_seed(0)
    x, t, context, mask = _inputs(pipeline.dit, RGB, side, device)
    name = f"pixels, patch {patch}"
    if tokens <= FULL_FORWARD_MAX_TOKENS:
        dit = DiT(config).to(device).eval()
        candidate = Candidate(name, lambda: dit(x, t, context, mask))
    else:
        block = DiTBlock(config.width, config.heads, config.mlp_ratio, config.context_dim).to(device).eval()
        hidden = torch.randn(GUIDANCE_BATCH, tokens, config.width, device=device)
        c = torch.randn(GUIDANCE_BATCH, config.width, device=device)
        candidate = Candidate(name, lambda: block(hidden, c, context, mask), times=config.depth,
                              basis=f"one transformer block timed on {tokens:,} tokens, × {config.depth} blocks "
                                    f"(all {config.depth} are identical; the patch embedding and output layer, "
                                    "a small share, are left out)")
    return _Forward(f"{name} (random weights)", (side, side, RGB), patch, tokens, "random", candidate)


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


@torch.inference_mode()
def measure(pipeline: Pipeline, card: dict | None = None, budget_s: float = BUDGET_S,
            beside=lambda: 0) -> MeasuredCompression:
    """Time the latent forward and the pixel-space forwards (patch 2, then patch 1) interleaved, within budget_s.

    beside() counts the other jobs running on the server, for the noisy flag."""
    started = time.perf_counter()
    forwards = [latent_forward(pipeline)] + [pixel_forward(pipeline, patch) for patch in (2, 1)
                                             if pipeline.resolution % patch == 0]
    run = interleave([f.candidate for f in forwards], ROUNDS, budget_s, beside=beside)
    latent, *pixel = [f.timed(run.spreads[f.candidate.name]) for f in forwards]
    f, c_z = pipeline.vae.config.downsample_factor, pipeline.vae.config.latent_channels
    cfg = pipeline.dit.config
    psnr, source = vae_psnr(pipeline, card)
    return MeasuredCompression(
        latent=latent, pixel=pixel, conditions=run.conditions, batch=GUIDANCE_BATCH,
        savings=[compare(p.candidate.name, run.spreads[p.candidate.name], "latent", run.spreads["latent"])
                 for p in forwards[1:]],
        dit={"width": cfg.width, "depth": cfg.depth, "heads": cfg.heads,
             "parameters": sum(p.numel() for p in pipeline.dit.parameters())},
        resolution=pipeline.resolution, f=f, latent_channels=c_z, ratio=compression_ratio(f, c_z),
        psnr_db=psnr, psnr_source=source, device=str(pipeline.device), torch_threads=torch.get_num_threads(),
        measured_s=time.perf_counter() - started, measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


_measured = MeasuredOnce()


def measured_once(pipeline: Pipeline, model_id: str, card: dict | None = None, remeasure: bool = False,
                  beside=lambda: 0) -> MeasuredCompression:
    """measure() the first time per process and model, or when asked to again; else the cached result (cached=True)."""
    return _measured.get(model_id, lambda: measure(pipeline, card, beside=beside), refresh=remeasure)
