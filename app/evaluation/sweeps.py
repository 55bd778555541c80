"""What every family's evaluation measures the same way: images of the full one-shape prompts at each guidance
scale s, judged (adherence per attribute, diversity, the failures), where adherence peaks, and timing.

A family is any generator with generate(settings) -> a result with .images and .timings, and settings with the
fields prompt, seed, guidance_scale and batch_size (app.pipelines.image.GenerationSettings, or
app.pipelines.tokens.TokenSettings for the token families of chapter §3.4).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from app.measure.image import (
    ATTRIBUTE_VALUES,
    CARD_GUIDANCE_SCALES,
    adherence,
    chance_level,
    full_prompts,
    pairwise_rms,
)
from app.measure.judge import Verdict, judge, matches
from app.pipelines.image import GenerationSettings, Pipeline
from app.world.scenes import Prompt

PARTIAL_SCALES = (1.0, 3.0, 5.0, 7.5)
PARTIAL_PROMPTS = (
    "a red circle", "a small triangle", "a blue square in the center", "a large circle",
    "a square", "a green triangle at the top left", "a purple square at the bottom", "a small yellow circle",
)
MAX_FAILURES = 12  # failed images listed per scale in the card


@dataclass(frozen=True)
class EvalConfig:
    """How much to measure; the defaults are the full run (~5-10 min on 2 CPU cores)."""

    prompts: int = 54  # full prompts: every shape x colour, sizes and positions balanced
    seeds: int = 4  # images per full prompt (prompt i uses seeds i*seeds ... i*seeds+seeds-1)
    steps: int = 20
    sampler: str = "dpmpp_2m"
    scales: tuple[float, ...] = CARD_GUIDANCE_SCALES
    partial_prompts: tuple[str, ...] = PARTIAL_PROMPTS
    partial_seeds: int = 16
    partial_scales: tuple[float, ...] = PARTIAL_SCALES
    judge_scenes: int = 1024
    vae_scenes: int = 512
    timing_repeats: int = 5
    timing_batch: int = 8
    prompt_seed: int = 0



def sweep_summary(sweep: list[dict], threshold: float = 0.95) -> dict:
    """Where all-attribute adherence peaks, and past the peak the first s where an attribute drops below threshold."""
    best = max(sweep, key=lambda r: (r["adherence"]["all"], -r["scale"]))
    out = {"best_scale": best["scale"], "best_all": best["adherence"]["all"], "threshold": threshold,
           "first_drop_scale": None, "first_drop_attribute": None, "first_drop_value": None}
    for row in (r for r in sweep if r["scale"] > best["scale"]):
        worst = min((k for k in row["adherence"] if k != "all"), key=lambda k: row["adherence"][k])
        if row["adherence"][worst] < threshold:
            out.update(first_drop_scale=row["scale"], first_drop_attribute=worst,
                       first_drop_value=row["adherence"][worst])
            break
    return out


def failures(verdicts: list[Verdict], prompts: list[Prompt], limit: int) -> list[dict]:
    """The first `limit` images not right on everything: what was asked, what the judge saw (image i = seed i)."""
    out = []
    for i, (v, p) in enumerate(zip(verdicts, prompts, strict=True)):
        hit = matches(v, p)
        if not hit.pop("all") and len(out) < limit:
            out.append({"seed": i, "prompt": p.canonical, "judged": {k: getattr(v, k) for k in ATTRIBUTE_VALUES},
                        "clean": v.clean, "wrong": [k for k, ok in hit.items() if not ok]})
    return out



def generate(pipeline: Pipeline, prompt: str, first_seed: int, count: int, scale: float, cfg: EvalConfig,
             base=None):
    """count images of one prompt (seeds first_seed ...) in one batch, as the app would draw them, with the
    settings `base` (default: the diffusion model's, cfg's steps and sampler); any family's settings that have
    prompt, seed, guidance_scale and batch_size will do, with its generator as `pipeline`."""
    base = base or GenerationSettings(steps=cfg.steps, sampler=cfg.sampler)
    return pipeline.generate(replace(base, prompt=prompt, seed=first_seed, guidance_scale=scale, batch_size=count))


def guidance_sweep(pipeline: Pipeline, cfg: EvalConfig, log: Callable[[str], None] = print,
                   base=None) -> list[dict]:
    """Adherence and diversity of the full prompts at every scale s (EQ MM3.4), the same noise at every s;
    `base`: another family's settings (see generate)."""
    prompts = full_prompts(cfg.prompts, cfg.prompt_seed)
    chance = chance_level()
    log(f"{'s':>5} {'shape':>6} {'colour':>6} {'size':>6} {'pos':>6} {'clean':>6} {'all':>6} {'div':>6}  seconds")
    rows = []
    for scale in cfg.scales:
        started = time.perf_counter()
        verdicts, spread = [], []
        for i, prompt in enumerate(prompts):
            images = generate(pipeline, prompt.canonical, i * cfg.seeds, cfg.seeds, scale, cfg, base).images
            verdicts += judge(images)
            spread.append(pairwise_rms(images))
        asked = [p for p in prompts for _ in range(cfg.seeds)]
        score = adherence(verdicts, asked)
        row = {"scale": scale, "adherence": score, "diversity_rms": float(np.mean(spread)),
               "mean_colour_distance": float(np.mean([v.colour_distance for v in verdicts])),
               "images": len(verdicts), "failures": failures(verdicts, asked, MAX_FAILURES),
               "seconds": time.perf_counter() - started}
        if scale == 0.0:
            row["chance"] = chance
        rows.append(row)
        log(f"{scale:5.1f} " + " ".join(f"{score[k]:6.3f}" for k in ("shape", "colour", "size", "position",
                                                                       "clean", "all"))
            + f" {row['diversity_rms']:6.3f}  {row['seconds']:.1f}")
        if scale == 0.0:
            log("chance " + " ".join(f"{chance[k]:6.3f}" for k in ATTRIBUTE_VALUES) + f"        {chance['all']:6.4f}")
    return rows


def timing(pipeline: Pipeline, cfg: EvalConfig, base=None) -> dict:
    """Wall time of generate() with the default settings (or another family's `base`, see generate): one image
    (median of repeats) and a batch, and the sequential network forwards of one image."""
    base = base or GenerationSettings(steps=cfg.steps, sampler=cfg.sampler)
    scale = base.guidance_scale

    def run(batch: int, repeats: int) -> list[dict]:
        return [generate(pipeline, "a large red circle at the top left", 0, batch, scale, cfg, base).timings
                for _ in range(repeats)]

    run(1, 1)  # warm-up: the first call pays for allocations
    load_before = os.getloadavg()[0]  # the CPU is shared: a busy machine shows in the spread of the repeats
    single = run(1, cfg.timing_repeats)
    batch = [t["total_s"] for t in run(cfg.timing_batch, max(1, cfg.timing_repeats // 2))]
    single_s = [t["total_s"] for t in single]
    return {"load_average_1m": [load_before, os.getloadavg()[0]],
            "settings": {k: v for k, v in asdict(base).items() if k not in ("prompt", "negative_prompt", "seed")},
            "steps": getattr(base, "steps", None), "sampler": getattr(base, "sampler", None),
            "guidance_scale": scale, "device": str(pipeline.device), "torch_threads": torch.get_num_threads(),
            "network_forwards": int(single[0]["network_forwards"]),
            "single_image_s_median": statistics.median(single_s), "single_image_s_min": min(single_s),
            "single_image_s_all": single_s, "batch": cfg.timing_batch, "batch_s_median": statistics.median(batch),
            "batch_s_per_image": statistics.median(batch) / cfg.timing_batch}
