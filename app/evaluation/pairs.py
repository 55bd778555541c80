"""The two-shape half of `diffusion-lab evaluate`: adherence per category against s, the binding failures, the
autoencoder and the judge on two-shape scenes, and the guidance variants side by side.

Categories (T2I-CompBench's, in this world): *colour binding* `a red circle and a blue square` (each colour on its
own shape), *size binding* `a small circle and a large square` (each size word on its own shape; CompBench counts
size words among its "shape" attributes), *relation* `a red circle left of a blue square`, *counting*
`two red circles`. Every image is read by app/measure/pair_judge.py; `all` is the image doing everything its
prompt asks. Swaps, leaks and copies are counted over the prompts where they can happen (two different colours
and shapes named).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from app.measure.image import over_saturation, pairwise_rms, psnr
from app.measure.pair_judge import judge_pairs, pair_agreement, pair_matches, possible_failures
from app.measure.pairs import CATEGORIES, category_prompts, pair_adherence
from app.pipelines.image import GenerationSettings, Pipeline
from app.world.compose import PairPrompt, render_pairs, sample_pairs
from app.world.held_out import held_out_pairs
from app.world.scenes import PAIR_WORDS

FAILURES = ("swap", "leak", "copy")
PAIR_SCALES = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0)
CFG_PLUS_PLUS_SCALES = (0.2, 0.4, 0.6, 0.8, 1.0)  # its lambda lives in [0, 1] (Chung et al. 2024)
PAIR_JUDGE_SEED = 2_000_011


@dataclass(frozen=True)
class PairEvalConfig:
    """How much to measure: prompts per category x seeds per prompt at every scale."""

    prompts: int = 12
    seeds: int = 4
    steps: int = 20
    sampler: str = "dpmpp_2m"
    scales: tuple[float, ...] = PAIR_SCALES
    scenes: int = 512  # rendered pairs the judge and the VAE are checked on
    variant_prompts: int = 4  # per category, for the guidance variants
    variant_seeds: int = 2
    variant_scales: tuple[float, ...] = (1.0, 3.0, 5.0, 7.5, 10.0, 15.0)
    prompt_seed: int = 0


QUICK_PAIRS = PairEvalConfig(prompts=3, seeds=2, scales=(1.0, 5.0), scenes=64, variant_prompts=1, variant_seeds=2,
                             variant_scales=(1.0, 5.0))


def judge_on_pairs(n: int, resolution: int, seed: int = PAIR_JUDGE_SEED) -> dict:
    """The pair judge's accuracy on n rendered two-shape scenes (it bounds every number below)."""
    pairs = sample_pairs(n, np.random.default_rng(seed), resolution)
    return {"scenes": n, "seed": seed, "accuracy": pair_agreement(judge_pairs(render_pairs(pairs)), pairs)}


@torch.no_grad()
def vae_on_pairs(pipeline: Pipeline, n: int, chunk: int = 128) -> dict:
    """PSNR and the judge on posterior-mean reconstructions of n held-out two-shape scenes: the ceiling every
    model on these latents inherits."""
    pairs = held_out_pairs(n, pipeline.resolution)
    x = render_pairs(pairs, pipeline.device)
    recon = pipeline.vae.reconstruct(x, chunk)
    p = psnr(recon, x)
    return {"scenes": n, "psnr_db_mean": p.mean().item(), "psnr_db_p05": p.quantile(0.05).item(),
            "judge_reconstructions": pair_agreement(judge_pairs(recon), pairs)}


def measure_prompts(pipeline: Pipeline, prompts: list[PairPrompt], seeds: int, base: GenerationSettings) -> dict:
    """Images of every prompt (seeds i*seeds ...) under `base`'s settings, judged: the share of images right on
    each check, the failure rates over the prompts they apply to, diversity and saturation."""
    verdicts, asked, spread = [], [], []
    for i, prompt in enumerate(prompts):
        images = pipeline.generate(replace(base, prompt=prompt.canonical, seed=i * seeds, batch_size=seeds)).images
        verdicts += judge_pairs(images)
        asked += [prompt] * len(images)
        spread.append(pairwise_rms(images))
    out = pair_adherence(verdicts, asked)
    rows = [(p, pair_matches(v, p)) for v, p in zip(verdicts, asked)]
    objects = [o for v in verdicts for o in v.objects]
    for failure in FAILURES:
        applies = [m[failure] for p, m in rows if possible_failures(p)[failure]]
        out[failure] = float(np.mean(applies)) if applies else None
    out |= {"diversity_rms": float(np.mean(spread)), "over_saturation": over_saturation(objects),
            "images": len(rows)}
    return out


