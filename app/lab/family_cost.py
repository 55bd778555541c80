"""What one image costs chapter §3.4's three families as the token count N grows, timed on this machine.

At N = 16, 64, 256 and 1024 tokens (grids of 4, 8, 16 and 32 per side) each family's own sampler draws one image
with classifier-free guidance (two rows per forward), on a network of the served architecture with random weights
(their cost does not depend on what the weights learned):
- autoregressive: app/pipelines/token_sampling.py's raster sampler with its KV cache: N forwards one after another
  (EQ MM3.5), each on one new token against the cache;
- masked: the MaskGIT sampler, ROUNDS parallel rounds, each a forward over all N tokens;
- diffusion: the served sampler (DPM-Solver++) for STEPS steps of a DiT whose latent grid gives N patch tokens.
  Where the 20 steps would not fit the time budget (N above FULL_DIFFUSION_MAX_TOKENS) one step is timed and
  multiplied by STEPS (every step runs the same forward), and the figure says so.
Caption encoding and decoding to pixels are left out: only the sampling loops, the part the families differ in.
All twelve are timed interleaved by app/lab/timing.py (median, quartiles, a noisy flag with the load average).
Whether the autoregressive time grew linearly with N is read from the medians: the least-squares slope of log time
against log N (app/measure/fits.py), "roughly linear" within LINEAR_BAND.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import torch

from app.diffusion.guidance import make_guided_denoiser
from app.diffusion.samplers import SAMPLERS
from app.diffusion.schedule import as_eps_model
from app.lab.families import forwards_per_image
from app.lab.once import MeasuredOnce
from app.lab.timing import Candidate, Conditions, Spread, interleave
from app.measure.fits import local_exponents, loglog_fit
from app.nets.dit import DiT
from app.nets.token_transformer import TOKEN_SIZES, TokenTransformer, TokenTransformerConfig
from app.pipelines.image import Pipeline
from app.pipelines.token_sampling import sample_autoregressive, sample_masked

TOKEN_COUNTS = (16, 64, 256, 1024)
ROUNDS = 8  # the masked sampler's rounds
STEPS = 20  # the diffusion sampler's steps
SAMPLER = "dpmpp_2m"  # the generation API's default
GUIDANCE_SCALE = 3.0  # any s != 1 runs both rows; the cost does not depend on its value
FULL_DIFFUSION_MAX_TOKENS = 256  # above this one diffusion step is timed and multiplied by STEPS
CONTEXT_TOKENS = 12  # a caption's length (the caption encoder's MAX_TOKENS)
BUDGET_S = 30.0  # wall seconds the rounds may take (at least MIN_ROUNDS are run whatever they cost)
REPEATS = 3
PRESET = "small"  # the trainers' default size, timed when no token model is loaded
LINEAR_BAND = (0.8, 1.2)  # a fitted exponent in here reads as "roughly linear"
TOKEN_FAMILIES = ("autoregressive", "masked")


@dataclass(frozen=True)
class Architecture:
    """The network timed for one family: its size, and where that size comes from, in words."""

    family: str
    served: bool  # the loaded model's size; False: another family's or the preset's, as `note` says
    note: str
    width: int
    depth: int
    heads: int
    codebook_size: int | None
    patch: int | None
    latent_channels: int | None


@dataclass(frozen=True)
class CostPoint:
    """One family at one N: sequential forwards, and one image's timed rounds (Spread's fields)."""

    tokens: int
    grid: int
    forwards: int  # sequential network forwards per image
    per_forward_ms: float  # median_ms / forwards
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
class CostCurve:
    family: str
    architecture: Architecture
    points: list[CostPoint]
    exponent: float  # time per image ~ N^k, the least-squares slope on log-log axes over the medians
    local_exponents: list[float | None]  # the slope between each N and the one before
    forwards_exponent: float  # sequential forwards ~ N^k: 1 when they grow as N, 0 when they stay fixed


@dataclass(frozen=True)
class Growth:
    """How the autoregressive time per image grew with N, read from the data."""

    exponent: float
    band: tuple[float, float]
    verdict: str  # "roughly linear", "faster than linear" or "slower than linear"
    text: str


@dataclass(frozen=True)
class FamilyCost:
    curves: list[CostCurve]  # autoregressive, masked, diffusion
    autoregressive: Growth
    conditions: Conditions
    repeats: int
    rounds: int
    steps: int
    sampler: str
    guidance_scale: float
    device: str
    torch_threads: int
    measured_s: float
    measured_at: str
    cached: bool = False


def growth(tokens: Sequence[int], medians_ms: Sequence[float], band: tuple[float, float] = LINEAR_BAND) -> Growth:
    """The verdict on time against N: the fitted exponent, and what the time per token did, in words."""
    k, _ = loglog_fit(tokens, medians_ms)
    first, last = medians_ms[0] / tokens[0], medians_ms[-1] / tokens[-1]
    span = (f"{medians_ms[-1] / medians_ms[0]:.1f}x the time for {tokens[-1] / tokens[0]:.0f}x the tokens "
            f"(N = {tokens[0]} to {tokens[-1]}); per token {first:.3g} ms, then {last:.3g} ms")
    if band[0] <= k <= band[1]:
        verdict, why = "roughly linear", f"an exponent from {band[0]} to {band[1]} reads as linear"
    elif k > band[1]:
        verdict = "faster than linear"
        why = "each token's forward got slower as N grew (it attends to every token before it, and there are more)"
    else:
        verdict = "slower than linear"
        why = "the time per token fell as N grew, so part of the cost does not grow with N at these sizes"
    return Growth(k, band, verdict, f"{verdict}: time per image grew as N^{k:.2f}, {span}: {why}")


# ------------------------------------------------------------------------------------------ the candidates


def _context(width: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A caption-sized context (1, L, D) and its all-true key mask, random: only its size matters here."""
    context = torch.randn(1, CONTEXT_TOKENS, width, generator=torch.Generator().manual_seed(seed))
    return context.to(device), torch.ones(1, CONTEXT_TOKENS, dtype=torch.bool, device=device)


