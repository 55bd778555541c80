"""bench/direction.py's yardstick: what knowing the caption's direction is worth to a caption-only predictor."""

import numpy as np
import torch

from app.world.clips import OPPOSITE, sample_clips
from bench.direction import caption_only_gap


def bank_of(latents_of) -> tuple[dict, np.ndarray]:
    clips = sample_clips(4000, np.random.default_rng(0), frames=2, resolution=32)
    bank = {"clips": clips, "latents": latents_of(clips)}
    return bank, np.arange(2000, 2400)


def test_latents_that_encode_the_direction_give_a_large_gap():
    # latent = a signed per-direction code plus noise: the right direction's mean is near, the opposite one far
    code = torch.randn(8, 2, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    for d in range(8):  # opposite directions have opposite codes
        if d < OPPOSITE[d]:
            code[OPPOSITE[d]] = -code[d]
    bank, test = bank_of(lambda c: code[torch.from_numpy(c.direction)] + 0.1 * torch.randn(len(c), 2, 1, 2, 2))
    result = caption_only_gap(bank, test)
    assert result["clips"] == len(test)
    assert result["x0_mse_right"] < 0.05 < result["x0_mse_opposite"]
    assert result["gap"] > 1.0


def test_latents_blind_to_the_direction_give_no_gap():
    bank, test = bank_of(lambda c: torch.randn(len(c), 2, 1, 2, 2, generator=torch.Generator().manual_seed(2)))
    result = caption_only_gap(bank, test)
    assert abs(result["gap"]) < 0.05
    assert result["x0_mse_right"] > result["x0_mse_mean_of_all_clips"]  # group means only add estimation noise
