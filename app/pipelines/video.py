"""Prompt -> clip: the space-time model sampled jointly, and the per-frame baseline it is measured against.

- `VideoPipeline.generate`: one noise tensor for the whole clip (F frames of latents), the video DiT
  denoising all frames together under classifier-free guidance (EQ MM3.4), then the VAE decoding
  each frame.
- `sample_per_frame`: the failure the chapter describes, made real: the image model samples every
  frame on its own, each from its own noise (seed + k), with the clip prompt's image attributes.
- `ClipGenerator`: both behind the generation protocol (app/pipelines/protocol.py), so the sampling service
  runs a clip request (the clip, and with compare the per-frame baseline) like any other job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.diffusion.guidance import make_guided_denoiser
from app.diffusion.samplers import SAMPLERS, StepInfo
from app.diffusion.schedule import NoiseSchedule
from app.nets.io import load_module
from app.nets.text import TextEncoder, TextEncoderConfig
from app.nets.vae import VAE
from app.nets.video_dit import VideoDiT, VideoDiTConfig
from app.pipelines.denoiser import CaptionedDenoiser, DenoisingSettings, weights_metadata
from app.pipelines.image import GenerationSettings, Pipeline, Step
from app.pipelines.protocol import StepPosition
from app.world.clips import VideoPrompt, parse_video_prompt
from app.world.scenes import to_uint8

VIDEO_WEIGHT_FILES = {"text": "video_text_encoder.safetensors", "dit": "video_denoiser.safetensors"}
CLIP_METHODS = ("video", "per_frame")  # the space-time model; the image model, frame by frame


@dataclass(frozen=True)
class ClipSettings(DenoisingSettings):
    """Everything that decides a clip besides the weights; same settings -> same clip."""

    frames: int = 8
    method: str = "video"  # "video": the space-time model; "per_frame": the image model, frame by frame

    @property
    def rows(self) -> int:
        """Images the clip is made of (what it weighs in the service's batches)."""
        return self.frames

    def batch_key(self) -> None:
        """A clip runs alone: it never shares a batch with another job."""
        return None


@dataclass
class ClipResult:
    frames: np.ndarray  # (F, H, W, 3) uint8
    settings: ClipSettings
    prompt: VideoPrompt
    method: str  # "video" (the space-time model) or "per_frame" (the image model, frame by frame)
    caption: str  # what the network was conditioned on
    timings: dict[str, float] = field(default_factory=dict)


class VideoPipeline(CaptionedDenoiser):
    """The video model: its caption encoder and space-time DiT and their schedule, with the image model's VAE."""

    @classmethod
    def load(cls, model_dir: str | Path, vae: VAE) -> VideoPipeline:
        """The two video weight files from model_dir, on the VAE's device; WeightsError names a bad file."""
        model_dir = Path(model_dir)
        device = next(vae.parameters()).device
        text, text_meta = load_module(model_dir / VIDEO_WEIGHT_FILES["text"], TextEncoder, TextEncoderConfig, device)
        dit, dit_meta = load_module(model_dir / VIDEO_WEIGHT_FILES["dit"], VideoDiT, VideoDiTConfig, device)
        schedule = NoiseSchedule.from_config(dit_meta["schedule"])
        return cls(vae, text, dit, schedule, dit_meta.get("prediction", "v"),
                   {"text_encoder": text_meta, "denoiser": dit_meta})

    @staticmethod
    def available(model_dir: str | Path) -> bool:
        return all((Path(model_dir) / f).is_file() for f in VIDEO_WEIGHT_FILES.values())

    @staticmethod
    def metadata_of(model_dir: str | Path) -> dict:
        return weights_metadata(model_dir, VIDEO_WEIGHT_FILES)

    @property
    def max_frames(self) -> int:
        return self.dit.config.frames

    def initial_noise(self, seed: int, frames: int) -> tuple[torch.Tensor, torch.Generator]:
        """x_T (1, F, C, h, w) for the whole clip from one CPU generator (the same on CPU and GPU)."""
        c, s = self.dit.config.latent_channels, self.dit.config.latent_size
        generator = torch.Generator().manual_seed(int(seed))
        return torch.randn((1, frames, c, s, s), generator=generator).to(self.device), generator

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, F, C, h, w) normalised latents -> (B, F, 3, H, W) in [-1, 1], frame by frame."""
        images = self.vae.decode_from_diffusion(latents.flatten(0, 1))
        return images.view(*latents.shape[:2], *images.shape[1:])

    @torch.no_grad()
    def generate(self, settings: ClipSettings, callback: Callable[[StepInfo], None] | None = None) -> ClipResult:
        """Sample one clip; callback(StepInfo) after every denoising step (x_t etc. are (1, F, C, h, w); raise to cancel)."""
        if settings.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {settings.sampler!r}; choose one of {sorted(SAMPLERS)}")
        if not 1 <= settings.frames <= self.max_frames:
            raise ValueError(f"frames must be 1..{self.max_frames}, got {settings.frames}")
        started = time.perf_counter()
        prompt = parse_video_prompt(settings.prompt)
        t0 = time.perf_counter()
        z0, forwards = self.sample(settings, [settings.seed], callback)
        t1 = time.perf_counter()
        frames = to_uint8(self.decode(z0)[0])  # (F, H, W, 3)
        t2 = time.perf_counter()
        timings = {"sampling_s": t1 - t0, "decode_s": t2 - t1, "total_s": t2 - started,
                   "network_forwards": forwards}
        return ClipResult(frames, settings, prompt, "video", prompt.canonical, timings)

    @torch.no_grad()
    def sample(self, settings: ClipSettings, seeds: Sequence[int],
               callback: Callable[[StepInfo], None] | None = None) -> tuple[torch.Tensor, int]:
        """One clip per seed, all with the settings' captions, sampled as one batch: (latents (B, F, C, h, w),
        network forwards). Clip i is the clip generate() draws with seed seeds[i]."""
        prompt = parse_video_prompt(settings.prompt)
        negative = parse_video_prompt(settings.negative_prompt)
        denoise = make_guided_denoiser(self._model_eps, self.encode_captions([prompt.canonical]),
                                       self.encode_captions([negative.canonical]), settings.guidance_scale,
                                       settings.guidance_rescale, None)
        noise = [self.initial_noise(seed, settings.frames) for seed in seeds]
        x_T = torch.cat([x for x, _ in noise])
        options = {"eta": settings.eta} if settings.sampler == "ddim" else {}
        z0 = SAMPLERS[settings.sampler](denoise, x_T, self.schedule, settings.steps, callback=callback,
                                        generator=[g for _, g in noise], **options)
        return z0, denoise.forwards


def sample_per_frame(image: Pipeline, settings: ClipSettings,
                     callback: Callable[[object], None] | None = None) -> ClipResult:
    """The per-frame baseline: the image model draws frame k from its own noise (seed + k).

    The image model cannot read motion, so it gets the clip prompt's attributes, with the start (if
    any) as the position: what a frame-by-frame tool would be asked for.
    """
    started = time.perf_counter()
    prompt = parse_video_prompt(settings.prompt)
    negative = parse_video_prompt(settings.negative_prompt)
    job = GenerationSettings(prompt=prompt.image_prompt.canonical, negative_prompt=negative.image_prompt.canonical,
                             seed=settings.seed, steps=settings.steps, guidance_scale=settings.guidance_scale,
                             guidance_rescale=settings.guidance_rescale, sampler=settings.sampler,
                             batch_size=settings.frames, eta=settings.eta)
    result = image.generate(job, callback)
    timings = dict(result.timings) | {"total_s": time.perf_counter() - started}
    return ClipResult(np.asarray(result.images), settings, prompt, "per_frame", result.prompt_canonical, timings)


# ------------------------------------------------------------------------------------------ the protocol


@dataclass(frozen=True)
class ClipStep:
    """One denoising step of one method, as a watcher sees it; x0_hat is (F, C, h, w) on the model's device."""

    method: str  # "video" or "per_frame"
    position: StepPosition  # index and total within its method; t and EQ MM3.1 on that method's schedule
    x0_hat: torch.Tensor


