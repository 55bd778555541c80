"""Samplers step by step against diffusers' schedulers, the callback contract, and an oracle denoiser."""

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from app.diffusion.samplers import (
    SAMPLERS,
    SPACINGS,
    SamplingCancelled,
    StepInfo,
    sample_ddim,
    sample_ddpm,
    timesteps_for,
)
from app.diffusion.schedule import NoiseSchedule

SD = NoiseSchedule.make()
OFFSET = 1  # Stable Diffusion's steps_offset, our default for "leading"
SD_CONFIG = dict(
    num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
    prediction_type="epsilon", steps_offset=OFFSET,
)
SHAPE = (2, 4, 8, 8)
PATTERN = torch.linspace(-1, 1, math.prod(SHAPE[1:])).reshape(SHAPE[1:])  # a fixed spatial pattern


def dummy_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    """A deterministic stand-in for a network, depending on x_t and t.

    Like a real denoiser it keeps x0_hat of order 1 (eps_hat ~ sqrt(1 - abar) x_t plus a pattern), so the paths stay
    within |x| < 6 and float32 rounding stays near 1e-6; with eps = 0.1 x_t + f(t), x0_hat grows to ~60 and float32
    alone differs by 3e-5.
    """
    return math.sqrt(1.0 - SD.alphas_cumprod[int(t)].item()) * x + 0.3 * torch.sin(PATTERN * 3 + int(t) / 150.0)


def x_T(seed: int = 0) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def diffusers_scheduler(name: str, spacing: str, **overrides):
    """The diffusers scheduler of the same name on the same schedule; clipping off unless overridden."""
    if name == "dpmpp_2m":
        cls, config = DPMSolverMultistepScheduler, dict(algorithm_type="dpmsolver++", solver_order=2)
    else:
        cls, config = (DDPMScheduler if name == "ddpm" else DDIMScheduler), dict(clip_sample=False)
    return cls(**SD_CONFIG, timestep_spacing=spacing, **{**config, **overrides})


def run_diffusers(scheduler, steps, x, *, timesteps=None, seed=None, **step_kwargs):
    """The diffusers denoising loop; returns the visited timesteps and every x after each step."""
    if timesteps is None:
        scheduler.set_timesteps(steps)
    else:
        scheduler.set_timesteps(timesteps=timesteps)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    ts, xs = [], []
    for t in scheduler.timesteps:
        x = scheduler.step(dummy_eps(x, int(t)), t, x, generator=generator, **step_kwargs).prev_sample
        ts.append(int(t))
        xs.append(x)
    return ts, xs


def run_ours(name, steps, x, spacing, *, seed=None, **options):
    """Our sampler with a recording callback; returns the visited timesteps, every x_next, the infos, the result."""
    infos: list[StepInfo] = []
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    out = SAMPLERS[name](
        dummy_eps, x, SD, steps, callback=infos.append, generator=generator, timestep_spacing=spacing, **options
    )
    return [i.t for i in infos], [i.x_next for i in infos], infos, out


def assert_same_path(ours, ref, tol=1e-5):
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        err = (a - b).abs().max().item()
        assert err < tol, f"step {i}: max |diff| {err:.2e}"


# -------------------------------------------------------------------- timesteps


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [1, 3, 7, 10, 20, 50, 250])
def test_timesteps_equal_diffusers(spacing, steps):
    for cls in (DDPMScheduler, DDIMScheduler):
        ref = cls(**SD_CONFIG, timestep_spacing=spacing)
        ref.set_timesteps(steps)
        assert timesteps_for(SD, steps, spacing, steps_offset=OFFSET) == ref.timesteps.tolist()
    ref = diffusers_scheduler("dpmpp_2m", spacing)
    ref.set_timesteps(steps)
    assert timesteps_for(SD, steps, spacing, steps_offset=OFFSET, drop_last=True) == ref.timesteps.tolist()


def test_known_timestep_lists():
    assert timesteps_for(SD, 10, "trailing") == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert timesteps_for(SD, 10, "leading", steps_offset=1) == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert timesteps_for(SD, 4, "linspace") == [999, 666, 333, 0]
    assert timesteps_for(SD, 4, "linspace", drop_last=True) == [999, 749, 500, 250]


