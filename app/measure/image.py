"""What the card and the guidance lab measure on images: adherence, diversity, variety, chance and PSNR."""

from __future__ import annotations

import math
from itertools import combinations, product

import numpy as np
import torch

from app.measure.judge import Verdict, matches
from app.world.scenes import COLOURS, POSITIONS, SHAPES, SIZES, Prompt

ATTRIBUTE_VALUES = {"shape": SHAPES, "colour": tuple(COLOURS), "size": SIZES, "position": POSITIONS}
CARD_GUIDANCE_SCALES = (0.0, 1.0, 3.0, 5.0, 7.5, 10.0, 15.0)  # the card's sweep; the guidance lab's grid default


def chance_level() -> dict[str, float]:
    """What an image that ignores the prompt matches by luck, per attribute and all four (uniform prompts)."""
    chance = {k: 1.0 / len(v) for k, v in ATTRIBUTE_VALUES.items()}
    chance["all"] = math.prod(chance.values())  # 1/324; "all" also asks for a clean image, so luck is at most this
    return chance


def expected_distinct(m: int, k: int) -> float:
    """Expected number of distinct values among k uniform draws from m: m (1 - (1 - 1/m)^k)."""
    return m * (1.0 - (1.0 - 1.0 / m) ** k)


def pairwise_rms(images: np.ndarray) -> float:
    """Mean over pairs of the RMS per-pixel distance between uint8 images (K, H, W, 3), pixels in [0, 1]."""
    x = images.astype(np.float64) / 255.0
    pairs = list(combinations(range(len(x)), 2))
    if not pairs:
        return 0.0
    return float(np.mean([np.sqrt(np.mean((x[i] - x[j]) ** 2)) for i, j in pairs]))


def full_prompts(n: int, seed: int = 0) -> list[Prompt]:
    """n full prompts cycling over every shape x colour; sizes and positions balanced, shuffled by seed."""
    rng = np.random.default_rng(seed)
    pairs = list(product(SHAPES, ATTRIBUTE_VALUES["colour"]))
    sizes = rng.permutation(np.resize(np.arange(len(SIZES)), n))
    positions = rng.permutation(np.resize(np.arange(len(POSITIONS)), n))
    return [Prompt(shape=pairs[i % len(pairs)][0], colour=pairs[i % len(pairs)][1], size=SIZES[sizes[i]],
                   position=POSITIONS[positions[i]]) for i in range(n)]


def adherence(verdicts: list[Verdict], prompts: list[Prompt]) -> dict[str, float]:
    """Share of images showing each attribute its prompt names, "clean", and "all" (every one + clean)."""
    hits: dict[str, list[bool]] = {}
    for verdict, prompt in zip(verdicts, prompts, strict=True):
        for key, ok in matches(verdict, prompt).items():
            hits.setdefault(key, []).append(ok)
        hits.setdefault("clean", []).append(verdict.clean)
    order = [k for k in (*ATTRIBUTE_VALUES, "clean", "all") if k in hits]
    return {k: float(np.mean(hits[k])) for k in order}


def variety(verdicts: list[Verdict], open_attributes: list[str]) -> dict[str, dict]:
    """Per attribute a prompt leaves open: distinct values the judge reads, out of how many, vs uniform draws."""
    out = {}
    for attr in open_attributes:
        seen = {getattr(v, attr) for v in verdicts} - {None}
        m = len(ATTRIBUTE_VALUES[attr])
        out[attr] = {"distinct": len(seen), "possible": m, "uniform_expected": expected_distinct(m, len(verdicts)),
                     "values": sorted(seen)}
    return out


def saturation(rgb) -> float:
    """HSV saturation (max - min) / max of an RGB colour, 0 for grey and black."""
    high, low = max(rgb), min(rgb)
    return (high - low) / high if high > 0 else 0.0


PALETTE_SATURATION = {name: saturation(rgb) for name, rgb in COLOURS.items()}


def over_saturation(verdicts: list[Verdict]) -> float | None:
    """Mean over the shapes whose colour the judge names of (drawn saturation - the palette colour's): > 0 when
    colours burn (strong guidance pushes them past the palette), 0 when exact; None when no shape was named."""
    gaps = [saturation(v.rgb) - PALETTE_SATURATION[v.colour] for v in verdicts if v.colour and v.rgb]
    return float(np.mean(gaps)) if gaps else None


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [-1, 1] (peak-to-peak 2): (B,)."""
    mse = (x_hat.float().clamp(-1, 1) - x.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))
