"""EQ MM3.6 on the served video model: its real token counts, and joint vs factorised attention timed here.

The loaded (factorised) video DiT runs a no-grad forward on a clip of `frames` latent frames, batch 2 (the
unconditional and conditional rows of classifier-free guidance). A joint-attention VideoDiT is then built from
the same image weights (its blocks attend over all frames' tokens at once; no temporal blocks) and timed the same
way: its output means little, its cost is the point. The two are timed interleaved by app/lab/timing.py.

Which one the arithmetic expects to be faster is not the pair count alone: the factorised model has fewer
attention pairs but runs a temporal block (projections, MLP, caption attention) beside every spatial one. So each
forward's FLOPs are counted (attention included), and the measured order is compared with the one they imply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from app.instruments.coherence import factorised_cost, joint_cost, spacetime_tokens
from app.lab.flops import count_flops
from app.lab.once import MeasuredOnce
from app.lab.timing import Candidate, Comparison, Conditions, Spread, compare, interleave
from app.nets.compiled import eager_of
from app.nets.video_dit import VideoDiT
from app.pipelines.video import VideoPipeline

BUDGET_S = 3.0  # wall seconds the rounds may take (at least MIN_ROUNDS are run whatever they cost)
GUIDANCE_BATCH = 2
CONTEXT_TOKENS = 12


@dataclass(frozen=True)
class AttentionTiming:
    frames: int
    repeats: int  # rounds asked for (conditions.rounds: run within the budget)
    batch: int
    latent_size: int
    patch: int
    tokens_per_frame: int  # (latent_size / patch)^2, EQ MM3.6 with p_t = 1
    tokens: int  # N = frames * tokens_per_frame
    joint_pairs: int  # N^2
    factorised_pairs: int  # T_f (HW)^2 + HW T_f^2
    pair_ratio: float  # joint / factorised
    factorised_flops: int
    joint_flops: int
    flop_ratio: float  # joint / factorised
    factorised_parameters: int
    joint_parameters: int
    factorised: Spread
    joint: Spread
    ordering: Comparison  # the one with more FLOPs against the other
    conditions: Conditions
    factorised_ms: float  # the medians, as before
    joint_ms: float
    time_ratio: float  # joint_ms / factorised_ms
    factorised_runs_ms: list[float]
    joint_runs_ms: list[float]
    device: str
    torch_threads: int
    measured_s: float
    measured_at: str
    cached: bool = False


@torch.inference_mode()
def measure(video: VideoPipeline, frames: int, repeats: int, beside=lambda: 0) -> AttentionTiming:
    """Count and time a forward of the served factorised DiT and of a joint one from the same image weights."""
    started = time.perf_counter()
    served = eager_of(video.dit)  # the architectures compared, both eager, whether or not the server compiles
    cfg, device = served.config, video.device
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(GUIDANCE_BATCH, frames, cfg.latent_channels, cfg.latent_size, cfg.latent_size,
                    generator=generator).to(device)
    context = torch.randn(GUIDANCE_BATCH, CONTEXT_TOKENS, cfg.context_dim, generator=generator).to(device)
    mask = torch.ones(GUIDANCE_BATCH, CONTEXT_TOKENS, dtype=torch.bool, device=device)
    t = torch.full((GUIDANCE_BATCH,), 500, dtype=torch.long, device=device)
    joint = VideoDiT.from_image_dit(served.image, frames, "joint").to(device).eval()
    candidates = [Candidate("factorised", lambda: served(x, t, context, mask)),
                  Candidate("joint", lambda: joint(x, t, context, mask))]
    flops = {c.name: count_flops(c.run) for c in candidates}
    run = interleave(candidates, repeats, BUDGET_S, beside=beside)
    factorised, joint_spread = run.spreads["factorised"], run.spreads["joint"]
    heavier, lighter = sorted(flops, key=flops.get, reverse=True)
    side = cfg.latent_size
    tokens = spacetime_tokens(frames, side, side, 1, cfg.patch, cfg.patch)
    return AttentionTiming(
        frames=frames, repeats=repeats, batch=GUIDANCE_BATCH, latent_size=side, patch=cfg.patch,
        tokens_per_frame=tokens.spatial, tokens=tokens.total, joint_pairs=joint_cost(tokens),
        factorised_pairs=factorised_cost(tokens), pair_ratio=joint_cost(tokens) / factorised_cost(tokens),
        factorised_flops=flops["factorised"], joint_flops=flops["joint"],
        flop_ratio=flops["joint"] / flops["factorised"],
        factorised_parameters=sum(p.numel() for p in served.parameters()),
        joint_parameters=sum(p.numel() for p in joint.parameters()), factorised=factorised, joint=joint_spread,
        ordering=compare(heavier, run.spreads[heavier], lighter, run.spreads[lighter]), conditions=run.conditions,
        factorised_ms=factorised.median_ms, joint_ms=joint_spread.median_ms,
        time_ratio=joint_spread.median_ms / factorised.median_ms, factorised_runs_ms=factorised.runs_ms,
        joint_runs_ms=joint_spread.runs_ms, device=str(device), torch_threads=torch.get_num_threads(),
        measured_s=time.perf_counter() - started,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


_measured = MeasuredOnce()


def measured_once(video: VideoPipeline, model_id: str, frames: int, repeats: int, remeasure: bool = False,
                  beside=lambda: 0) -> AttentionTiming:
    """measure() the first time per model, frames and repeats, or when asked to again; else the cached result."""
    return _measured.get((model_id, frames, repeats), lambda: measure(video, frames, repeats, beside),
                         refresh=remeasure)
