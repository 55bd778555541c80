"""The noise schedule (EQ MM3.1), its parameterisations and the training loss (EQ MM3.2)."""

import math

import pytest
import torch
from diffusers import DDPMScheduler

from app.diffusion.schedule import NoiseSchedule, as_eps_model, sample_timesteps, training_loss

SD = NoiseSchedule.make()  # scaled_linear, 0.00085 -> 0.012, T = 1000


def _diffusers(**kwargs) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, **kwargs)


# -------------------------------------------------------------------- the tables


def test_scaled_linear_matches_diffusers():
    ref = _diffusers(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    assert SD.T == 1000 and SD.alphas_cumprod.dtype == torch.float64
    assert torch.allclose(SD.betas, ref.betas.double(), rtol=0, atol=1e-8)
    # diffusers accumulates the product in float32 (worst error 4.7e-7); ours is float64
    assert (SD.alphas_cumprod - ref.alphas_cumprod.double()).abs().max() < 1e-6
    assert SD.alphas_cumprod[-1].item() == pytest.approx(0.0046601, abs=1e-7)


@pytest.mark.parametrize(
    "kind, diffusers_kind, start, end",
    [("linear", "linear", 1e-4, 0.02), ("cosine", "squaredcos_cap_v2", 0.00085, 0.012)],
)
def test_other_kinds_match_diffusers(kind, diffusers_kind, start, end):
    ours = NoiseSchedule.make(kind, T=1000, beta_start=start, beta_end=end)
    ref = _diffusers(beta_schedule=diffusers_kind, beta_start=start, beta_end=end)
    assert (ours.alphas_cumprod - ref.alphas_cumprod.double()).abs().max() < 1e-6


def test_cumprod_is_float64_exact():
    independent = torch.exp(torch.cumsum(torch.log1p(-SD.betas), dim=0))
    assert torch.allclose(SD.alphas_cumprod, independent, rtol=1e-12, atol=0)
    assert torch.allclose(SD.alphas, 1 - SD.betas)


def test_chapter_numbers_abar_036_gives_06_and_08():
    sched = NoiseSchedule.from_betas([0.1, 0.6])  # abar_1 = 0.9 * 0.4 = 0.36
    a, s = sched.coefficients(1)
    assert sched.alphas_cumprod[1].item() == pytest.approx(0.36, abs=1e-15)
    assert (a.item(), s.item()) == (pytest.approx(0.6, abs=1e-15), pytest.approx(0.8, abs=1e-15))


def test_variance_is_preserved_at_every_step():
    a, s = SD.coefficients(torch.arange(SD.T))
    assert torch.allclose(a**2 + s**2, torch.ones(SD.T, dtype=torch.float64), atol=1e-15)
    assert bool((a[1:] < a[:-1]).all())  # the signal only fades


def test_snr_and_the_trailing_start_pitfall():
    # DESIGN.md pitfall: an eps error reaches x0_hat multiplied by 1/sqrt(snr) at the first sampled step
    assert SD.snr(500).item() == pytest.approx(SD.alphas_cumprod[500].item() / (1 - SD.alphas_cumprod[500].item()))
    assert 1 / math.sqrt(SD.snr(SD.T - 1).item()) == pytest.approx(14.6, abs=0.1)
    cosine = NoiseSchedule.make("cosine")
    assert 1 / math.sqrt(cosine.snr(cosine.T - 1).item()) > 1_000


def test_invalid_schedules_are_refused():
    with pytest.raises(ValueError):
        NoiseSchedule.make("sigmoid")
    with pytest.raises(ValueError):
        NoiseSchedule.from_betas([0.1, 1.0])
    with pytest.raises(IndexError):
        SD.coefficients(SD.T)


def test_terminal_signal_rescale_keeps_the_first_step_and_moves_the_last():
    low = SD.with_terminal_signal(0.001)
    root, old = low.alphas_cumprod.sqrt(), SD.alphas_cumprod.sqrt()
    assert root[0].item() == pytest.approx(old[0].item(), rel=1e-12)
    assert root[-1].item() == pytest.approx(0.001, rel=1e-9)
    assert bool((root[1:] < root[:-1]).all())  # still a noising schedule
    slope = (root - 0.001) / (old - old[-1]).clamp_min(1e-30)  # linear in sqrt(abar): one stretch for every t
    assert torch.allclose(slope[:-1], slope[0].expand(SD.T - 1), rtol=1e-9)
    assert low.snr(SD.T - 1).item() == pytest.approx(1e-6, rel=1e-3)  # SD's own is 4.7e-3


def test_terminal_signal_rescale_matches_diffusers_zero_snr_away_from_the_floor():
    ours = SD.with_terminal_signal(1e-9).alphas_cumprod[:-1]
    theirs = torch.cumprod(1 - _diffusers(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                          rescale_betas_zero_snr=True).betas.double(), 0)[:-1]
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("floor", [0.0, -0.1, 0.07, 1.0])
def test_terminal_signal_must_lie_below_the_schedules_own(floor):
    with pytest.raises(ValueError, match="sqrt_abar_T"):
        SD.with_terminal_signal(floor)


def test_config_round_trip():
    for sched in (SD, NoiseSchedule.make("linear", T=40, beta_start=1e-3, beta_end=0.08),
                  NoiseSchedule.make("cosine", T=50), NoiseSchedule.from_betas([0.1, 0.6])):
        again = NoiseSchedule.from_config(sched.config())
        assert again.kind == sched.kind and torch.equal(again.alphas_cumprod, sched.alphas_cumprod)


# -------------------------------------------------------------------- EQ MM3.1 and the parameterisations


def test_add_noise_and_velocity_match_diffusers():
    ref = _diffusers(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    t = torch.tensor([0, 250, 700, 999])
    assert torch.allclose(SD.add_noise(x0, eps, t), ref.add_noise(x0, eps, t), atol=1e-5)
    assert torch.allclose(SD.velocity(x0, eps, t), ref.get_velocity(x0, eps, t), atol=1e-5)


def test_add_noise_broadcasts_one_timestep_per_sample():
    x0, eps = torch.randn(3, 2, 4, 4, dtype=torch.float64), torch.randn(3, 2, 4, 4, dtype=torch.float64)
    t = torch.tensor([10, 500, 990])
    batched = SD.add_noise(x0, eps, t)
    assert batched.shape == x0.shape and batched.dtype == torch.float64
    for b in range(3):
        a, s = SD.coefficients(int(t[b]))
        assert torch.allclose(batched[b], a * x0[b] + s * eps[b], atol=1e-15)


def test_round_trips_are_exact():
    x0, eps = torch.randn(5, 4, 8, 8, dtype=torch.float64), torch.randn(5, 4, 8, 8, dtype=torch.float64)
    t = torch.tensor([0, 1, 400, 998, 999])
    x_t = SD.add_noise(x0, eps, t)
    v = SD.velocity(x0, eps, t)
    assert torch.allclose(SD.x0_from_eps(x_t, eps, t), x0, atol=1e-12)
    assert torch.allclose(SD.eps_from_v(x_t, v, t), eps, atol=1e-12)
    assert torch.allclose(SD.x0_from_v(x_t, v, t), x0, atol=1e-12)
    # the same with one int timestep for the whole batch
    x_t = SD.add_noise(x0, eps, 321)
    assert torch.allclose(SD.eps_from_v(x_t, SD.velocity(x0, eps, 321), 321), eps, atol=1e-12)


def test_as_eps_model_converts_v_to_eps():
    x0, eps = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    t = 600
    x_t = SD.add_noise(x0, eps, t)
    model_v = lambda x, t, ctx: SD.velocity(x0, eps, t)  # noqa: E731 - a perfect v network
    assert torch.allclose(as_eps_model(model_v, SD, "v")(x_t, t, None), eps, atol=1e-12)
    assert as_eps_model(model_v, SD, "eps") is model_v


# -------------------------------------------------------------------- EQ MM3.2


@pytest.mark.parametrize("prediction", ["v", "eps"])
@pytest.mark.parametrize("weighting", [None, "min_snr"])
def test_training_loss_is_zero_only_for_a_perfect_predictor(prediction, weighting):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(6, 4, 8, 8, generator=g), torch.randn(6, 4, 8, 8, generator=g)
    t = sample_timesteps(6, SD.T, g)

    def perfect(x_t, t_):
        assert torch.allclose(x_t, SD.add_noise(x0, eps, t_))  # x_t is formed by EQ MM3.1
        return SD.velocity(x0, eps, t_) if prediction == "v" else eps

    def off_by_one(x_t, t_):
        return perfect(x_t, t_) + 1.0

    kwargs = dict(prediction=prediction, weighting=weighting)
    assert training_loss(perfect, x0, t, eps, SD, **kwargs).item() < 1e-10
    loss = training_loss(off_by_one, x0, t, eps, SD, **kwargs)
    assert loss.ndim == 0 and loss.item() > 0
    if weighting is None:
        assert loss.item() == pytest.approx(1.0, rel=1e-5)


def test_min_snr_weights():
    t = torch.tensor([0, 999])
    x0 = eps = torch.zeros(2, 1, 2, 2)
    snr = SD.snr(t)
    unit_error = lambda x_t, t_: SD.velocity(x0, eps, t_) + 1.0  # noqa: E731 - per-sample MSE of exactly 1
    loss = training_loss(unit_error, x0, t, eps, SD, prediction="v", weighting="min_snr")
    expected = (snr.clamp(max=5.0) / (snr + 1)).mean().item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx((5 / (snr[0] + 1) + snr[1] / (snr[1] + 1)).item() / 2)


def test_sample_timesteps_uniform_and_seeded():
    t = sample_timesteps(20_000, 1000, torch.Generator().manual_seed(3))
    assert t.shape == (20_000,) and t.dtype == torch.long
    assert t.min().item() == 0 and t.max().item() == 999
    assert abs(t.double().mean().item() - 499.5) < 5  # std of the mean is about 2
    again = sample_timesteps(20_000, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(t, again)