def test_trailing_never_yields_a_negative_timestep():
    # diffusers' float arange returns steps + 1 points ending at t = -1 for some step counts (61, 103, ...)
    ref = DDIMScheduler(**SD_CONFIG, timestep_spacing="trailing")
    ref.set_timesteps(61)
    assert len(ref.timesteps) == 62 and ref.timesteps[-1].item() == -1
    ours = timesteps_for(SD, 61, "trailing")
    assert len(ours) == 61 and ours == ref.timesteps.tolist()[:61]


def test_impossible_step_counts_are_refused():
    with pytest.raises(ValueError):
        timesteps_for(SD, 0, "trailing")
    with pytest.raises(ValueError):
        timesteps_for(SD, 1001, "trailing")
    with pytest.raises(ValueError):
        timesteps_for(SD, 1000, "leading", steps_offset=1)  # would reach t = 1000
    with pytest.raises(ValueError):
        timesteps_for(SD, 10, "quadratic")


# -------------------------------------------------------------------- step by step against diffusers


@pytest.mark.parametrize("steps", [10, 20])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_ddpm_matches_diffusers(spacing, steps):
    # the same seeded CPU generator feeds both: diffusers draws one randn(x.shape) per step, as we do
    ref_ts, ref_xs = run_diffusers(diffusers_scheduler("ddpm", spacing), steps, x_T(), seed=7)
    ts, xs, _, _ = run_ours("ddpm", steps, x_T(), spacing, seed=7)
    assert ts == ref_ts
    assert_same_path(xs, ref_xs)


def test_ddpm_noise_matters():
    """Guards the comparison above: another seed gives another path, so the noise really is compared."""
    _, a, _, _ = run_ours("ddpm", 10, x_T(), "trailing", seed=7)
    _, b, _, _ = run_ours("ddpm", 10, x_T(), "trailing", seed=8)
    assert (a[0] - b[0]).abs().max() > 0.1


