"""Guidance on the real model (EQ MM3.4): a grid of scales x seeds, a small live sweep, and one step taken apart.

Every number is measured on images the model draws here: adherence by the program judge (app/measure/judge.py) and
diversity as the mean pairwise RMS distance across seeds, both exactly as app/measure/image.py defines them for the
model card, so the live numbers and the card's are the same measurement on fewer images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from app.diffusion.samplers import timesteps_for
from app.measure.image import CARD_GUIDANCE_SCALES, adherence, full_prompts, pairwise_rms
from app.measure.judge import judge, matches
from app.measure.pair_judge import judge_pairs, pair_matches
from app.measure.pairs import CATEGORIES, CHECKS, category_prompts, pair_adherence
from app.pipelines.image import GenerationResult, GenerationSettings, Pipeline, Step
from app.pipelines.tokens import TokenSettings
from app.world.compose import PairPrompt
from app.world.prompts import ImagePrompt, parse_prompt
from app.world.scenes import to_uint8

GRID_SCALES = CARD_GUIDANCE_SCALES  # the grid starts as the card's sweep
MAX_GRID_SCALES = 8
MAX_GRID_SEEDS = 8
MAX_GRID_IMAGES = 32
SWEEP_SCALES = (1.0, 3.0, 7.5)
MAX_SWEEP_IMAGES = 32

# ------------------------------------------------------------------------------------------ the grid


@dataclass(frozen=True)
class Column:
    """What one guidance scale drew across the seeds, and its measurements."""

    scale: float
    seeds: list[int]
    images: np.ndarray  # (K, H, W, 3) uint8, one per seed
    judged: list[dict]  # per image: shape, colour, size, position, clean as the judge reads them (two-shape
    # prompts: clean for the pair, and "objects", each shape's attributes)
    adherence: dict[str, float]  # per attribute the prompt names (two shapes: count, binding, relation), "clean" or
    # "count", and "all": share of the K images
    diversity_rms: float  # mean pairwise RMS distance across the seeds, pixels in [0, 1]


def grid_settings(base: GenerationSettings | TokenSettings, scales: Sequence[float],
                  seeds: Sequence[int]) -> list[GenerationSettings | TokenSettings]:
    """One job part per (scale, seed), scale-major: every column starts each row from the same noise. `base` holds
    the rest (prompts, and the family's own knobs: a diffusion sampler and its steps, or a token family's)."""
    if len(scales) * len(seeds) > MAX_GRID_IMAGES:
        raise ValueError(f"{len(scales)} scales x {len(seeds)} seeds is more than {MAX_GRID_IMAGES} images")
    return [replace(base, seed=int(seed), guidance_scale=float(scale), batch_size=1)
            for scale in scales for seed in seeds]


def judged_attributes(verdicts) -> list[dict[str, str | None]]:
    return [{"shape": v.shape, "colour": v.colour, "size": v.size, "position": v.position, "clean": v.clean}
            for v in verdicts]


def pair_judged(verdict) -> dict:
    """A two-shape image as the judge reads it: clean (exactly two clean shapes) and each shape's attributes."""
    return {"shape": None, "colour": None, "size": None, "position": None, "clean": verdict.clean,
            "objects": judged_attributes(verdict.objects)}


def judge_against(images: np.ndarray, asked: list[ImagePrompt]) -> tuple[list[dict], dict[str, float]]:
    """Images judged against their prompts (all one-shape or all two-shape): each image as the judge reads it, and
    the adherence over them."""
    if isinstance(asked[0], PairPrompt):
        verdicts = judge_pairs(images)
        return [pair_judged(v) for v in verdicts], pair_adherence(verdicts, asked)
    verdicts = judge(images)
    return judged_attributes(verdicts), adherence(verdicts, asked)


def measure_column(prompt: ImagePrompt, scale: float, seeds: list[int], images: np.ndarray) -> Column:
    """Judge one scale's images against the prompt (one shape or two); their spread across seeds."""
    judged, score = judge_against(images, [prompt] * len(images))
    return Column(scale=scale, seeds=seeds, images=images, judged=judged, adherence=score,
                  diversity_rms=pairwise_rms(images))


def measure_grid(prompt: str, scales: Sequence[float], seeds: Sequence[int],
                 results: Sequence[GenerationResult]) -> list[Column]:
    """The results of grid_settings(...) (same order) -> one measured Column per scale."""
    parsed, k = parse_prompt(prompt), len(seeds)
    if len(results) != len(scales) * k:
        raise ValueError(f"{len(results)} results for {len(scales)} scales x {k} seeds")
    columns = []
    for j, scale in enumerate(scales):
        images = np.concatenate([r.images for r in results[j * k:(j + 1) * k]])  # (K, H, W, 3)
        columns.append(measure_column(parsed, float(scale), [int(s) for s in seeds], images))
    return columns