def category_sweep(pipeline: Pipeline, cfg: PairEvalConfig, log: Callable[[str], None] = print,
                   base=None) -> list[dict]:
    """Per scale s, every category measured on its prompts with the same seeds at every s (EQ MM3.4); `base`:
    another family's settings, with its generator as `pipeline` (default: the diffusion model's)."""
    prompts = {c: category_prompts(c, cfg.prompts, cfg.prompt_seed) for c in CATEGORIES}
    base = base or GenerationSettings(steps=cfg.steps, sampler=cfg.sampler)
    log(f"{'s':>5} " + " ".join(f"{c[:14]:>14}" for c in CATEGORIES) + "   swap  leak  copy  seconds")
    rows = []
    for scale in cfg.scales:
        started = time.perf_counter()
        row = {"scale": scale, "categories": {c: measure_prompts(pipeline, prompts[c], cfg.seeds,
                                                                 replace(base, guidance_scale=scale))
                                              for c in CATEGORIES}}
        cats = row["categories"]
        row["two_object_all"] = float(np.mean([cats[c]["all"] for c in CATEGORIES]))
        row["failures"] = {f: _pooled(cats, f) for f in FAILURES}
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        log(f"{scale:5.1f} " + " ".join(f"{cats[c]['all']:14.3f}" for c in CATEGORIES)
            + " " + " ".join(f"{row['failures'][f]:5.3f}" for f in FAILURES) + f"  {row['seconds']:.0f}")
    return rows


def _pooled(categories: dict, failure: str) -> float:
    """A failure's rate over every category where it applies, weighted by images."""
    parts = [(c[failure], c["images"]) for c in categories.values() if c[failure] is not None]
    return float(sum(r * n for r, n in parts) / sum(n for _, n in parts)) if parts else 0.0


def sweep_summary(rows: list[dict]) -> dict:
    """Per category: the best s, its adherence, and the rise from s = 1 (the first scale) to it."""
    out = {}
    for c in [*CATEGORIES, "two_object_all"]:
        values = [(r["scale"], r["categories"][c]["all"] if c in CATEGORIES else r[c]) for r in rows]
        best_scale, best = max(values, key=lambda v: (v[1], -v[0]))
        out[c] = {"best_scale": best_scale, "best_all": best, "at_first_scale": values[0][1],
                  "first_scale": values[0][0], "rise": best - values[0][1]}
    return out


VARIANTS = {  # name -> (settings over the base, the scales it is swept over: None = the config's)
    "cfg": ({}, None),
    "cfg_rescale": ({"guidance_rescale": 0.7}, None),
    "cfg_interval": ({"guidance_interval": (200, 799)}, None),  # the middle 60% of the noise levels
    "apg": ({"guidance_method": "apg"}, None),
    "cfg++": ({"guidance_method": "cfg++"}, CFG_PLUS_PLUS_SCALES),
}


def guidance_variants(pipeline: Pipeline, cfg: PairEvalConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Every guidance variant on the same two-shape prompts and seeds (all four categories pooled), swept over s:
    adherence, diversity and over-saturation. All on the DDIM sampler, which CFG++ needs."""
    prompts = [p for c in CATEGORIES for p in category_prompts(c, cfg.variant_prompts, cfg.prompt_seed + 1)]
    base = GenerationSettings(steps=cfg.steps, sampler="ddim")
    out = []
    for name, (changes, scales) in VARIANTS.items():
        entry = {"variant": name, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
                 "by_scale": []}
        for scale in scales or cfg.variant_scales:
            measured = measure_prompts(pipeline, prompts, cfg.variant_seeds,
                                       replace(base, guidance_scale=scale, **changes))
            entry["by_scale"].append({"scale": scale, **measured})
            log(f"{name:>12} s={scale:<5g} all {measured['all']:.3f}  diversity {measured['diversity_rms']:.3f}  "
                f"over-saturation {measured['over_saturation'] or 0:+.3f}")
        out.append(entry)
    return out


def evaluate_pairs(pipeline: Pipeline, cfg: PairEvalConfig, log: Callable[[str], None] = print) -> dict:
    """The card's "pairs" section."""
    log(f"== pair judge on {cfg.scenes} rendered two-shape scenes")
    judged = judge_on_pairs(cfg.scenes, pipeline.resolution)
    log("   " + ", ".join(f"{k} {v:.4f}" for k, v in judged["accuracy"].items()))
    log(f"== VAE on {cfg.scenes} held-out two-shape scenes")
    vae = vae_on_pairs(pipeline, cfg.scenes)
    log(f"   PSNR mean {vae['psnr_db_mean']:.2f} dB; judge all {vae['judge_reconstructions']['all']:.4f}")
    settings = {**vars(cfg), "categories": list(CATEGORIES),
                "prompt_list": {c: [p.canonical for p in category_prompts(c, cfg.prompts, cfg.prompt_seed)]
                                for c in CATEGORIES}}
    measured = {"settings": settings, "judge_on_pairs": judged, "vae": vae}
    if unread := [word for word in PAIR_WORDS if pipeline.unlearned_words(word)]:
        why = (f"not measured: the caption encoder was trained before the words {', '.join(unread)}, so the "
               "model cannot be asked for two shapes")
        log(f"== two-shape categories {why}")
        return measured | {"sweep": None, "summary": None, "guidance_variants": None, "not_measured": why}
    log(f"== two-shape categories: {cfg.prompts} prompts x {cfg.seeds} seeds each, {cfg.steps} {cfg.sampler} steps")
    sweep = category_sweep(pipeline, cfg, log)
    log(f"== guidance variants: {cfg.variant_prompts} prompts per category x {cfg.variant_seeds} seeds, ddim")
    variants = guidance_variants(pipeline, cfg, log)
    return measured | {"sweep": sweep, "summary": sweep_summary(sweep), "guidance_variants": variants}