def token_architecture(family: str, served: Mapping[str, TokenTransformerConfig],
                       reasons: Mapping[str, str]) -> tuple[TokenTransformerConfig, Architecture]:
    """The size timed for a token family: its loaded model's, else the other token model's (read the other way),
    else the trainers' default preset."""
    causal = family == "autoregressive"
    other = next((f for f in TOKEN_FAMILIES if f != family and f in served), None)
    why = reasons.get(family, f"the {family} model is not loaded")
    if family in served:
        cfg, note = served[family], f"the served {family} model's size"
    elif other is not None:
        cfg, note = replace(served[other], causal=causal), f"{why}; the served {other} model's size is timed"
    else:
        cfg, note = TOKEN_SIZES[PRESET](causal=causal), f"{why}; the trainers' default size ({PRESET}) is timed"
    arch = Architecture(family, family in served, note, cfg.width, cfg.depth, cfg.heads, cfg.codebook_size, None,
                        None)
    return replace(cfg, causal=causal), arch


def _token_candidate(family: str, cfg: TokenTransformerConfig, grid: int, device: torch.device) -> Candidate:
    torch.manual_seed(0)
    model = TokenTransformer(replace(cfg, grid=grid)).to(device).eval()
    cond, uncond = _context(cfg.context_dim, device, 1), _context(cfg.context_dim, device, 2)

    def run():
        generators = [torch.Generator().manual_seed(0)]
        if family == "autoregressive":
            return sample_autoregressive(model, cond, uncond, GUIDANCE_SCALE, 1.0, 0, generators)
        return sample_masked(model, cond, uncond, GUIDANCE_SCALE, 1.0, 0, ROUNDS, generators)

    return Candidate(f"{family} N={grid * grid}", torch.no_grad()(run))