# ------------------------------------------------------------------------------------------ the live sweep


@dataclass(frozen=True)
class SweepPoint:
    """Adherence and diversity at one scale over a few full prompts x seeds, as the card measures them."""

    scale: float
    adherence: dict[str, float]
    diversity_rms: float  # mean over prompts of the pairwise RMS distance across that prompt's seeds
    images: int


SWEEP_CATEGORIES = ("single", *CATEGORIES)


def sweep_settings(prompts: int, seeds: int, scales: Sequence[float], steps: int, sampler: str,
                   category: str = "single") -> tuple[list[GenerationSettings], list[ImagePrompt]]:
    """The card's first `prompts` prompts of a category (single: app.measure.image.full_prompts; a two-shape one:
    app.measure.pairs.category_prompts), prompt i from seeds i*seeds...; per scale.

    Parts are scale-major, one per (scale, prompt) with batch_size = seeds: the same noise as the card's sweep.
    """
    if prompts * seeds * len(scales) > MAX_SWEEP_IMAGES:
        raise ValueError(f"{prompts} prompts x {seeds} seeds x {len(scales)} scales is more than "
                         f"{MAX_SWEEP_IMAGES} images")
    if category not in SWEEP_CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {SWEEP_CATEGORIES}")
    chosen = full_prompts(prompts) if category == "single" else category_prompts(category, prompts)
    parts = [GenerationSettings(prompt=p.canonical, seed=i * seeds, steps=steps, guidance_scale=float(scale),
                                sampler=sampler, batch_size=seeds)
             for scale in scales for i, p in enumerate(chosen)]
    return parts, chosen


def measure_sweep(prompts: list[ImagePrompt], scales: Sequence[float],
                  results: Sequence[GenerationResult]) -> list[SweepPoint]:
    """The results of sweep_settings(...) (same order) -> one SweepPoint per scale."""
    n = len(prompts)
    points = []
    for j, scale in enumerate(scales):
        mine = results[j * n:(j + 1) * n]
        images = [r.images for r in mine]
        asked = [p for p, im in zip(prompts, images) for _ in range(len(im))]
        _, score = judge_against(np.concatenate(images), asked)
        points.append(SweepPoint(scale=float(scale), adherence=score,
                                 diversity_rms=float(np.mean([pairwise_rms(im) for im in images])),
                                 images=len(asked)))
    return points


# ------------------------------------------------------------------------------------------ one step, taken apart


@dataclass(frozen=True)
class Variant:
    """One way of combining the two estimates, with its formula as plain text and where it comes from."""

    name: str
    label: str
    formula: str
    source: str


VARIANTS = {
    "cfg": Variant("cfg", "classifier-free guidance",
                   "ε̃ = ε(∅) + s·[ε(c) − ε(∅)]", "EQ MM3.4 (Ho & Salimans 2022)"),
    "cfg_rescale": Variant("cfg_rescale", "CFG with rescale",
                           "ε_cfg = ε(∅) + s·[ε(c) − ε(∅)];  ε̃ = φ·ε_cfg·σ(ε(c))/σ(ε_cfg) + (1 − φ)·ε_cfg",
                           "Lin et al. 2023, eq. 15-16 (σ: standard deviation over the latent, per image)"),
    "cfg_interval": Variant("cfg_interval", "CFG in an interval of steps",
                            "ε̃ = ε(∅) + s·[ε(c) − ε(∅)] while t_lo ≤ t ≤ t_hi;  ε̃ = ε(c) elsewhere",
                            "Kynkäänniemi et al. 2024, guidance applied in a limited interval"),
    "apg": Variant("apg", "adaptive projected guidance",
                   "Δ = x̂0(c) − x̂0(∅) + β·Δ_prev, capped to norm r;  x̂0 = x̂0(c) + (s − 1)·Δ⊥x̂0(c)",
                   "Sadat et al. 2024, Algorithm 1 (η = 0: the part of Δ along x̂0(c) dropped; β = −0.5)"),
    "cfg++": Variant("cfg++", "CFG++ (manifold-constrained)",
                     "x̂0 from ε(∅) + λ·[ε(c) − ε(∅)];  x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev)·ε(∅)",
                     "Chung et al. 2024, Algorithm 1 (DDIM; λ in [0, 1])"),
}
CONVENTION = ("s = 0 ignores the prompt (the unconditional estimate alone), s = 1 is plain conditional sampling, "
              "s > 1 walks past the conditional estimate along ε(c) − ε(∅)")
