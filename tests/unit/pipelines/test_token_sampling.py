"""The token samplers: guidance on logits, exact categorical draws, raster order, MaskGIT's rounds, likelihoods."""

import math

import pytest
import torch

from app.nets.token_transformer import TOKEN_SIZES, TokenTransformer, mask_ratio
from app.pipelines.token_sampling import (
    UNKNOWN,
    draw,
    guided_logits,
    sample_autoregressive,
    sample_masked,
    token_log_probs,
)

K, GRID = 12, 4


def net(causal: bool) -> TokenTransformer:
    torch.manual_seed(0)
    return TokenTransformer(TOKEN_SIZES["tiny"](codebook_size=K, grid=GRID, causal=causal)).eval()


def captions(b: int) -> tuple[tuple, tuple]:
    torch.manual_seed(1)
    keep = torch.ones(b, 3, dtype=torch.bool)
    return (torch.randn(b, 3, 32), keep), (torch.randn(1, 3, 32), keep[:1])


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_guidance_on_logits_is_eq_mm34_per_sample():
    uncond, cond = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, -1.0]])
    both = torch.cat([uncond, uncond, cond, cond])
    out = guided_logits(both, torch.tensor([0.0, 3.0]))
    assert torch.equal(out[0], uncond[0])
    assert torch.equal(out[1], uncond[0] + 3 * (cond[0] - uncond[0]))
    assert torch.equal(guided_logits(torch.cat([uncond, cond]), 1.0), cond)


def test_a_draw_follows_softmax_of_the_logits_over_temperature():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.7]))
    n = 4000
    drawn = draw(logits.expand(n, 3), 1.0, 0, gens(*range(n)))
    freq = torch.bincount(drawn, minlength=3).float() / n
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.7]), atol=0.03)
    sharp = torch.bincount(draw(logits.expand(n, 3), 0.5, 0, gens(*range(n))), minlength=3).float() / n
    p = torch.softmax(logits / 0.5, 0)
    assert torch.allclose(sharp, p, atol=0.03)
    assert draw(logits[None], 0.0, 0, gens(0)).item() == 2  # T = 0: the most likely


def test_top_k_keeps_only_the_k_largest_logits():
    logits = torch.tensor([[0.0, 3.0, 2.9, -1.0]]).expand(500, 4)
    drawn = draw(logits, 5.0, 2, gens(*range(500)))
    assert set(drawn.tolist()) == {1, 2}


def test_the_autoregressive_sampler_draws_one_token_per_forward_in_raster_order():
    model = net(True)
    cond, uncond = captions(2)
    steps = []
    tokens = sample_autoregressive(model, cond, uncond, 2.0, 1.0, 0, gens(3, 4), steps.append, every=GRID)
    assert tokens.shape == (2, GRID * GRID) and 0 <= int(tokens.min()) and int(tokens.max()) < K
    assert [s.index for s in steps] == list(range(GRID)) and {s.total for s in steps} == {GRID}
    assert [s.forwards for s in steps] == [GRID * (i + 1) for i in range(GRID)]
    for i, s in enumerate(steps):  # rows fill top to bottom, each step's new tokens are the next row
        drawn = (s.tokens != UNKNOWN)[0]
        assert int(drawn.sum()) == GRID * (i + 1) and bool(drawn[: GRID * (i + 1)].all())
        assert s.new[0].nonzero().flatten().tolist() == list(range(GRID * i, GRID * (i + 1)))
    assert torch.equal(steps[-1].tokens, tokens)


def test_each_image_depends_on_its_seed_alone():
    model = net(True)
    cond, uncond = captions(2)
    pair = sample_autoregressive(model, cond, uncond, 2.0, 1.0, 0, gens(3, 4))
    alone = sample_autoregressive(model, (cond[0][1:], cond[1][1:]), uncond, 2.0, 1.0, 0, gens(4))
    assert torch.equal(pair[1], alone[0])
    again = sample_autoregressive(model, cond, uncond, 2.0, 1.0, 0, gens(3, 4))
    assert torch.equal(pair, again)


@pytest.mark.parametrize("rounds", [1, 4, 8])
def test_maskgit_fills_the_grid_in_its_rounds_on_the_cosine_schedule(rounds):
    model = net(False)
    cond, uncond = captions(2)
    steps = []
    tokens = sample_masked(model, cond, uncond, 2.0, 1.0, 0, rounds, gens(1, 2), steps.append)
    n = GRID * GRID
    assert len(steps) == rounds and [s.forwards for s in steps] == list(range(1, rounds + 1))
    assert int(tokens.min()) >= 0 and int(tokens.max()) < K
    for r, s in enumerate(steps):
        still = int((s.tokens == UNKNOWN)[0].sum())
        expected = 0 if r == rounds - 1 else math.floor(n * mask_ratio((r + 1) / rounds))
        assert still == expected
    kept = torch.zeros(n, dtype=torch.bool)
    for s in steps:  # a token, once kept, stays as it was
        assert not bool((s.new[0] & kept).any())
        kept |= s.new[0]
        assert torch.equal(s.tokens[0][kept], tokens[0][kept])
    assert bool(kept.all())


def test_the_log_probabilities_are_the_teacher_forced_softmax_of_each_next_token():
    model = net(True)
    (context, keep), _ = captions(2)
    tokens = torch.randint(0, K, (2, GRID * GRID))
    log_p = token_log_probs(model, tokens, context, keep)
    assert log_p.shape == tokens.shape and bool((log_p <= 0).all())
    logits = model(model.start_slots(tokens), context, keep)
    i = 5
    assert log_p[1, i].item() == pytest.approx(torch.log_softmax(logits[1, i], -1)[tokens[1, i]].item(), abs=1e-5)
