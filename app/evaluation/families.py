"""The three families of chapter §3.4 side by side in `diffusion-lab evaluate`: the diffusion model, the
autoregressive and the masked token models, on the same prompts and seeds, read by the same judges.

Per family and guidance scale s: adherence on full one-shape prompts (per attribute and all) and diversity; the
two-shape categories (app/evaluation/pairs.py) with their binding failures; the sequential network forwards and
seconds per image. Beside them: the VQ tokenizer's ceiling (PSNR, codebook usage, the judges on its
reconstructions) against the continuous VAE's, and the autoregressive model's exact likelihood of held-out scenes
in bits per token (EQ MM3.5).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from app.evaluation.pairs import PairEvalConfig, category_sweep
from app.evaluation.pairs import sweep_summary as pair_summary
from app.evaluation.sweeps import EvalConfig, guidance_sweep, sweep_summary, timing
from app.measure.tokens import reconstruction_ceiling, tokenizer_ceiling
from app.pipelines.image import GenerationSettings, Pipeline
from app.pipelines.tokens import FAMILY_FILES, TokenFamily, TokenSettings
from app.world.compose import render_pairs
from app.world.held_out import held_out_pairs, held_out_scenes
from app.world.scenes import PAIR_WORDS, caption, render

FAMILY_SCALES = (1.0, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class FamilyEvalConfig:
    """How much to measure per family; the defaults take about 15 minutes on 2 CPU cores."""

    prompts: int = 54  # full one-shape prompts, as the diffusion sweep's
    seeds: int = 2
    scales: tuple[float, ...] = FAMILY_SCALES
    pair_prompts: int = 6  # per two-shape category
    pair_seeds: int = 2
    scenes: int = 256  # held-out scenes for the tokenizer's ceiling and the likelihood
    timing_repeats: int = 3
    temperature: float = TokenSettings.temperature
    top_k: int = TokenSettings.top_k
    rounds: int = TokenSettings.rounds
    steps: int = 20  # the diffusion family's
    sampler: str = "dpmpp_2m"


QUICK_FAMILIES = FamilyEvalConfig(prompts=4, seeds=1, scales=(1.0, 3.0), pair_prompts=1, pair_seeds=1, scenes=32,
                                  timing_repeats=1)


def _bases(cfg: FamilyEvalConfig) -> dict[str, GenerationSettings | TokenSettings]:
    token = {"temperature": cfg.temperature, "top_k": cfg.top_k, "rounds": cfg.rounds}
    return {"diffusion": GenerationSettings(steps=cfg.steps, sampler=cfg.sampler),
            "autoregressive": TokenSettings(family="autoregressive", **token),
            "masked": TokenSettings(family="masked", **token)}


@torch.no_grad()
def tokenizer_section(family: TokenFamily, vae_pipeline: Pipeline, n: int) -> dict:
    """The tokenizer's ceiling on n held-out one- and two-shape scenes, the continuous VAE's on the same scenes."""
    scenes, pairs = held_out_scenes(n, family.resolution), held_out_pairs(n, family.resolution)
    x, pair_x = render(scenes, family.device), render_pairs(pairs, family.device)
    tok = family.tokenizer
    vae = vae_pipeline.vae
    vae_x, vae_pair_x = x.to(vae_pipeline.device), pair_x.to(vae_pipeline.device)
    continuous = reconstruction_ceiling(vae.reconstruct(vae_x), vae_x, scenes, vae.reconstruct(vae_pair_x),
                                        vae_pair_x, pairs)
    return {"scenes": n, "codebook_size": tok.codebook_size, "downsample_factor": tok.config.downsample_factor,
            "tokens_per_image": family.tokens, "code_dim": tok.config.latent_channels,
            "parameters": sum(p.numel() for p in tok.parameters()),
            **tokenizer_ceiling(tok, scenes, x, pairs, pair_x), **{f"vae_{k}": v for k, v in continuous.items()}}


@torch.no_grad()
def bits_per_token(family: TokenFamily, n: int) -> dict:
    """The autoregressive model's exact likelihood (EQ MM3.5) of n held-out rendered scenes' tokens given their
    full captions: bits per token (mean and spread over scenes) and per image."""
    scenes = held_out_scenes(n, family.resolution)
    tokens = family.tokenizer.encode(render(scenes, family.device)).flatten(1)  # (n, N)
    captions = caption(scenes)
    log_p = torch.cat([family.log_probs(tokens[i:i + 64], captions[i:i + 64]) for i in range(0, n, 64)])  # nats
    bits = -log_p / math.log(2)
    per_image = bits.sum(1)
    return {"scenes": n, "tokens_per_image": family.tokens, "bits_per_token": bits.mean().item(),
            "bits_per_token_p05": bits.mean(1).quantile(0.05).item(),
            "bits_per_token_p95": bits.mean(1).quantile(0.95).item(),
            "bits_per_image": per_image.mean().item(),
            "uniform_bits_per_token": math.log2(family.config.codebook_size)}


def load_families(model_dir, device) -> dict[str, TokenFamily]:
    """The token families whose files are in model_dir, sharing one tokenizer, on `device`."""
    out, tokenizer = {}, None
    for name in FAMILY_FILES:
        if TokenFamily.available(model_dir, name):
            out[name] = TokenFamily.load(model_dir, name, str(device), tokenizer)
            tokenizer = out[name].tokenizer
    return out


def evaluate_family(generator, base, cfg: FamilyEvalConfig, log: Callable[[str], None] = print) -> dict:
    """One family: the one-shape sweep, the two-shape categories, and timing, at cfg's scales."""
    one = EvalConfig(prompts=cfg.prompts, seeds=cfg.seeds, steps=cfg.steps, sampler=cfg.sampler, scales=cfg.scales,
                     timing_repeats=cfg.timing_repeats, timing_batch=4)
    two = PairEvalConfig(prompts=cfg.pair_prompts, seeds=cfg.pair_seeds, steps=cfg.steps, sampler=cfg.sampler,
                         scales=cfg.scales)
    sweep = guidance_sweep(generator, one, log, base)
    out = {"settings": {k: v for k, v in asdict(base).items() if k not in ("prompt", "negative_prompt", "seed")},
           "guidance_sweep": sweep, "summary": sweep_summary(sweep)}
    if unread := [word for word in PAIR_WORDS if generator.unlearned_words(word)]:
        log(f"   two-shape categories not measured: trained before the words {', '.join(unread)}")
        out |= {"pairs": None, "pairs_summary": None,
                "pairs_not_measured": f"the caption encoder was trained before the words {', '.join(unread)}"}
    else:
        pairs = category_sweep(generator, two, log, base)
        out |= {"pairs": pairs, "pairs_summary": pair_summary(pairs)}
    return out | {"timing": timing(generator, one, base)}


