"""The held-out draws: the seed no training run draws from, and the scenes it gives."""

from __future__ import annotations

import numpy as np

from app.world.scenes import SceneBatch, sample_scenes

VAL_SEED = 1_000_003


def held_out_scenes(n: int, resolution: int, seed: int = VAL_SEED) -> SceneBatch:
    """The fixed held-out scenes (the same for every run)."""
    return sample_scenes(n, np.random.default_rng(seed), resolution)
