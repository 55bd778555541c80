"""The guidance variants beside plain CFG: adaptive projected guidance (APG) and CFG++, pinned by their formulas."""

import math

import pytest
import torch

from app.diffusion.guidance import apg_update, cfg_combine, make_guided_denoiser
from app.diffusion.samplers import sample_ddim
from app.diffusion.schedule import NoiseSchedule
from tests.unit.diffusion.test_guidance import COND, UNCOND, B, CountingModel

SCHEDULE = NoiseSchedule.make()
ABAR = SCHEDULE.alphas_cumprod


def _x(seed: int) -> torch.Tensor:
    return torch.randn(B, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_apg_without_projection_momentum_or_cap_is_cfg():
    diff, cond = _x(1), _x(2)
    update, _ = apg_update(diff, cond, None, eta=1.0, momentum=0.0, norm_threshold=0.0)
    assert torch.allclose(update, diff, atol=1e-6)


def test_apg_drops_the_part_parallel_to_the_conditional_prediction():
    diff, cond = _x(1), _x(2)
    update, _ = apg_update(diff, cond, None, eta=0.0, momentum=0.0, norm_threshold=0.0)
    dot = (update * cond).flatten(1).sum(1)
    assert torch.allclose(dot, torch.zeros(B), atol=1e-4)
    parallel = diff - update  # what was removed lies along cond
    cosine = (parallel * cond).flatten(1).sum(1) / (parallel.flatten(1).norm(dim=1) * cond.flatten(1).norm(dim=1))
    assert torch.allclose(cosine.abs(), torch.ones(B), atol=1e-5)


def test_apg_caps_the_update_norm_per_element():
    diff, cond = 10 * _x(1), _x(2)
    update, _ = apg_update(diff, cond, None, eta=1.0, momentum=0.0, norm_threshold=0.1)
    assert torch.allclose(update.flatten(1).norm(dim=1), torch.full((B,), 0.1 * math.sqrt(256)), rtol=1e-5)
    small, _ = apg_update(diff / 1000, cond, None, eta=1.0, momentum=0.0, norm_threshold=0.1)
    assert torch.allclose(small, diff / 1000)  # under the cap: untouched


def test_apg_momentum_adds_the_running_average_of_earlier_updates():
    first, second, cond = _x(1), _x(3), _x(2)
    _, running = apg_update(first, cond, None, eta=1.0, momentum=-0.5, norm_threshold=0.0)
    update, running = apg_update(second, cond, running, eta=1.0, momentum=-0.5, norm_threshold=0.0)
    assert torch.allclose(update, second - 0.5 * first, atol=1e-6) and torch.allclose(update, running, atol=1e-6)


def test_apg_guides_the_x0_prediction_and_returns_the_matching_noise():
    model = CountingModel()
    x, t, s = _x(4), 600, 4.0
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=s, method="apg", alphas_cumprod=ABAR)
    eps = denoise(x, t)
    a, b = math.sqrt(float(ABAR[t])), math.sqrt(1 - float(ABAR[t]))
    eps_c, eps_u = model(x, t, COND), model(x, t, UNCOND.expand(B, *UNCOND.shape[1:]))
    x0_c, x0_u = (x - b * eps_c) / a, (x - b * eps_u) / a
    update, _ = apg_update(x0_c - x0_u, x0_c, None)
    assert torch.allclose((x - b * eps) / a, x0_c + (s - 1) * update, atol=1e-4)
    assert not torch.allclose(eps, cfg_combine(eps_u, eps_c, s), atol=1e-3)


def test_apg_needs_the_schedule_and_unknown_methods_are_refused():
    with pytest.raises(ValueError, match="alphas_cumprod"):
        make_guided_denoiser(CountingModel(), COND, UNCOND, 3.0, method="apg")
    with pytest.raises(ValueError, match="unknown guidance method"):
        make_guided_denoiser(CountingModel(), COND, UNCOND, 3.0, method="pag")


def test_cfg_plus_plus_renoises_a_ddim_step_with_the_unconditional_estimate():
    model = CountingModel()
    x, lam = _x(5), 0.6
    seen = []
    denoise = make_guided_denoiser(model, COND, UNCOND, scale=lam, method="cfg++")
    out = sample_ddim(denoise, x, SCHEDULE, 1, callback=seen.append)
    t = seen[0].t
    eps_c, eps_u = model(x, t, COND), model(x, t, UNCOND.expand(B, *UNCOND.shape[1:]))
    a_t = float(ABAR[t])
    x0 = (x - math.sqrt(1 - a_t) * cfg_combine(eps_u, eps_c, lam)) / math.sqrt(a_t)
    # one step to the clean end (abar = 1): x0 itself; so take two steps and compare the first
    assert torch.allclose(out, x0, atol=1e-4)
    seen.clear()
    sample_ddim(denoise, x, SCHEDULE, 2, callback=seen.append)
    t0, t1 = seen[0].t, seen[1].t
    eps_c, eps_u = model(x, t0, COND), model(x, t0, UNCOND.expand(B, *UNCOND.shape[1:]))
    a0, a1 = float(ABAR[t0]), float(ABAR[t1])
    x0 = (x - math.sqrt(1 - a0) * cfg_combine(eps_u, eps_c, lam)) / math.sqrt(a0)
    assert torch.allclose(seen[0].x_next, math.sqrt(a1) * x0 + math.sqrt(1 - a1) * eps_u, atol=1e-4)
    plain = make_guided_denoiser(model, COND, UNCOND, scale=lam)  # CFG renoises with the guided estimate
    seen.clear()
    sample_ddim(plain, x, SCHEDULE, 2, callback=seen.append)
    assert not torch.allclose(seen[0].x_next, math.sqrt(a1) * x0 + math.sqrt(1 - a1) * eps_u, atol=1e-3)
