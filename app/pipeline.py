"""Prompt -> text encoding -> sampler loop -> VAE decode -> images, with per-step previews (chapter §3.3).

The trained parts are loaded once from models/: the VAE (EQ MM3.3), the caption encoder and the DiT that
predicts v (converted to the noise estimate of EQ MM3.2 for the samplers), guided by EQ MM3.4.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.diffusion.guidance import make_guided_denoiser
from app.diffusion.samplers import SAMPLERS, StepInfo
from app.diffusion.schedule import NoiseSchedule, as_eps_model
from app.nets.dit import DiT, DiTConfig
from app.nets.io import load_module, read_metadata
from app.nets.text import TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAEConfig
from app.scenes import parse_prompt, tokenize

WEIGHT_FILES = {"vae": "vae.safetensors", "text": "text_encoder.safetensors", "dit": "denoiser.safetensors"}


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that decides a picture besides the weights; same settings -> same images."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    guidance_scale: float = 5.0
    guidance_rescale: float = 0.0
    sampler: str = "dpmpp_2m"
    batch_size: int = 1
    eta: float = 0.0
    guidance_interval: tuple[int, int] | None = None

    def image_seeds(self) -> list[int]:
        """Image i of a batch uses seed + i, so any single image can be reproduced on its own."""
        return [self.seed + i for i in range(self.batch_size)]


@dataclass
class Step:
    """What a per-step callback sees: the sampler's StepInfo plus the guidance estimates of that step."""

    info: StepInfo
    eps_uncond: torch.Tensor | None
    eps_cond: torch.Tensor | None
    seconds: float


@dataclass
class GenerationResult:
    images: np.ndarray  # (B, H, W, 3) uint8
    seeds: list[int]
    settings: GenerationSettings
    prompt_canonical: str
    timings: dict[str, float] = field(default_factory=dict)


def pick_device(name: str = "auto") -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


class Pipeline:
    """The loaded model: caption encoder, DiT, VAE and noise schedule on one device."""

    def __init__(self, vae: VAE, text: TextEncoder, dit: DiT, schedule: NoiseSchedule, prediction: str,
                 metadata: dict | None = None):
        self.vae, self.text, self.dit, self.schedule = vae.eval(), text.eval(), dit.eval(), schedule
        self.prediction = prediction
        self.metadata = metadata or {}
        self.device = next(dit.parameters()).device
        self._model_eps = as_eps_model(self._network, schedule, prediction)

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto") -> Pipeline:
        """Load the three weight files from model_dir; a missing or corrupt file raises WeightsError naming it."""
        model_dir, dev = Path(model_dir), pick_device(device)
        vae, vae_meta = load_module(model_dir / WEIGHT_FILES["vae"], VAE, VAEConfig, dev)
        text, text_meta = load_module(model_dir / WEIGHT_FILES["text"], TextEncoder, TextEncoderConfig, dev)
        dit, dit_meta = load_module(model_dir / WEIGHT_FILES["dit"], DiT, DiTConfig, dev)
        schedule = NoiseSchedule.from_config(dit_meta["schedule"])
        metadata = {"vae": vae_meta, "text_encoder": text_meta, "denoiser": dit_meta}
        return cls(vae, text, dit, schedule, dit_meta.get("prediction", "v"), metadata)

    @staticmethod
    def metadata_of(model_dir: str | Path) -> dict:
        return {name: read_metadata(Path(model_dir) / file) for name, file in WEIGHT_FILES.items()}

    @property
    def resolution(self) -> int:
        return self.dit.config.latent_size * self.vae.config.downsample_factor

    def _network(self, x_t: torch.Tensor, t: int, context: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        tokens_context, mask = context
        t_batch = torch.full((x_t.shape[0],), int(t), dtype=torch.long, device=x_t.device)
        return self.dit(x_t, t_batch, tokens_context, mask)

    @torch.no_grad()
    def encode_captions(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Canonical captions -> (context (B, L, D), key mask (B, L))."""
        tokens = torch.from_numpy(tokenize(captions)).to(self.device)
        return self.text(tokens)

    def initial_noise(self, generators: list[torch.Generator]) -> torch.Tensor:
        """x_T ~ N(0, I), drawn on the CPU per image and then moved, so CPU and GPU start from the same static."""
        c, s = self.dit.config.latent_channels, self.dit.config.latent_size
        noise = [torch.randn((1, c, s, s), generator=g) for g in generators]
        return torch.cat(noise).to(self.device)  # (B, C, h, w)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, h, w) -> images (B, 3, H, W) in [-1, 1]."""
        return self.vae.decode_from_diffusion(latents)

    @torch.no_grad()
    def generate(self, settings: GenerationSettings, callback: Callable[[Step], None] | None = None) -> GenerationResult:
        """Sample settings.batch_size images; callback(Step) after every denoising step (raise to cancel)."""
        if settings.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {settings.sampler!r}; choose one of {sorted(SAMPLERS)}")
        started = time.perf_counter()
        prompt = parse_prompt(settings.prompt)
        negative = parse_prompt(settings.negative_prompt)
        seeds = settings.image_seeds()
        cond = self.encode_captions([prompt.canonical])
        uncond = self.encode_captions([negative.canonical])
        denoise = make_guided_denoiser(self._model_eps, cond, uncond, settings.guidance_scale,
                                       settings.guidance_rescale, settings.guidance_interval)
        # One CPU generator per image: it draws x_T, then the sampler's fresh noise (ddpm, ddim with eta > 0),
        # so image i depends on seeds[i] alone and can be reproduced outside its batch.
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        x_T = self.initial_noise(generators)
        last = [time.perf_counter()]

        def on_step(info: StepInfo) -> None:
            if callback is not None:
                now = time.perf_counter()
                callback(Step(info, denoise.last_eps_uncond, denoise.last_eps_cond, now - last[0]))
                last[0] = time.perf_counter()

        options = {"eta": settings.eta} if settings.sampler == "ddim" else {}
        sample = SAMPLERS[settings.sampler]
        t0 = time.perf_counter()
        z0 = sample(denoise, x_T, self.schedule, settings.steps, callback=on_step,
                    generator=generators, **options)
        t1 = time.perf_counter()
        images = to_uint8(self.decode(z0))
        t2 = time.perf_counter()
        return GenerationResult(
            images=images, seeds=seeds, settings=settings, prompt_canonical=prompt.canonical,
            timings={"sampling_s": t1 - t0, "decode_s": t2 - t1, "total_s": t2 - started,
                     "network_forwards": denoise.forwards},
        )
