"""Prompt -> text encoding -> sampler loop -> VAE decode -> images, with per-step previews (chapter §3.3).

The trained parts are loaded once from models/: the VAE (EQ MM3.3), the caption encoder and the DiT that
predicts v (converted to the noise estimate of EQ MM3.2 for the samplers), guided by EQ MM3.4.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from app.diffusion.guidance import GuidanceEstimates, make_guided_denoiser
from app.diffusion.samplers import SAMPLERS, StepInfo
from app.diffusion.schedule import NoiseSchedule
from app.nets.device import pick_device
from app.nets.dit import DiT, DiTConfig
from app.nets.io import load_module
from app.nets.text import TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAEConfig
from app.pipelines.denoiser import CaptionedDenoiser, DenoisingSettings, weights_metadata
from app.pipelines.protocol import refuse_unlearned
from app.world.prompts import parse_prompt
from app.world.scenes import to_uint8

WEIGHT_FILES = {"vae": "vae.safetensors", "text": "text_encoder.safetensors", "dit": "denoiser.safetensors"}


@dataclass(frozen=True)
class GenerationSettings(DenoisingSettings):
    """Everything that decides a picture besides the weights; same settings -> same images."""

    batch_size: int = 1
    guidance_interval: tuple[int, int] | None = None
    guidance_method: str = "cfg"  # app.diffusion.guidance.METHODS; "cfg++" renoises the DDIM way, so needs "ddim"

    def image_seeds(self) -> list[int]:
        """Image i of a batch uses seed + i, so any single image can be reproduced on its own."""
        return [self.seed + i for i in range(self.batch_size)]

    @property
    def rows(self) -> int:
        return self.batch_size

    def batch_key(self) -> tuple:
        """Settings with equal keys walk the same timesteps with the same sampler, so they can share one batch.

        Prompt, seed, scale, rescale, guidance interval and batch size may differ: they are per sample; the
        guidance method may not (APG carries momentum from step to step, CFG++ changes the sampler's step).
        """
        return self.steps, self.sampler, self.eta if self.sampler == "ddim" else 0.0, self.guidance_method


@dataclass
class Step:
    """What a per-step callback sees: the sampler's StepInfo plus the guidance estimates of that step."""

    info: StepInfo
    eps_uncond: torch.Tensor | None
    eps_cond: torch.Tensor | None
    seconds: float
    uncond_rows: torch.Tensor | None = None  # (B,) bool: rows of eps_uncond that were computed (None: all)
    cond_rows: torch.Tensor | None = None  # (B,) bool: the same for eps_cond

    @classmethod
    def of(cls, info: StepInfo, estimates: GuidanceEstimates, seconds: float) -> Step:
        return cls(info, estimates.eps_uncond, estimates.eps_cond, seconds, estimates.uncond_rows,
                   estimates.cond_rows)

    def rows(self, start: int, stop: int) -> Step:
        """The step as seen by the samples start..stop-1 of the batch (one job's share of a shared batch)."""
        cut = slice(start, stop)
        info = replace(self.info, x_t=self.info.x_t[cut], x0_hat=self.info.x0_hat[cut],
                       eps_hat=self.info.eps_hat[cut], x_next=self.info.x_next[cut])

        def part(eps: torch.Tensor | None, computed: torch.Tensor | None) -> torch.Tensor | None:
            if eps is None or (computed is not None and not bool(computed[cut].all())):
                return None
            return eps[cut]

        return Step(info, part(self.eps_uncond, self.uncond_rows), part(self.eps_cond, self.cond_rows), self.seconds)


@dataclass
class GenerationResult:
    images: np.ndarray  # (B, H, W, 3) uint8
    seeds: list[int]
    settings: GenerationSettings
    prompt_canonical: str
    timings: dict[str, float] = field(default_factory=dict)
    tokens: torch.Tensor | None = None  # (B, N) codebook indices, for the token families (app/pipelines/tokens.py)


class Pipeline(CaptionedDenoiser):
    """The loaded image model: caption encoder, DiT, VAE and noise schedule on one device."""

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
        return weights_metadata(model_dir, WEIGHT_FILES)

    @property
    def resolution(self) -> int:
        return self.dit.config.latent_size * self.vae.config.downsample_factor

    @torch.no_grad()
    def eps_estimates(self, x_t: torch.Tensor, t: int, prompt: str,
                      negative_prompt: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """The two estimates of EQ MM3.4, eps(x_t, t, negative) and eps(x_t, t, prompt), in one forward (B, ...) each."""
        b = x_t.shape[0]
        cond = self.encode_captions([parse_prompt(prompt).canonical])
        uncond = self.encode_captions([parse_prompt(negative_prompt).canonical])
        context = tuple(torch.cat([u.expand(b, *u.shape[1:]), c.expand(b, *c.shape[1:])])
                        for u, c in zip(uncond, cond))
        eps_uncond, eps_cond = self._model_eps(torch.cat([x_t, x_t]), t, context).chunk(2)
        return eps_uncond, eps_cond

    def initial_noise(self, generators: list[torch.Generator]) -> torch.Tensor:
        """x_T ~ N(0, I), drawn on the CPU per image and then moved, so CPU and GPU start from the same static."""
        c, s = self.dit.config.latent_channels, self.dit.config.latent_size
        noise = [torch.randn((1, c, s, s), generator=g) for g in generators]
        return torch.cat(noise).to(self.device)  # (B, C, h, w)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, h, w) -> images (B, 3, H, W) in [-1, 1]."""
        return self.vae.decode_from_diffusion(latents)

    def total_steps(self, parts: Sequence[GenerationSettings]) -> int:
        """Parts sampled together walk the same timesteps: one callback per step for all of them."""
        return parts[0].steps

    @torch.no_grad()
    def generate(self, settings: GenerationSettings, callback: Callable[[Step], None] | None = None) -> GenerationResult:
        """Sample settings.batch_size images; callback(Step) after every denoising step (raise to cancel)."""
        return self.generate_batch([settings], callback)[0]

    def _contexts(self, captions: list[str], sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One caption per job -> contexts per sample: (1, L, D) for a lone job (expanded later), else (B, L, D)."""
        context, mask = self.encode_captions(captions)  # (J, L, D), (J, L)
        if len(captions) == 1:
            return context, mask
        index = torch.repeat_interleave(torch.arange(len(sizes), device=self.device),
                                        torch.tensor(sizes, device=self.device))  # (B,)
        return context[index], mask[index]

    def _per_sample(self, values: list[float], sizes: list[int]) -> float | torch.Tensor:
        """A number shared by every job, or one value per sample (B,) when the jobs differ."""
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor([v for v, n in zip(values, sizes) for _ in range(n)], dtype=torch.float32)

    def _intervals(self, jobs: Sequence[GenerationSettings], sizes: list[int]) -> tuple[int, int] | torch.Tensor | None:
        """The guidance interval shared by every job, or per-sample (B, 2) pairs (no interval: every t)."""
        intervals = [job.guidance_interval for job in jobs]
        if all(i == intervals[0] for i in intervals):
            return intervals[0]
        pairs = [i if i is not None else (0, self.schedule.T - 1) for i in intervals]
        return torch.tensor([pair for pair, n in zip(pairs, sizes) for _ in range(n)], dtype=torch.long)

    def check(self, jobs: Sequence[GenerationSettings]) -> None:
        """Raise PromptNotLearned for a prompt or negative prompt this model's caption encoder cannot read."""
        refuse_unlearned(jobs, self.unlearned_words)

    @torch.no_grad()
    def generate_batch(self, jobs: Sequence[GenerationSettings],
                       callback: Callable[[Step], None] | None = None) -> list[GenerationResult]:
        """Sample several jobs as one batch: one network forward per step for all of them (EQ MM3.4 per sample).

        The jobs must share batch_key() (steps, sampler, eta); each keeps its own prompt, negative prompt, seeds,
        scale, rescale and guidance interval, and gets the same images as when sampled alone, up to the rounding
        of batched matrix products. callback(Step) sees the whole batch, the jobs' samples in order.
        """
        if not jobs:
            raise ValueError("no jobs to sample")
        first = jobs[0]
        if first.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {first.sampler!r}; choose one of {sorted(SAMPLERS)}")
        if any(job.batch_key() != first.batch_key() for job in jobs):
            raise ValueError("jobs sampled together must share steps, sampler, eta and guidance method: "
                             f"{sorted({job.batch_key() for job in jobs})}")
        if first.guidance_method == "cfg++" and first.sampler != "ddim":
            raise ValueError(f"CFG++ is defined on the DDIM step: use sampler 'ddim', not {first.sampler!r}")
        started = time.perf_counter()
        prompts = [parse_prompt(job.prompt) for job in jobs]
        negatives = [parse_prompt(job.negative_prompt) for job in jobs]
        sizes = [job.batch_size for job in jobs]
        cond = self._contexts([p.canonical for p in prompts], sizes)
        uncond = self._contexts([n.canonical for n in negatives], sizes)
        denoise = make_guided_denoiser(self._model_eps, cond, uncond,
                                       self._per_sample([job.guidance_scale for job in jobs], sizes),
                                       self._per_sample([job.guidance_rescale for job in jobs], sizes),
                                       self._intervals(jobs, sizes), first.guidance_method,
                                       self.schedule.alphas_cumprod)
        # One CPU generator per image: it draws x_T, then the sampler's fresh noise (ddpm, ddim with eta > 0),
        # so image i depends on seeds[i] alone and can be reproduced outside its batch.
        seeds = [job.image_seeds() for job in jobs]
        generators = [torch.Generator().manual_seed(int(seed)) for job_seeds in seeds for seed in job_seeds]
        x_T = self.initial_noise(generators)
        last = [time.perf_counter()]

        def on_step(info: StepInfo) -> None:
            if callback is not None:
                now = time.perf_counter()
                callback(Step.of(info, denoise.last, now - last[0]))  # the estimates of this step's evaluation
                last[0] = time.perf_counter()

        options = {"eta": first.eta} if first.sampler == "ddim" else {}
        sample = SAMPLERS[first.sampler]
        t0 = time.perf_counter()
        z0 = sample(denoise, x_T, self.schedule, first.steps, callback=on_step,
                    generator=generators, **options)
        t1 = time.perf_counter()
        images = to_uint8(self.decode(z0))
        t2 = time.perf_counter()
        timings = {"sampling_s": t1 - t0, "decode_s": t2 - t1, "total_s": t2 - started,
                   "network_forwards": denoise.forwards, "batch_jobs": len(jobs), "batch_images": sum(sizes)}
        bounds = np.cumsum([0, *sizes])
        return [GenerationResult(images=images[lo:hi], seeds=job_seeds, settings=job,
                                 prompt_canonical=prompt.canonical, timings=dict(timings))
                for job, job_seeds, prompt, lo, hi in zip(jobs, seeds, prompts, bounds[:-1], bounds[1:])]