DISPLAY = ("each map shows the latent's channels as tiles (a 2 x 2 grid for 4 channels), one square per latent "
           "cell; orange is positive, blue negative, grey zero. ε(∅), ε(c) and the guided estimate share one "
           "scale, ±(largest |value| of the three), so their sizes compare; the difference ε(c) − ε(∅), much "
           "smaller, is stretched to ±(its own largest |value|). The x̂0 row decodes the clean latent each "
           "estimate implies, x̂0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t (EQ MM3.1), with the VAE")
NEGATIVE, ZERO, POSITIVE = np.array([40, 90, 200]), np.array([128, 128, 128]), np.array([245, 130, 32])
GAP_RGB = np.array([15, 20, 25])
TILE_PX = 64  # a latent channel is drawn at least this many pixels wide


def interval_timesteps(start: float, end: float, T: int) -> tuple[int, int]:
    """Fractions of the way from pure noise (0) to clean (1) -> the inclusive timestep range (t_lo, t_hi).

    A fraction f stands for the timestep t = (1 - f)(T - 1), so start = 0.2, end = 0.8 guides the middle 60%.
    """
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"need 0 <= start <= end <= 1, got start {start}, end {end}")
    return round((1.0 - end) * (T - 1)), round((1.0 - start) * (T - 1))


def variant_settings(base: GenerationSettings, rescale: float, interval: tuple[int, int],
                     cfgpp_lambda: float) -> dict[str, GenerationSettings]:
    """Every variant on the same prompt and seed: CFG, its rescale and interval, APG at the same s, and CFG++ on
    DDIM at its own lambda. Group them with batches() to sample."""
    plain = replace(base, guidance_rescale=0.0, guidance_interval=None, guidance_method="cfg", batch_size=1)
    return {"cfg": plain, "cfg_rescale": replace(plain, guidance_rescale=rescale),
            "cfg_interval": replace(plain, guidance_interval=interval),
            "apg": replace(plain, guidance_method="apg"),
            "cfg++": replace(plain, guidance_method="cfg++", sampler="ddim", guidance_scale=cfgpp_lambda)}


def batches(variants: dict[str, GenerationSettings]) -> list[list[str]]:
    """The variants' names grouped by batch key, in order: each group is one sampling job."""
    groups: dict[tuple, list[str]] = {}
    for name, settings in variants.items():
        groups.setdefault(settings.batch_key(), []).append(name)
    return list(groups.values())


def diverging_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """(h, w) values -> uint8 (h, w, 3): -scale blue, 0 grey, +scale orange, clipped beyond."""
    v = np.clip(values / max(scale, 1e-12), -1.0, 1.0)[..., None]  # (h, w, 1)
    rgb = ZERO + np.where(v >= 0, v * (POSITIVE - ZERO), -v * (NEGATIVE - ZERO))
    return np.round(rgb).astype(np.uint8)


def channel_tiles(latent: torch.Tensor, scale: float) -> np.ndarray:
    """One latent (C, h, w) -> uint8 image of its channels as tiles in a near-square grid, 2 px gaps."""
    z = latent.detach().float().cpu().numpy()
    c, h, w = z.shape
    k = max(1, math.ceil(TILE_PX / max(h, w)))  # pixels per latent cell
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    gap = 2
    out = np.empty((rows * h * k + (rows - 1) * gap, cols * w * k + (cols - 1) * gap, 3), np.uint8)
    out[:] = GAP_RGB
    for i in range(c):
        r, q = divmod(i, cols)
        tile = diverging_rgb(z[i], scale).repeat(k, 0).repeat(k, 1)
        out[r * (h * k + gap):r * (h * k + gap) + h * k, q * (w * k + gap):q * (w * k + gap) + w * k] = tile
    return out


@dataclass(frozen=True)
class EstimateMap:
    """One estimate at the chosen step: its picture, size and the image it implies."""

    name: str
    image: np.ndarray  # channel tiles, uint8
    display_scale: float  # the |value| drawn at full colour
    norm: float  # L2 norm over the latent
    rms: float  # root mean square per latent value
    x0_image: np.ndarray | None  # the decoded x̂0 this estimate implies (not for the difference)


