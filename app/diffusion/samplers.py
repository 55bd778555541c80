"""Samplers: plain functions with one signature that walk x_T back to x_0 with a noise predictor and a callback.

Every sampler is `sample_<name>(denoise, x_T, schedule, steps, *, callback=None, generator=None,
timestep_spacing="trailing", steps_offset=1, clip_x0=None) -> x_0` (sample_ddim adds `eta`), where
`denoise(x_t, t) -> eps_hat` already runs the network, the v->eps conversion and guidance (EQ MM3.4).
Each one reproduces the diffusers scheduler of the same name step for step (prediction_type="epsilon").

Why "trailing" by default: it starts at t = T-1, the noisiest trained step, so x_T ~ N(0, I) matches what the
network saw ("leading" starts lower, at t = 901 for 10 steps, and leaves signal the sampler never removes). The
cost is that x0_hat = (x_t - sqrt(1-abar) eps_hat) / sqrt(abar) multiplies an error of eps_hat by 1/sqrt(snr).
With the scaled_linear schedule abar_{T-1} = 0.0047, a gain of about 15, harmless; with the cosine schedule
abar_{T-1} is 2.4e-9 and the gain is about 20,000 (the "dark blobs" pitfall): there, pass clip_x0 or use
"leading" spacing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from app.diffusion.schedule import NoiseSchedule

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, int], Tensor]
Spacing = Literal["trailing", "leading", "linspace"]
SPACINGS = ("trailing", "leading", "linspace")


class SamplingCancelled(Exception):
    """Raised from a callback to stop sampling (the server's way of cancelling a job)."""


@dataclass(frozen=True)
class StepInfo:
    """What a callback sees after one denoising step."""

    index: int  # 0-based step number
    total: int  # number of steps
    t: int  # timestep of this step's input
    x_t: Tensor  # (B, ...) input of this step
    x0_hat: Tensor  # (B, ...) predicted clean sample (after clip_x0)
    eps_hat: Tensor  # (B, ...) noise prediction returned by denoise
    x_next: Tensor  # (B, ...) output of this step


Callback = Callable[[StepInfo], None]


# -------------------------------------------------------------------- timesteps


def timesteps_for(
    schedule: NoiseSchedule,
    steps: int,
    spacing: Spacing = "trailing",
    *,
    steps_offset: int = 1,
    drop_last: bool = False,
) -> list[int]:
    """The descending timesteps a sampler visits, exactly as diffusers lays them out (Lin et al. 2023, Table 2).

    drop_last=True is diffusers' DPM-Solver convention for "leading" and "linspace": lay steps + 1 points and drop
    the cleanest one, which the solver's last step reaches as sigma = 0 (it leaves "trailing" unchanged).
    steps_offset shifts "leading" only (Stable Diffusion uses 1).
    """
    T = schedule.T
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, {T}], got {steps}")
    points = steps + 1 if drop_last else steps
    if spacing == "trailing":
        # [:steps]: for some steps (61, 103, ...) float round-off makes arange yield one more point, t = -1
        ts = np.round(np.arange(T, 0, -T / steps)[:steps]).astype(np.int64) - 1
    elif spacing == "leading":
        ts = (np.arange(0, points) * (T // points)).round()[::-1].astype(np.int64) + steps_offset
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, points).round()[::-1].astype(np.int64)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; expected one of {SPACINGS}")
    if drop_last and spacing != "trailing":
        ts = ts[:-1]
    out = [int(t) for t in ts]
    if len(out) != steps or any(b >= a for a, b in zip(out, out[1:])) or out[0] >= T or out[-1] < 0:
        raise ValueError(f"{steps} steps do not fit {spacing!r} spacing on T = {T} (timesteps {out[:4]}...)")
    return out


def _abar_path(schedule: NoiseSchedule, ts: list[int]) -> list[float]:
    """abar at each visited timestep, then 1.0 for the clean end (float64 scalars)."""
    return [float(schedule.alphas_cumprod[t]) for t in ts] + [1.0]


# -------------------------------------------------------------------- shared pieces


def _noise_like(x: Tensor, generator: torch.Generator | list[torch.Generator] | None) -> Tensor:
    """N(0, I) drawn on the generator's device (the CPU by default), so a seed gives the same picture anywhere.

    A list holds one generator per batch item: each row then depends on its own seed alone, so one image of
    a batch can be reproduced on its own.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != x.shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {x.shape[0]}")
        return torch.cat([_noise_like(x[i : i + 1], g) for i, g in enumerate(generator)])
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def _predict_x0(x: Tensor, eps: Tensor, abar: float, clip_x0: float | None) -> tuple[Tensor, Tensor]:
    """x0_hat by EQ MM3.1 and the eps consistent with it (re-derived when x0_hat is clipped)."""
    a, s = math.sqrt(abar), math.sqrt(1.0 - abar)
    x0 = (x - s * eps) / a
    if clip_x0 is None:
        return x0, eps
    x0 = x0.clamp(-clip_x0, clip_x0)
    return x0, (x - a * x0) / s


def _report(callback: Callback | None, i: int, n: int, t: int, x, x0, eps, x_next) -> None:
    """Hand one step to the callback; whatever it raises (SamplingCancelled) propagates and ends sampling."""
    if callback is not None:
        callback(StepInfo(index=i, total=n, t=t, x_t=x, x0_hat=x0, eps_hat=eps, x_next=x_next))


# -------------------------------------------------------------------- samplers


@torch.no_grad()
def sample_ddpm(
    denoise: Denoiser,
    x_T: Tensor,
    schedule: NoiseSchedule,
    steps: int,
    *,
    callback: Callback | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    timestep_spacing: Spacing = "trailing",
    steps_offset: int = 1,
    clip_x0: float | None = None,
) -> Tensor:
    """Ancestral DDPM (Ho et al. 2020, eq. 6-7) between the visited timesteps: draw from q(x_s | x_t, x0_hat).

    For a jump t -> s, alpha = abar_t / abar_s plays the one-step alpha, and the noise has the posterior variance
    (1 - abar_s) / (1 - abar_t) * (1 - alpha) (diffusers' "fixed_small"). No noise on the last step.
    """
    ts = timesteps_for(schedule, steps, timestep_spacing, steps_offset=steps_offset)
    abar = _abar_path(schedule, ts)
    x = x_T
    for i, t in enumerate(ts):
        a_t, a_s = abar[i], abar[i + 1]
        eps = denoise(x, t)
        x0, _ = _predict_x0(x, eps, a_t, clip_x0)
        alpha = a_t / a_s
        c_x0 = math.sqrt(a_s) * (1.0 - alpha) / (1.0 - a_t)
        c_xt = math.sqrt(alpha) * (1.0 - a_s) / (1.0 - a_t)
        x_next = c_x0 * x0 + c_xt * x
        if i < len(ts) - 1:
            var = (1.0 - a_s) / (1.0 - a_t) * (1.0 - alpha)
            x_next = x_next + math.sqrt(var) * _noise_like(x, generator)
        _report(callback, i, len(ts), t, x, x0, eps, x_next)
        x = x_next
    return x


@torch.no_grad()
def sample_ddim(
    denoise: Denoiser,
    x_T: Tensor,
    schedule: NoiseSchedule,
    steps: int,
    *,
    callback: Callback | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    timestep_spacing: Spacing = "trailing",
    steps_offset: int = 1,
    clip_x0: float | None = None,
    eta: float = 0.0,
) -> Tensor:
    """DDIM (Song et al. 2021, eq. 12 and 16): x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z.

    eta = 0 is deterministic; eta = 1 gives DDPM's posterior exactly. The step goes to the next visited timestep
    (diffusers' DDIMScheduler instead jumps by T // steps, which differs for "linspace" spacing).
    """
    ts = timesteps_for(schedule, steps, timestep_spacing, steps_offset=steps_offset)
    abar = _abar_path(schedule, ts)
    x = x_T
    for i, t in enumerate(ts):
        a_t, a_s = abar[i], abar[i + 1]
        eps = denoise(x, t)
        x0, eps_used = _predict_x0(x, eps, a_t, clip_x0)
        direction = denoise.direction_eps(eps_used) if hasattr(denoise, "direction_eps") else eps_used  # CFG++
        sigma = eta * math.sqrt((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s))
        x_next = math.sqrt(a_s) * x0 + math.sqrt(max(1.0 - a_s - sigma**2, 0.0)) * direction
        if sigma > 0:
            x_next = x_next + sigma * _noise_like(x, generator)
        _report(callback, i, len(ts), t, x, x0, eps, x_next)
        x = x_next
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoise: Denoiser,
    x_T: Tensor,
    schedule: NoiseSchedule,
    steps: int,
    *,
    callback: Callback | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    timestep_spacing: Spacing = "trailing",
    steps_offset: int = 1,
    clip_x0: float | None = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): multistep, second order, in the data prediction x0_hat.

    With lambda = log(alpha / sigma) and h = lambda_s - lambda_t, each step is
    x_s = (sigma_s / sigma_t) x_t - alpha_s (e^-h - 1) (D0 + D1 / 2), D0 = x0_hat_t, D1 = (x0_hat_t - x0_hat_prev) / r,
    r = h_prev / h. The first step (no history) and the last (to sigma = 0, where it returns x0_hat) are first order,
    as in diffusers. Deterministic: generator is accepted for the common signature and unused.
    """
    ts = timesteps_for(schedule, steps, timestep_spacing, steps_offset=steps_offset, drop_last=True)
    abar = _abar_path(schedule, ts)
    lam = [0.5 * math.log(a / (1.0 - a)) if a < 1.0 else math.inf for a in abar]
    x, x0_prev = x_T, None
    for i, t in enumerate(ts):
        a_t, a_s = abar[i], abar[i + 1]
        eps = denoise(x, t)
        x0, _ = _predict_x0(x, eps, a_t, clip_x0)
        if a_s == 1.0:
            x_next = x0  # sigma_s = 0: the first-order step lands on x0_hat exactly
        else:
            h = lam[i + 1] - lam[i]
            D = x0
            if x0_prev is not None:
                r = (lam[i] - lam[i - 1]) / h
                D = x0 + (0.5 / r) * (x0 - x0_prev)
            sigma_ratio = math.sqrt((1.0 - a_s) / (1.0 - a_t))
            x_next = sigma_ratio * x - math.sqrt(a_s) * math.expm1(-h) * D
        _report(callback, i, len(ts), t, x, x0, eps, x_next)
        x, x0_prev = x_next, x0
    return x


SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
}
