"""The noise schedule and the forward process (EQ MM3.1), its parameterisations and the training loss (EQ MM3.2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

Tensor = torch.Tensor
Timestep = int | Tensor
Prediction = Literal["v", "eps"]

KINDS = ("scaled_linear", "linear", "cosine")
COSINE_MAX_BETA = 0.999  # diffusers' "squaredcos_cap_v2" cap; without it the last beta is 1 (abar_T = 0)


def _cosine_betas(T: int) -> Tensor:
    """Betas of the improved-DDPM cosine schedule, as diffusers' "squaredcos_cap_v2"."""

    def abar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1.0 - abar((i + 1) / T) / abar(i / T), COSINE_MAX_BETA) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A discrete variance-preserving schedule: t = 0..T-1, abar_t = prod_{s<=t} (1 - beta_s) (EQ MM3.1).

    Index 0 is the first noising step (abar_0 = 1 - beta_0, nearly clean), as in diffusers; "abar = 1" (the clean
    image) has no index. All tables are float64 on the CPU; the methods cast to the input's dtype and device.
    """

    betas: Tensor = field(repr=False)  # (T,) float64
    kind: str = "custom"
    beta_start: float | None = None
    beta_end: float | None = None
    alphas: Tensor = field(init=False, repr=False)  # (T,)
    alphas_cumprod: Tensor = field(init=False, repr=False)  # (T,)

    def __post_init__(self) -> None:
        betas = torch.as_tensor(self.betas).detach().to("cpu", torch.float64)
        if betas.ndim != 1 or len(betas) == 0:
            raise ValueError("betas must be a non-empty 1-D sequence")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas", 1.0 - betas)
        object.__setattr__(self, "alphas_cumprod", torch.cumprod(1.0 - betas, dim=0))

    # ---------------------------------------------------------------- construction

    @classmethod
    def make(
        cls,
        kind: str = "scaled_linear",
        T: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
    ) -> NoiseSchedule:
        """Build a named schedule; "scaled_linear" is Stable Diffusion's (linear in sqrt(beta))."""
        if T < 1:
            raise ValueError("T must be at least 1")
        if kind == "scaled_linear":
            betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
        elif kind == "linear":
            betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        elif kind == "cosine":
            return cls(_cosine_betas(T), kind="cosine")
        else:
            raise ValueError(f"unknown schedule kind {kind!r}; expected one of {KINDS}")
        return cls(betas, kind=kind, beta_start=beta_start, beta_end=beta_end)

    @classmethod
    def from_betas(cls, betas) -> NoiseSchedule:
        """A custom schedule from explicit betas (like diffusers' trained_betas)."""
        return cls(torch.as_tensor(betas, dtype=torch.float64), kind="custom")

    def with_terminal_signal(self, sqrt_abar_T: float) -> NoiseSchedule:
        """This schedule with sqrt(abar) shifted and stretched so the last step keeps `sqrt_abar_T` of the signal.

        Lin et al. 2023 ("Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1) with a
        floor: sqrt(abar_0) is kept, sqrt(abar_T) moves to sqrt_abar_T, and every step between moves linearly.
        Stable Diffusion's schedule leaves sqrt(abar_T) = 0.068 of the clean latents in x_T, enough for a
        network to read where things are and which way they go from the noise instead of the caption; at
        sampling x_T is pure noise, so that reading is random. A small floor (not 0) keeps x0 = (x_t - ...) /
        sqrt(abar_t) finite for the eps-based samplers.
        """
        root = self.alphas_cumprod.sqrt()
        first, last = float(root[0]), float(root[-1])
        if not 0.0 < sqrt_abar_T < last:
            raise ValueError(f"sqrt_abar_T must be in (0, {last:.4f}), the schedule's own, got {sqrt_abar_T}")
        shifted = (root - last) * (first - sqrt_abar_T) / (first - last) + sqrt_abar_T
        abar = shifted**2
        alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
        return NoiseSchedule.from_betas(1.0 - alphas)

    def config(self) -> dict:
        """JSON-able arguments that rebuild this schedule with from_config (saved inside checkpoints)."""
        if self.kind == "custom":
            return {"kind": "custom", "betas": self.betas.tolist()}
        if self.kind == "cosine":
            return {"kind": "cosine", "T": self.T}
        return {"kind": self.kind, "T": self.T, "beta_start": self.beta_start, "beta_end": self.beta_end}

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        """Inverse of config()."""
        config = dict(config)
        if config.get("kind") == "custom":
            return cls.from_betas(config["betas"])
        return cls.make(**config)

    @property
    def T(self) -> int:
        """Number of training timesteps."""
        return len(self.betas)

    # ---------------------------------------------------------------- per-timestep quantities

    def _abar(self, t: Timestep) -> Tensor:
        """abar_t as float64 on the CPU, shaped like t."""
        t = torch.as_tensor(t, dtype=torch.long).cpu()
        if bool(((t < 0) | (t >= self.T)).any()):
            raise IndexError(f"timestep out of range [0, {self.T - 1}]")
        return self.alphas_cumprod[t]

    def coefficients(self, t: Timestep) -> tuple[Tensor, Tensor]:
        """(sqrt(abar_t), sqrt(1 - abar_t)), the two weights of EQ MM3.1; float64, shaped like t."""
        abar = self._abar(t)
        return abar.sqrt(), (1.0 - abar).sqrt()

    def snr(self, t: Timestep) -> Tensor:
        """Signal-to-noise ratio abar_t / (1 - abar_t); float64, shaped like t."""
        abar = self._abar(t)
        return abar / (1.0 - abar)

    def _coefs_like(self, t: Timestep, x: Tensor) -> tuple[Tensor, Tensor]:
        """EQ MM3.1's weights broadcast against x (B, ...): scalar t -> scalars, (B,) t -> (B, 1, ..., 1)."""
        a, s = self.coefficients(t)
        if a.ndim == 1:
            shape = (-1,) + (1,) * (x.ndim - 1)
            a, s = a.reshape(shape), s.reshape(shape)
        return a.to(x.device, x.dtype), s.to(x.device, x.dtype)

    def add_noise(self, x0: Tensor, eps: Tensor, t: Timestep) -> Tensor:
        """EQ MM3.1: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
        a, s = self._coefs_like(t, x0)
        return a * x0 + s * eps

    def velocity(self, x0: Tensor, eps: Tensor, t: Timestep) -> Tensor:
        """The v target (Salimans & Ho 2022): v = sqrt(abar) eps - sqrt(1 - abar) x0."""
        a, s = self._coefs_like(t, x0)
        return a * eps - s * x0

    def eps_from_v(self, x_t: Tensor, v: Tensor, t: Timestep) -> Tensor:
        """Noise implied by a v prediction: eps = sqrt(abar) v + sqrt(1 - abar) x_t."""
        a, s = self._coefs_like(t, x_t)
        return a * v + s * x_t

    def x0_from_v(self, x_t: Tensor, v: Tensor, t: Timestep) -> Tensor:
        """Clean sample implied by a v prediction: x0 = sqrt(abar) x_t - sqrt(1 - abar) v."""
        a, s = self._coefs_like(t, x_t)
        return a * x_t - s * v

    def x0_from_eps(self, x_t: Tensor, eps: Tensor, t: Timestep) -> Tensor:
        """EQ MM3.1 solved for x0: x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)."""
        a, s = self._coefs_like(t, x_t)
        return (x_t - s * eps) / a


# -------------------------------------------------------------------- training


def sample_timesteps(
    n: int, T: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> Tensor:
    """n timesteps drawn uniformly from 0..T-1 (drawn on the generator's device, then moved)."""
    gen_device = generator.device if generator is not None else "cpu"
    t = torch.randint(0, T, (n,), generator=generator, device=gen_device)
    return t.to(device) if device is not None else t  # (n,) long


def training_loss(
    predict: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    t: Tensor,
    eps: Tensor,
    schedule: NoiseSchedule,
    prediction: Prediction = "v",
    weighting: Literal["min_snr"] | None = None,
    min_snr_gamma: float = 5.0,
) -> Tensor:
    """EQ MM3.2: noise x0 by EQ MM3.1 and regress the target (eps, or v in the v-parameterisation); a scalar.

    weighting="min_snr" (Hang et al. 2023) weights each sample's MSE by min(snr, gamma)/snr for eps and
    min(snr, gamma)/(snr + 1) for v: both equal min(snr, gamma) times the error on x0, so loud, easy timesteps
    stop dominating the gradient.
    """
    x_t = schedule.add_noise(x0, eps, t)  # (B, ...)
    if prediction == "eps":
        target = eps
    elif prediction == "v":
        target = schedule.velocity(x0, eps, t)
    else:
        raise ValueError(f"prediction must be 'v' or 'eps', not {prediction!r}")
    err = (predict(x_t, t) - target).pow(2)
    per_sample = err.reshape(err.shape[0], -1).mean(dim=1)  # (B,)
    if weighting is None:
        return per_sample.mean()
    if weighting != "min_snr":
        raise ValueError(f"weighting must be None or 'min_snr', not {weighting!r}")
    snr = schedule.snr(t)
    clipped = snr.clamp(max=min_snr_gamma)
    weight = clipped / snr if prediction == "eps" else clipped / (snr + 1.0)
    return (weight.to(per_sample.device, per_sample.dtype) * per_sample).mean()


def as_eps_model(
    model: Callable[..., Tensor], schedule: NoiseSchedule, prediction: Prediction = "v"
) -> Callable[..., Tensor]:
    """Wrap a network model(x_t, t, *args) -> prediction into one that returns eps (what samplers consume)."""
    if prediction == "eps":
        return model
    if prediction != "v":
        raise ValueError(f"prediction must be 'v' or 'eps', not {prediction!r}")

    def model_eps(x_t: Tensor, t: Timestep, *args, **kwargs) -> Tensor:
        return schedule.eps_from_v(x_t, model(x_t, t, *args, **kwargs), t)

    return model_eps