def _diffusion_candidate(pipeline: Pipeline, grid: int) -> Candidate:
    cfg, device = pipeline.dit.config, pipeline.device
    torch.manual_seed(0)
    dit = DiT(replace(cfg, latent_size=grid * cfg.patch)).to(device).eval()

    def network(x_t: torch.Tensor, t: int, context: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return dit(x_t, torch.full((x_t.shape[0],), int(t), dtype=torch.long, device=device), *context)

    denoise = make_guided_denoiser(as_eps_model(network, pipeline.schedule, pipeline.prediction),
                                   _context(cfg.context_dim, device, 1), _context(cfg.context_dim, device, 2),
                                   GUIDANCE_SCALE)
    side = grid * cfg.patch
    x_T = torch.randn(1, cfg.latent_channels, side, side, generator=torch.Generator().manual_seed(0)).to(device)
    tokens = grid * grid
    steps = STEPS if tokens <= FULL_DIFFUSION_MAX_TOKENS else 1
    basis = None if steps == STEPS else (f"one sampler step (a guided forward on {tokens:,} tokens) timed, x {STEPS} "
                                         "steps: every step runs the same forward")
    sample = SAMPLERS[SAMPLER]
    return Candidate(f"diffusion N={tokens}", torch.no_grad()(lambda: sample(denoise, x_T, pipeline.schedule, steps)),
                     times=STEPS // steps, basis=basis)


def diffusion_architecture(pipeline: Pipeline) -> Architecture:
    cfg = pipeline.dit.config
    return Architecture("diffusion", True, "the served DiT's size (its latent grid scaled to give N patch tokens)",
                        cfg.width, cfg.depth, cfg.heads, None, cfg.patch, cfg.latent_channels)


# ------------------------------------------------------------------------------------------ measuring


def _curve(family: str, arch: Architecture, spreads: list[Spread], counts: Sequence[int]) -> CostCurve:
    forwards = [forwards_per_image(family, n, ROUNDS, STEPS) for n in counts]
    medians = [s.median_ms for s in spreads]
    points = [CostPoint(tokens=n, grid=round(n ** 0.5), forwards=f, per_forward_ms=s.median_ms / f, **vars(s))
              for n, f, s in zip(counts, forwards, spreads)]
    return CostCurve(family, arch, points, loglog_fit(counts, medians)[0], local_exponents(counts, medians),
                     loglog_fit(counts, forwards)[0])


def measure(pipeline: Pipeline, served: Mapping[str, TokenTransformerConfig], reasons: Mapping[str, str],
            repeats: int = REPEATS, budget_s: float = BUDGET_S, beside=lambda: 0,
            counts: Sequence[int] = TOKEN_COUNTS) -> FamilyCost:
    """Time the three samplers at every N of `counts` (square numbers), interleaved. served: the loaded token
    models' configs by family; reasons: why the others are not loaded. beside() counts the other jobs on the server
    (the noisy flag)."""
    started = time.perf_counter()
    device = pipeline.device
    grids = [round(n ** 0.5) for n in counts]
    sizes = {family: token_architecture(family, served, reasons) for family in TOKEN_FAMILIES}
    candidates = {family: [_token_candidate(family, sizes[family][0], g, device) for g in grids]
                  for family in TOKEN_FAMILIES}
    candidates["diffusion"] = [_diffusion_candidate(pipeline, g) for g in grids]
    run = interleave([c for family in candidates.values() for c in family], repeats, budget_s, beside=beside)
    archs = {**{f: sizes[f][1] for f in TOKEN_FAMILIES}, "diffusion": diffusion_architecture(pipeline)}
    curves = [_curve(family, archs[family], [run.spreads[c.name] for c in timed], counts)
              for family, timed in candidates.items()]
    return FamilyCost(
        curves=curves, autoregressive=growth(counts, [p.median_ms for p in curves[0].points]),
        conditions=run.conditions, repeats=repeats, rounds=ROUNDS, steps=STEPS, sampler=SAMPLER,
        guidance_scale=GUIDANCE_SCALE, device=str(device), torch_threads=torch.get_num_threads(),
        measured_s=time.perf_counter() - started, measured_at=datetime.now(UTC).isoformat(timespec="seconds"))


_measured = MeasuredOnce()


def measured_once(pipeline: Pipeline, served: Mapping[str, TokenTransformerConfig], reasons: Mapping[str, str],
                  key: tuple, repeats: int = REPEATS, remeasure: bool = False, beside=lambda: 0) -> FamilyCost:
    """measure() the first time per process, models (key: their ids) and repeats, or when asked to again."""
    return _measured.get((*key, repeats), lambda: measure(pipeline, served, reasons, repeats, beside=beside),
                         refresh=remeasure)