def evaluate_families(pipeline: Pipeline, families: dict[str, TokenFamily], cfg: FamilyEvalConfig,
                      log: Callable[[str], None] = print) -> dict:
    """The card's "families" section: every family's measurements, the tokenizer and the likelihood."""
    started = time.perf_counter()
    generators = {"diffusion": pipeline, **families}
    bases = _bases(cfg)
    out = {"settings": asdict(cfg), "families": {}}
    if families:
        first = next(iter(families.values()))
        log(f"== VQ tokenizer on {cfg.scenes} held-out one- and two-shape scenes")
        out["tokenizer"] = tokenizer_section(first, pipeline, cfg.scenes)
        t = out["tokenizer"]
        log(f"   PSNR {t['psnr_db']:.2f} dB (two shapes {t['pair_psnr_db']:.2f}; the VAE {t['vae_psnr_db']:.2f}), "
            f"judged right {t['judge_all']:.3f} / two shapes {t['pair_judge_all']:.3f}, codes used "
            f"{t['codes_used']:.0f} of {t['codebook_size']}, perplexity {t['perplexity']:.0f}")
    if "autoregressive" in families:
        out["likelihood"] = bits_per_token(families["autoregressive"], cfg.scenes)
        log(f"   autoregressive: {out['likelihood']['bits_per_token']:.3f} bits per token on held-out scenes "
            f"(uniform: {out['likelihood']['uniform_bits_per_token']:.1f})")
    for name, generator in generators.items():
        log(f"== family {name}")
        out["families"][name] = evaluate_family(generator, bases[name], cfg, log)
    out["duration_s"] = round(time.perf_counter() - started, 1)
    return out

