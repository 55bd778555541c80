"""A tokenizer's codebook usage and the ceiling its reconstructions set (app/measure/tokens.py)."""

import math

import pytest
import torch

from app.measure.image import psnr
from app.measure.tokens import codebook_usage, reconstruction_ceiling, tokenizer_ceiling
from app.nets.vq import VQ_SIZES, VQTokenizer
from app.world.compose import render_pairs
from app.world.held_out import held_out_pairs, held_out_scenes
from app.world.scenes import render

pytestmark = pytest.mark.usefixtures("one_thread")


def test_usage_counts_codes_and_perplexity():
    usage = codebook_usage(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 8)
    assert usage == {"codes_used": 4, "dead_codes": 4, "perplexity": pytest.approx(4.0)}
    assert codebook_usage(torch.zeros(10, dtype=torch.long), 8)["perplexity"] == pytest.approx(1.0)


def test_perfect_reconstructions_reach_the_judges_ceiling():
    scenes, pairs = held_out_scenes(6, 32), held_out_pairs(6, 32)
    x, pair_x = render(scenes), render_pairs(pairs)
    out = reconstruction_ceiling(x, x, scenes, pair_x, pair_x, pairs)
    floor = 10 * math.log10(4.0 / 1e-10)  # psnr's floor on the mean squared error
    assert out["psnr_db"] == pytest.approx(floor) and out["pair_psnr_db"] == pytest.approx(floor)
    assert 0.0 <= out["judge_all"] <= 1.0 and 0.0 <= out["pair_judge_all"] <= 1.0


def test_tokenizer_ceiling_measures_through_its_tokens():
    torch.manual_seed(0)
    tokenizer = VQTokenizer(VQ_SIZES["tiny"]()).eval()
    scenes, pairs = held_out_scenes(4, 32), held_out_pairs(4, 32)
    x, pair_x = render(scenes), render_pairs(pairs)
    out = tokenizer_ceiling(tokenizer, scenes, x, pairs, pair_x)
    recon = tokenizer.decode(tokenizer.encode(x))
    assert out["psnr_db"] == pytest.approx(psnr(recon, x).mean().item())
    assert out["codes_used"] + out["dead_codes"] == tokenizer.codebook_size
    assert 1.0 <= out["perplexity"] <= out["codes_used"] + 1e-9 and math.isfinite(out["pair_psnr_db"])
