"""A bank of clips encoded once by the frozen VAE, so video training does not re-encode every frame.

On a CPU, encoding a 64x64 frame costs about as much as a training step spends on it, so the video
trainer draws its clips from a fixed, seeded bank (captions, partial captions and noise are still
drawn fresh every step). The bank is a cache: `build_bank(n, seed)` regenerates it exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from app.nets.vae import VAE
from app.world.clips import DEFAULT_FRAMES, ClipBatch, render_clips, sample_clips, select
from app.world.scenes import BASE_RESOLUTION

CHUNK_CLIPS = 32


@torch.no_grad()
def encode_clips(vae: VAE, clips: ClipBatch, device: torch.device | str = "cpu") -> torch.Tensor:
    """Clips -> normalised latents (B, F, C, h, w), every frame encoded on its own (the posterior mean)."""
    out = []
    for i in range(0, len(clips), CHUNK_CLIPS):
        part = select(clips, slice(i, i + CHUNK_CLIPS))
        frames = render_clips(part, device)  # (b, F, 3, H, W)
        z = vae.encode_for_diffusion(frames.flatten(0, 1))  # (b*F, C, h, w)
        out.append(z.view(len(part), clips.frames, *z.shape[1:]).float().cpu())
    return torch.cat(out)


def build_bank(vae: VAE, n: int, seed: int, frames: int = DEFAULT_FRAMES, resolution: int = BASE_RESOLUTION,
               device: torch.device | str = "cpu", log=print) -> dict:
    """Draw n clips from `seed` and encode them: {"clips": ClipBatch, "latents": (n, F, C, h, w), ...}."""
    clips = sample_clips(n, np.random.default_rng(seed), frames, resolution)
    began, parts = time.time(), []
    step = 1024
    for i in range(0, n, step):
        parts.append(encode_clips(vae, select(clips, slice(i, i + step)), device))
        log(f"bank: {min(i + step, n)}/{n} clips encoded ({time.time() - began:.0f} s)")
    return {"clips": clips, "latents": torch.cat(parts), "seed": seed, "frames": frames,
            "resolution": resolution, "seconds": round(time.time() - began, 1)}


def load_or_build_bank(path: str | Path, vae: VAE, n: int, seed: int, frames: int, resolution: int,
                       device: torch.device | str = "cpu", log=print) -> dict:
    """The bank cached at `path` when it matches (n, seed, frames, resolution), else built and saved there."""
    path = Path(path)
    if path.is_file():
        bank = torch.load(path, map_location="cpu", weights_only=False)  # our own cache file
        if (len(bank["clips"]), bank["seed"], bank["frames"], bank["resolution"]) == (n, seed, frames, resolution):
            return bank
        log(f"bank {path} was built for other settings: rebuilding")
    bank = build_bank(vae, n, seed, frames, resolution, device, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(bank, path.with_name(path.name + ".tmp"))
    path.with_name(path.name + ".tmp").replace(path)
    return bank