class ClipGenerator:
    """Clips behind the generation protocol: each part is sampled by its method, one after the other."""

    def __init__(self, video: VideoPipeline, image: Pipeline):
        self.video, self.image = video, image

    def total_steps(self, parts: Sequence[ClipSettings]) -> int:
        return sum(part.steps for part in parts)

    def generate_batch(self, parts: Sequence[ClipSettings],
                       callback: Callable[[ClipStep], None] | None = None) -> list[ClipResult]:
        """Sample every part; callback(ClipStep) after every denoising step of either method (raise to cancel)."""
        return [self._generate(part, callback) for part in parts]

    def _generate(self, part: ClipSettings, callback: Callable[[ClipStep], None] | None) -> ClipResult:
        if part.method == "video":
            def on_step(info: StepInfo) -> None:  # x0_hat (1, F, C, h, w)
                callback(ClipStep("video", StepPosition.of(self.video.schedule, info), info.x0_hat[0]))

            return self.video.generate(part, on_step if callback else None)
        if part.method == "per_frame":
            def on_frames(step: Step) -> None:  # the frames are the image pipeline's batch: x0_hat (F, C, h, w)
                callback(ClipStep("per_frame", StepPosition.of(self.image.schedule, step.info), step.info.x0_hat))

            return sample_per_frame(self.image, part, on_frames if callback else None)
        raise ValueError(f"unknown clip method {part.method!r}; choose 'video' or 'per_frame'")
