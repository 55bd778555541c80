"""Classifier-free guidance (EQ MM3.4): the combination rule, rescaling, and one batched forward per step."""

import pytest
import torch

from app.diffusion.guidance import cfg_combine, make_guided_denoiser
from app.diffusion.samplers import sample_ddim
from app.diffusion.schedule import NoiseSchedule

B, L, D = 2, 5, 8
COND = torch.randn(B, L, D, generator=torch.Generator().manual_seed(0)) + 1.0
UNCOND = torch.zeros(1, L, D)  # the empty caption's encoding, one for the whole batch


class CountingModel:
    """model_eps(x, t, context) whose output depends on the context; records every call's batch size."""

    def __init__(self):
        self.batches: list[int] = []
        self.contexts: list[torch.Tensor] = []

    def __call__(self, x, t, context):
        self.batches.append(x.shape[0])
        self.contexts.append(context)
        return 0.1 * x + context.mean(dim=(1, 2)).view(-1, 1, 1, 1) + 1e-3 * t


# -------------------------------------------------------------------- cfg_combine


def test_chapter_worked_example():
    assert cfg_combine(0.20, 0.50, 7.5) == pytest.approx(2.45, abs=1e-12)


def test_chapter_snippet_vector():
    eps_u, eps_c = torch.tensor([[0.20, -0.10, 0.05]]), torch.tensor([[0.50, 0.30, 0.05]])
    assert torch.allclose(cfg_combine(eps_u, eps_c, 7.5), torch.tensor([[2.45, 2.90, 0.05]]))
    assert torch.equal(cfg_combine(eps_u, eps_c, 0.0), eps_u)
    assert torch.equal(cfg_combine(eps_u, eps_c, 1.0), eps_c)
    norms = [cfg_combine(eps_u, eps_c, s).norm().item() for s in (1.0, 3.0, 7.5, 15.0)]
    assert norms == sorted(norms)  # the norm keeps growing past s = 1: oversaturation


def test_rescale_zero_leaves_eq_mm34_unchanged_and_one_matches_the_cond_std():
    g = torch.Generator().manual_seed(1)
    eps_u, eps_c = torch.randn(3, 4, 6, 6, generator=g), 2.0 * torch.randn(3, 4, 6, 6, generator=g)
    plain = eps_u + 7.5 * (eps_c - eps_u)
    assert torch.equal(cfg_combine(eps_u, eps_c, 7.5, rescale=0.0), plain)
    full = cfg_combine(eps_u, eps_c, 7.5, rescale=1.0)
    assert torch.allclose(full.std(dim=(1, 2, 3)), eps_c.std(dim=(1, 2, 3)), rtol=1e-5)
    assert plain.std(dim=(1, 2, 3)).min() > 2 * eps_c.std(dim=(1, 2, 3)).max()  # the rescale had work to do
    half = cfg_combine(eps_u, eps_c, 7.5, rescale=0.5)
    assert torch.allclose(half, 0.5 * (plain + full), atol=1e-5)
    with pytest.raises(ValueError):
        cfg_combine(eps_u, eps_c, 7.5, rescale=1.5)


# -------------------------------------------------------------------- the guided denoiser


def test_one_batched_forward_per_step():
    model = CountingModel()
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=3.0)
    sched = NoiseSchedule.make()
    x = torch.randn(B, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    sample_ddim(denoise, x, sched, 6)
    assert model.batches == [2 * B] * 6 and denoise.forwards == 6
    assert torch.equal(model.contexts[0], torch.cat([UNCOND.expand(B, L, D), COND]))  # uncond half first


def test_guided_estimate_equals_eq_mm34_on_separate_forwards():
    model = CountingModel()
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=7.5, rescale=0.3)
    x = torch.randn(B, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    eps = denoise(x, 500)
    eps_c, eps_u = model(x, 500, COND), model(x, 500, UNCOND.expand(B, L, D))
    assert torch.allclose(eps, cfg_combine(eps_u, eps_c, 7.5, rescale=0.3), atol=1e-6)
    assert torch.allclose(denoise.last.eps_cond, eps_c) and torch.allclose(denoise.last.eps_uncond, eps_u)
    assert denoise.last.eps is eps


def test_scale_one_skips_the_unconditional_half():
    model = CountingModel()
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=1.0)
    x = torch.randn(B, 4, 8, 8)
    eps = denoise(x, 700)
    assert model.batches == [B] and torch.equal(model.contexts[0], COND)
    assert torch.equal(eps, model(x, 700, COND)) and denoise.last.eps_uncond is None


def test_scale_zero_is_unconditional():
    model = CountingModel()
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=0.0)
    x = torch.randn(B, 4, 8, 8)
    eps = denoise(x, 700)
    assert model.batches == [B]
    assert torch.equal(eps, model(x, 700, UNCOND.expand(B, L, D))) and denoise.last.eps_cond is None


def test_guidance_interval():
    model = CountingModel()
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=4.0, interval=(200, 800))
    x = torch.randn(B, 4, 8, 8)
    for t in (999, 800, 500, 200, 99):
        denoise(x, t)
    assert model.batches == [B, 2 * B, 2 * B, 2 * B, B]
    assert [denoise.guides_at(t) for t in (999, 800, 199)] == [False, True, False]


def test_mismatched_contexts_are_refused():
    with pytest.raises(ValueError):
        make_guided_denoiser(CountingModel(), COND, torch.zeros(1, L + 1, D), scale=3.0)
    denoise = make_guided_denoiser(CountingModel(), COND, UNCOND, scale=3.0)
    with pytest.raises(ValueError):
        denoise(torch.randn(3, 4, 8, 8), 10)  # 3 samples, 2 captions


# -------------------------------------------------------------------- per-sample settings (shared batches)


def test_per_sample_scales_rescales_and_intervals_match_separate_denoisers():
    cond = torch.randn(4, L, D, generator=torch.Generator().manual_seed(5)) + 1.0
    scale, rescale = torch.tensor([7.5, 1.0, 0.0, 3.0]), torch.tensor([0.0, 0.0, 0.0, 0.6])
    intervals = torch.tensor([[0, 999], [0, 999], [0, 999], [0, 400]])
    model = CountingModel()
    batched = make_guided_denoiser(model, cond, UNCOND, scale, rescale, intervals)
    x = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(6))
    for t in (700, 300):
        eps = batched(x, t)
        for i in range(4):
            alone = make_guided_denoiser(CountingModel(), cond[i:i + 1], UNCOND, float(scale[i]), float(rescale[i]),
                                         tuple(intervals[i].tolist()))(x[i:i + 1], t)
            assert torch.allclose(eps[i:i + 1], alone, atol=1e-6), (t, i)
    # t = 700: rows 0 and 2 need uncond (row 3 is outside its interval); rows 0, 1, 3 need cond (row 2 has s = 0)
    # t = 300: row 3 joins the guided rows. One forward per step: uncond rows first, then cond rows.
    assert model.batches == [2 + 3, 3 + 3]
    assert batched.last.uncond_rows.tolist() == [True, False, True, True]
    assert batched.last.cond_rows.tolist() == [True, True, False, True]
    assert batched.last.eps_uncond[1].abs().max() == 0 and batched.last.eps_cond[2].abs().max() == 0


def test_per_sample_values_must_match_the_batch():
    denoise = make_guided_denoiser(CountingModel(), COND, UNCOND, torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="3 values of scale for a batch of 2"):
        denoise(torch.randn(B, 4, 8, 8), 10)
    with pytest.raises(ValueError, match="rescale"):
        make_guided_denoiser(CountingModel(), COND, UNCOND, 3.0, torch.tensor([0.5, 1.5]))
