"""The held-out draws: the seed no training run draws from, and the one- and two-shape scenes it gives."""

from __future__ import annotations

import numpy as np

from app.world.compose import PairBatch, sample_pairs
from app.world.scenes import SceneBatch, sample_scenes

VAL_SEED = 1_000_003


def held_out_scenes(n: int, resolution: int, seed: int = VAL_SEED) -> SceneBatch:
    """The fixed held-out scenes (the same for every run)."""
    return sample_scenes(n, np.random.default_rng(seed), resolution)


def held_out_pairs(n: int, resolution: int, seed: int = VAL_SEED) -> PairBatch:
    """The fixed held-out two-shape scenes (the same for every run)."""
    return sample_pairs(n, np.random.default_rng(seed), resolution)