@dataclass(frozen=True)
class StepAnatomy:
    """The two estimates of EQ MM3.4 at one step of one variant's run, their difference and the guided result."""

    index: int
    total: int
    t: int
    abar_t: float
    guided: bool  # whether this variant applied guidance at this step (else the result is ε(c) alone)
    scale: float
    maps: list[EstimateMap]  # eps_uncond, eps_cond, difference, guided


class StepCapture:
    """A per-step callback (in the sampler's worker) that takes apart one step of one variant's rows."""

    def __init__(self, pipeline: Pipeline, settings: GenerationSettings, row: int, at_step: int):
        self.pipeline, self.settings, self.row, self.at_step = pipeline, settings, row, at_step
        self.anatomy: StepAnatomy | None = None

    def __call__(self, step: Step) -> None:
        if step.info.index == self.at_step and self.anatomy is None:
            self.anatomy = self._take_apart(step.rows(self.row, self.row + 1))

    @torch.no_grad()
    def _take_apart(self, step: Step) -> StepAnatomy:
        p, info = self.pipeline, step.info
        t, x_t = int(info.t), info.x_t  # (1, C, h, w)
        eps_u, eps_c = step.eps_uncond, step.eps_cond
        if eps_u is None or eps_c is None:  # this step skipped a half (s = 1, outside the interval): compute it
            eps_u, eps_c = p.eps_estimates(x_t, t, self.settings.prompt, self.settings.negative_prompt)
        guided = info.eps_hat  # what the sampler actually used
        diff = eps_c - eps_u
        shared = float(torch.stack([eps_u.abs().max(), eps_c.abs().max(), guided.abs().max()]).max())
        own = float(diff.abs().max())

        def implied(eps: torch.Tensor) -> np.ndarray:
            return to_uint8(p.decode(p.schedule.x0_from_eps(x_t, eps, t)))[0]

        def entry(name: str, eps: torch.Tensor, scale: float, x0: bool) -> EstimateMap:
            return EstimateMap(name=name, image=channel_tiles(eps[0], scale), display_scale=scale,
                               norm=float(eps.norm()), rms=float(eps.pow(2).mean().sqrt()),
                               x0_image=implied(eps) if x0 else None)

        s = self.settings
        in_interval = s.guidance_interval is None or s.guidance_interval[0] <= t <= s.guidance_interval[1]
        return StepAnatomy(
            index=info.index, total=info.total, t=t, abar_t=float(p.schedule.alphas_cumprod[t]),
            guided=s.guidance_scale != 1.0 and in_interval, scale=s.guidance_scale,
            maps=[entry("eps_uncond", eps_u, shared, True), entry("eps_cond", eps_c, shared, True),
                  entry("difference", diff, own, False), entry("guided", guided, shared, True)])


@dataclass(frozen=True)
class VariantImage:
    """The final image of one variant, with its formula and what the judge reads in it."""

    variant: Variant
    settings: GenerationSettings
    image: np.ndarray  # (H, W, 3) uint8
    judged: dict  # as a grid Column's judged entries
    matches: dict[str, bool]
    guided_steps: int  # steps at which the variant applied guidance


def guided_step_count(pipeline: Pipeline, settings: GenerationSettings) -> int:
    """How many of the run's steps apply guidance (all of them unless s = 1 or an interval excludes some)."""
    if settings.guidance_scale == 1.0:
        return 0
    ts = timesteps_for(pipeline.schedule, settings.steps)  # the samplers' default "trailing" spacing
    lo, hi = settings.guidance_interval or (0, pipeline.schedule.T - 1)
    return sum(lo <= t <= hi for t in ts)


def variant_images(pipeline: Pipeline, variants: dict[str, GenerationSettings],
                   results: Sequence[GenerationResult]) -> list[VariantImage]:
    """The results of the variants' batch (same order) -> judged images with formulas."""
    out = []
    for (name, settings), result in zip(variants.items(), results, strict=True):
        prompt = parse_prompt(settings.prompt)
        if isinstance(prompt, PairPrompt):
            [verdict] = judge_pairs(result.images[:1])
            judged = pair_judged(verdict)
            hits = {k: v for k, v in pair_matches(verdict, prompt).items() if k in CHECKS}
        else:
            [verdict] = judge(result.images[:1])
            judged, hits = judged_attributes([verdict])[0], matches(verdict, prompt)
        out.append(VariantImage(variant=VARIANTS[name], settings=settings, image=result.images[0], judged=judged,
                                matches=hits, guided_steps=guided_step_count(pipeline, settings)))
    return out
