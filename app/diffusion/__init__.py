"""Diffusion maths in torch: noise schedule (EQ MM3.1-3.2), samplers with a per-step callback, guidance (EQ MM3.4)."""

from app.diffusion.guidance import GuidedDenoiser, cfg_combine, make_guided_denoiser
from app.diffusion.samplers import (
    SAMPLERS,
    SamplingCancelled,
    StepInfo,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    timesteps_for,
)
from app.diffusion.schedule import NoiseSchedule, as_eps_model, sample_timesteps, training_loss

__all__ = [
    "SAMPLERS",
    "GuidedDenoiser",
    "NoiseSchedule",
    "SamplingCancelled",
    "StepInfo",
    "as_eps_model",
    "cfg_combine",
    "make_guided_denoiser",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_timesteps",
    "timesteps_for",
    "training_loss",
]