@pytest.mark.parametrize("steps", [10, 20])
@pytest.mark.parametrize("spacing", ["trailing", "leading"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_diffusers(spacing, steps, eta):
    ref_ts, ref_xs = run_diffusers(diffusers_scheduler("ddim", spacing), steps, x_T(), seed=5, eta=eta)
    ts, xs, _, _ = run_ours("ddim", steps, x_T(), spacing, seed=5, eta=eta)
    assert ts == ref_ts
    assert_same_path(xs, ref_xs)


@pytest.mark.parametrize("steps", [10, 20])
def test_ddim_linspace_matches_first_order_dpm_solver(steps):
    # diffusers' DDIMScheduler jumps t -> t - T // steps, which skips off the "linspace" grid (999 -> 899, not 888);
    # DPM-Solver++ of order 1 is DDIM (eta = 0) exactly and steps along the given grid, so it is the reference here
    ts = timesteps_for(SD, steps, "linspace")
    assert ts[1] != ts[0] - 1000 // steps
    reference = diffusers_scheduler("dpmpp_2m", "linspace", solver_order=1)
    ref_ts, ref_xs = run_diffusers(reference, steps, x_T(), timesteps=ts)
    ours_ts, xs, _, _ = run_ours("ddim", steps, x_T(), "linspace")
    assert ours_ts == ref_ts == ts
    assert_same_path(xs, ref_xs)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_ddim_eta_one_is_ddpm(spacing):
    """DDIM with eta = 1 has DDPM's posterior mean and variance: the same noise gives the same path."""
    _, ddpm, _, _ = run_ours("ddpm", 10, x_T(), spacing, seed=3)
    _, ddim, _, _ = run_ours("ddim", 10, x_T(), spacing, seed=3, eta=1.0)
    assert_same_path(ddim, ddpm)


@pytest.mark.parametrize("steps", [10, 20])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_dpmpp_2m_matches_diffusers(spacing, steps):
    ref_ts, ref_xs = run_diffusers(diffusers_scheduler("dpmpp_2m", spacing), steps, x_T())
    ts, xs, _, _ = run_ours("dpmpp_2m", steps, x_T(), spacing)
    assert ts == ref_ts
    assert_same_path(xs, ref_xs)


def test_dpmpp_2m_is_second_order_in_the_middle():
    """Not DDIM in disguise: from the second step on, the history term changes the path."""
    _, dpm, _, _ = run_ours("dpmpp_2m", 10, x_T(), "trailing")
    first_order = diffusers_scheduler("dpmpp_2m", "trailing", solver_order=1)
    _, ddim = run_diffusers(first_order, 10, x_T())
    assert (dpm[0] - ddim[0]).abs().max() < 1e-5
    assert (dpm[1] - ddim[1]).abs().max() > 1e-3


@pytest.mark.parametrize(
    "name, overrides, step_kwargs",
    [
        ("ddpm", dict(clip_sample=True, clip_sample_range=1.0), {}),
        ("ddim", dict(clip_sample=True, clip_sample_range=1.0), dict(use_clipped_model_output=True)),
        ("dpmpp_2m", dict(thresholding=True, sample_max_value=1.0), {}),  # a threshold capped at 1 is a plain clip
    ],
)
def test_clip_x0_matches_diffusers_clipping(name, overrides, step_kwargs):
    ref = diffusers_scheduler(name, "trailing", **overrides)
    ref_ts, ref_xs = run_diffusers(ref, 10, x_T(), seed=2, **step_kwargs)
    _, xs, infos, _ = run_ours(name, 10, x_T(), "trailing", seed=2, clip_x0=1.0)
    assert_same_path(xs, ref_xs)
    assert max(i.x0_hat.abs().max().item() for i in infos) <= 1.0
    _, unclipped, _, _ = run_ours(name, 10, x_T(), "trailing", seed=2)
    assert (unclipped[0] - xs[0]).abs().max() > 1e-3  # the clip was active


# -------------------------------------------------------------------- callback


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_callback_once_per_step_in_order(name):
    ts, xs, infos, out = run_ours(name, 10, x_T(), "trailing", seed=0)
    assert [i.index for i in infos] == list(range(10))
    assert all(i.total == 10 for i in infos)
    assert ts == timesteps_for(SD, 10, "trailing")
    assert torch.equal(infos[0].x_t, x_T())
    for before, after in zip(infos, infos[1:]):
        assert after.x_t is before.x_next
    assert out is infos[-1].x_next
    assert all(i.x0_hat.shape == i.eps_hat.shape == SHAPE for i in infos)
    assert torch.allclose(infos[3].eps_hat, dummy_eps(infos[3].x_t, infos[3].t))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_raising_in_the_callback_stops_sampling(name):
    calls = []

    def counting(x, t):
        calls.append(t)
        return dummy_eps(x, t)

    def cancel_at_third(info: StepInfo):
        if info.index == 2:
            raise SamplingCancelled("job cancelled")

    with pytest.raises(SamplingCancelled):
        SAMPLERS[name](counting, x_T(), SD, 10, callback=cancel_at_third, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 3


# -------------------------------------------------------------------- oracle and reproducibility


def oracle_for(schedule: NoiseSchedule, x0: torch.Tensor):
    """The chapter's oracle denoiser: the exact noise implied by a known x0."""

    def denoise(x_t, t):
        a, s = schedule.coefficients(t)
        return (x_t - a.item() * x0) / s.item()

    return denoise


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("spacing", SPACINGS)
def test_oracle_recovers_x0(name, spacing):
    chapter = NoiseSchedule.make("linear", T=40, beta_start=1e-3, beta_end=0.08)  # the chapter's toy schedule
    x0 = torch.tensor([[1.5, -0.8]], dtype=torch.float64)
    for steps in (10, 20):
        xT = torch.randn(1, 2, generator=torch.Generator().manual_seed(steps), dtype=torch.float64)
        out = SAMPLERS[name](oracle_for(chapter, x0), xT, chapter, steps, timestep_spacing=spacing,
                             generator=torch.Generator().manual_seed(0))
        assert (out - x0).abs().max().item() < 1e-4
    x0 = torch.rand(SHAPE, generator=torch.Generator().manual_seed(9)) * 2 - 1
    out = SAMPLERS[name](oracle_for(SD, x0), x_T(), SD, 20, timestep_spacing=spacing,
                         generator=torch.Generator().manual_seed(0))
    assert (out - x0).abs().max().item() < 1e-4


def test_seeded_noise_reproduces_and_keeps_the_input_dtype():
    a = sample_ddpm(dummy_eps, x_T(), SD, 10, generator=torch.Generator().manual_seed(4))
    b = sample_ddpm(dummy_eps, x_T(), SD, 10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.dtype == torch.float32
    c = sample_ddim(dummy_eps, x_T().double(), SD, 10, eta=0.0)
    assert c.dtype == torch.float64
