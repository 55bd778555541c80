"""EQ MM3.6 on the served video model: its real token counts, and joint vs factorised attention timed here.

The loaded (factorised) video DiT runs one no-grad forward on a clip of `frames` latent frames, batch 2 (the
unconditional and conditional rows of classifier-free guidance). A joint-attention VideoDiT is then built from
the same image weights (its blocks attend over all frames' tokens at once; no temporal blocks) and timed the same
way: its output means little, its cost is the point. Medians of `repeats` runs after one warm-up each.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from app.instruments.coherence import factorised_cost, joint_cost, spacetime_tokens
from app.lab.once import MeasuredOnce
from app.nets.video_dit import VideoDiT
from app.pipelines.video import VideoPipeline

GUIDANCE_BATCH = 2
CONTEXT_TOKENS = 12


@dataclass(frozen=True)
class AttentionTiming:
    frames: int
    repeats: int
    batch: int
    latent_size: int
    patch: int
    tokens_per_frame: int  # (latent_size / patch)^2, EQ MM3.6 with p_t = 1
    tokens: int  # N = frames * tokens_per_frame
    joint_pairs: int  # N^2
    factorised_pairs: int  # T_f (HW)^2 + HW T_f^2
    pair_ratio: float  # joint / factorised
    factorised_ms: float
    joint_ms: float
    time_ratio: float  # joint_ms / factorised_ms
    factorised_runs_ms: list[float]
    joint_runs_ms: list[float]
    device: str
    torch_threads: int
    measured_s: float
    measured_at: str
    cached: bool = False


def _runs(forward, repeats: int) -> list[float]:
    forward()  # warm-up: first calls pay for allocations
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        forward()
        runs.append((time.perf_counter() - started) * 1000)
    return runs


@torch.inference_mode()
def measure(video: VideoPipeline, frames: int, repeats: int) -> AttentionTiming:
    """Time one forward of the served factorised DiT and of a joint one from the same image weights."""
    started = time.perf_counter()
    served = video.dit
    cfg, device = served.config, video.device
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(GUIDANCE_BATCH, frames, cfg.latent_channels, cfg.latent_size, cfg.latent_size,
                    generator=generator).to(device)
    context = torch.randn(GUIDANCE_BATCH, CONTEXT_TOKENS, cfg.context_dim, generator=generator).to(device)
    mask = torch.ones(GUIDANCE_BATCH, CONTEXT_TOKENS, dtype=torch.bool, device=device)
    t = torch.full((GUIDANCE_BATCH,), 500, dtype=torch.long, device=device)
    joint = VideoDiT.from_image_dit(served.image, frames, "joint").to(device).eval()
    factorised_runs = _runs(lambda: served(x, t, context, mask), repeats)
    joint_runs = _runs(lambda: joint(x, t, context, mask), repeats)
    side = cfg.latent_size
    tokens = spacetime_tokens(frames, side, side, 1, cfg.patch, cfg.patch)
    factorised_ms, joint_ms = statistics.median(factorised_runs), statistics.median(joint_runs)
    return AttentionTiming(
        frames=frames, repeats=repeats, batch=GUIDANCE_BATCH, latent_size=side, patch=cfg.patch,
        tokens_per_frame=tokens.spatial, tokens=tokens.total, joint_pairs=joint_cost(tokens),
        factorised_pairs=factorised_cost(tokens), pair_ratio=joint_cost(tokens) / factorised_cost(tokens),
        factorised_ms=factorised_ms, joint_ms=joint_ms, time_ratio=joint_ms / factorised_ms,
        factorised_runs_ms=factorised_runs, joint_runs_ms=joint_runs, device=str(device),
        torch_threads=torch.get_num_threads(), measured_s=time.perf_counter() - started,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


_measured = MeasuredOnce()


def measured_once(video: VideoPipeline, model_id: str, frames: int, repeats: int) -> AttentionTiming:
    """measure() the first time per model, frames and repeats; afterwards the cached result (cached=True)."""
    return _measured.get((model_id, frames, repeats), lambda: measure(video, frames, repeats))
