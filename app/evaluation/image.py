"""`diffusion-lab evaluate`: measure the trained model and write models/model-card.json and models/README.md.

Everything is judged by the program in app/measure/judge.py, so every number is reproducible from the command and
the weights. The sections: the judge on real rendered scenes (its own accuracy, ~100%), the VAE's
reconstructions (EQ MM3.3), prompt adherence and diversity against the guidance scale s of EQ MM3.4, the
variety a partial prompt leaves open, and timing.

The card's top-level keys are stable (GET /api/v1/model serves the file as it is):
- "name", "description": what the model is.
- "architecture": resolution, latent shape, compression 3f^2/c_z, and per net ("vae", "text_encoder",
  "denoiser") its file, bytes, class, parameters and config as saved inside the weights.
- "training": per net the provenance saved in its weights (command, steps, wall time, device, validation,
  recipe, loss curve), and "stages": the table of models/TRAINING.md.
- "vocabulary": shapes, colours (RGB), sizes (px), positions, caption template, prompt words, synonyms.
- "defaults": the sampler settings a generation uses when a request names none.
- "evaluation": {"settings", "judge_on_scenes", "vae", "guidance_sweep" (one entry per s: "scale",
  "adherence" {shape, colour, size, position, clean, all}, "diversity_rms", ...; the s = 0 entry also has
  "chance"), "chance", "summary" (peak s, first attribute to fail past it), "partial_prompts", "pairs" (the
  two-shape categories against s, the binding failures and the guidance variants: app/evaluation/pairs.py; null
  with --no-pairs), "families" (chapter §3.4's three families side by side, the VQ tokenizer and the
  autoregressive likelihood: app/evaluation/families.py; null with --no-families), "timing"}.
- "machine": CPU or GPU model, torch version and threads of the run.
- "generated_at" (UTC, ISO 8601), "command", "duration_s".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from app.diffusion.samplers import SAMPLERS
from app.evaluation.families import QUICK_FAMILIES, FamilyEvalConfig, evaluate_families, load_families
from app.evaluation.pairs import QUICK_PAIRS, PairEvalConfig, evaluate_pairs
from app.evaluation.readme import render_readme
from app.evaluation.sweeps import (
    PARTIAL_PROMPTS,
    EvalConfig,
    generate,
    guidance_sweep,
    sweep_summary,
    timing,
)
from app.measure.image import (
    ATTRIBUTE_VALUES,
    adherence,
    chance_level,
    full_prompts,
    pairwise_rms,
    psnr,
    variety,
)
from app.measure.judge import agreement, judge
from app.nets.device import device_name
from app.pipelines.image import WEIGHT_FILES, GenerationSettings, Pipeline
from app.world.held_out import held_out_scenes
from app.world.scenes import (
    COLOURS,
    POSITIONS,
    PROMPT_VOCABULARY,
    RELATIONS,
    SHAPES,
    SIZE_RANGES_PX,
    SIZES,
    SYNONYMS,
    VOCAB,
    parse_object_prompt,
    render,
    sample_scenes,
)

CARD_KEYS = ("name", "description", "architecture", "training", "vocabulary", "defaults", "evaluation",
             "machine", "generated_at", "command", "duration_s")
NET_NAMES = {"vae": "vae", "text": "text_encoder", "dit": "denoiser"}  # WEIGHT_FILES key -> card key
JUDGE_SEED = 2_000_003  # the judge-sanity scenes (the VAE uses app.world.held_out's VAL_SEED)


QUICK = EvalConfig(prompts=6, seeds=2, partial_prompts=PARTIAL_PROMPTS[:4], partial_seeds=6, judge_scenes=128,
                   vae_scenes=64, timing_repeats=2)


# --------------------------------------------------------------------------------------------- arithmetic


# --------------------------------------------------------------------------------------------- measurements


def judge_on_scenes(n: int, resolution: int, seed: int = JUDGE_SEED) -> dict:
    """The judge's accuracy on n real rendered scenes (should be ~1.0: it bounds every adherence number)."""
    scenes = sample_scenes(n, np.random.default_rng(seed), resolution)
    return {"scenes": n, "seed": seed, "accuracy": agreement(judge(render(scenes)), scenes)}


@torch.no_grad()
def vae_quality(pipeline: Pipeline, n: int, chunk: int = 128) -> dict:
    """PSNR of posterior-mean reconstructions of n held-out scenes, and the judge on them vs the originals."""
    scenes = held_out_scenes(n, pipeline.resolution)
    x = render(scenes, pipeline.device)  # (N, 3, H, W)
    recon = pipeline.vae.reconstruct(x, chunk)
    p = psnr(recon, x)  # (N,)
    return {
        "scenes": n, "psnr_db_mean": p.mean().item(), "psnr_db_p05": p.quantile(0.05).item(),
        "psnr_db_min": p.min().item(),
        "judge_reconstructions": agreement(judge(recon), scenes), "judge_originals": agreement(judge(x), scenes),
    }


def partial_prompts(pipeline: Pipeline, cfg: EvalConfig, log: Callable[[str], None] = print) -> list[dict]:
    """For prompts that leave attributes open: how many distinct values the judge finds among the seeds, per s."""
    out = []
    for text in cfg.partial_prompts:
        prompt = parse_object_prompt(text)
        open_attrs = [a for a in ATTRIBUTE_VALUES if getattr(prompt, a) is None]
        entry = {"prompt": prompt.canonical, "named": prompt.named(), "open": open_attrs, "seeds": cfg.partial_seeds,
                 "by_scale": []}
        for scale in cfg.partial_scales:
            images = generate(pipeline, prompt.canonical, 0, cfg.partial_seeds, scale, cfg).images
            verdicts = judge(images)
            found = variety(verdicts, open_attrs)
            entry["by_scale"].append({"scale": scale, "adherence": adherence(verdicts, [prompt] * len(verdicts)),
                                      "variety": found, "diversity_rms": pairwise_rms(images)})
            log(f"{prompt.canonical!r:42} s={scale:<4} all {entry['by_scale'][-1]['adherence']['all']:.2f}  "
                + ", ".join(f"{a} {f['distinct']}/{f['possible']}" for a, f in found.items()))
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------------- the card


def training_stages(markdown: str) -> list[dict[str, str]]:
    """The first markdown table of a document as a list of {header: cell} (backticks removed)."""
    rows = [line.strip() for line in markdown.splitlines() if line.strip().startswith("|")]
    cells = [[c.strip().replace("`", "") for c in row.strip("|").split("|")] for row in rows]
    table = [c for c in cells if not all(set(x) <= set("-: ") for x in c)]  # drop the |---| line
    if len(table) < 2:
        return []
    return [dict(zip(table[0], row)) for row in table[1:]]


def architecture(pipeline: Pipeline, model_dir: Path) -> dict:
    """Per net: file, bytes, class, parameter count and config, from the weights themselves."""
    meta = Pipeline.metadata_of(model_dir)
    modules = {"vae": pipeline.vae, "text": pipeline.text, "dit": pipeline.dit}
    nets = {}
    for key, module in modules.items():
        path = model_dir / WEIGHT_FILES[key]
        nets[NET_NAMES[key]] = {"file": path.name, "bytes": path.stat().st_size, "class": meta[key]["class"],
                                "parameters": sum(p.numel() for p in module.parameters()),
                                "config": meta[key]["config"]}
    f, c_z = pipeline.vae.config.downsample_factor, pipeline.vae.config.latent_channels
    latent = pipeline.dit.config.latent_size
    return {"kind": "latent diffusion: VAE + caption encoder + DiT with cross-attention, v-prediction",
            "resolution": pipeline.resolution, "latent_shape": [c_z, latent, latent], "downsample_factor": f,
            "compression_ratio": 3 * f * f / c_z,  # EQ MM3.3
            "prediction": pipeline.prediction, "schedule": meta["dit"]["extra"].get("schedule"),
            **nets, "total_parameters": sum(n["parameters"] for n in nets.values())}


def training(pipeline: Pipeline, model_dir: Path) -> dict:
    """Provenance saved in each weights file, plus the stages table of TRAINING.md."""
    doc = model_dir / "TRAINING.md"
    keep = ("command", "steps_done", "steps_planned", "stopped_early", "wall_time_s", "device", "torch_version",
            "created_utc", "validation", "recipe", "loss_curve")
    out = {name: {f: extra[f] for f in keep if f in extra} for name, extra in pipeline.metadata.items()}
    out["document"] = doc.name if doc.is_file() else None
    out["stages"] = training_stages(doc.read_text()) if doc.is_file() else []
    return out


def vocabulary() -> dict:
    """The scene grammar's words (DESIGN.md §1)."""
    return {"shapes": list(SHAPES), "colours": {k: list(v) for k, v in COLOURS.items()},
            "sizes": {k: list(SIZE_RANGES_PX[k]) for k in SIZES}, "positions": list(POSITIONS),
            "caption": "a {size} {colour} {shape} at the {position} (in the center); size, colour, position optional",
            "two_shape_captions": ["a {size} {colour} {shape} {relation} a {size} {colour} {shape}",
                                   "a {size} {colour} {shape} and a {size} {colour} {shape}",
                                   "two {size} {colour} {shape}s"],
            "relations": list(RELATIONS),
            "prompt_words": list(PROMPT_VOCABULARY), "synonyms": dict(SYNONYMS), "tokens": list(VOCAB)}


def defaults() -> dict:
    """The generation settings a request gets when it names none."""
    d = GenerationSettings()
    return {"steps": d.steps, "guidance_scale": d.guidance_scale, "guidance_rescale": d.guidance_rescale,
            "sampler": d.sampler, "samplers": sorted(SAMPLERS), "eta": d.eta, "batch_size": d.batch_size}


def machine(pipeline: Pipeline) -> dict:
    """Where the numbers were measured."""
    return {"device": device_name(pipeline.device), "device_type": pipeline.device.type,
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "platform": platform.platform()}


def build_card(pipeline: Pipeline, model_dir: str | Path, cfg: EvalConfig, command: str,
               log: Callable[[str], None] = print, pair_cfg: PairEvalConfig | None = None,
               family_cfg: FamilyEvalConfig | None = None) -> dict:
    """Run every measurement and assemble the card (keys: CARD_KEYS); family_cfg (a FamilyEvalConfig): also the
    token families whose weights are in model_dir, beside the diffusion model."""
    model_dir, started = Path(model_dir), time.perf_counter()
    log(f"== judge on {cfg.judge_scenes} rendered scenes")
    judged = judge_on_scenes(cfg.judge_scenes, pipeline.resolution)
    log("   " + ", ".join(f"{k} {v:.4f}" for k, v in judged["accuracy"].items()))
    log(f"== VAE on {cfg.vae_scenes} held-out scenes")
    vae = vae_quality(pipeline, cfg.vae_scenes)
    log(f"   PSNR mean {vae['psnr_db_mean']:.2f} dB, p05 {vae['psnr_db_p05']:.2f} dB; judge all-attribute "
        f"{vae['judge_reconstructions']['all']:.4f} (originals {vae['judge_originals']['all']:.4f})")
    log(f"== guidance sweep: {cfg.prompts} prompts x {cfg.seeds} seeds, {cfg.steps} {cfg.sampler} steps")
    sweep = guidance_sweep(pipeline, cfg, log)
    log(f"== partial prompts: {cfg.partial_seeds} seeds each")
    partial = partial_prompts(pipeline, cfg, log)
    pairs = evaluate_pairs(pipeline, pair_cfg, log) if pair_cfg is not None else None
    families = None
    if family_cfg is not None:
        families = evaluate_families(pipeline, load_families(model_dir, pipeline.device), family_cfg, log)
    log("== timing")
    timed = timing(pipeline, cfg)
    log(f"   one image {timed['single_image_s_median']:.3f} s, batch of {timed['batch']} "
        f"{timed['batch_s_median']:.3f} s ({timed['torch_threads']} threads)")
    settings = asdict(cfg) | {"prompt_list": [p.canonical for p in full_prompts(cfg.prompts, cfg.prompt_seed)]}
    card = {
        "name": "diffusion-lab scenes-64",
        "description": "A small text-to-image latent diffusion model trained from scratch on procedurally drawn "
                       "scenes (one or two flat shapes on a light background); every number here was measured "
                       "by `diffusion-lab evaluate` with the program judges of app/measure/judge.py and "
                       "app/measure/pair_judge.py.",
        "architecture": architecture(pipeline, model_dir),
        "training": training(pipeline, model_dir),
        "vocabulary": vocabulary(),
        "defaults": defaults(),
        "evaluation": {"settings": settings, "judge_on_scenes": judged, "vae": vae, "guidance_sweep": sweep,
                       "chance": chance_level(), "summary": sweep_summary(sweep), "partial_prompts": partial,
                       "pairs": pairs, "families": families, "timing": timed},
        "machine": machine(pipeline),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "duration_s": round(time.perf_counter() - started, 1),
    }
    return card


# --------------------------------------------------------------------------------------------- command line


def build_parser(prog: str = "python3 -m app.evaluation.image") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Measure the trained model; write the model card and README.")
    p.add_argument("--model-dir", default="models", help="folder with the three weights files")
    p.add_argument("--prompts", type=int, default=None, help=f"full prompts (default {EvalConfig.prompts})")
    p.add_argument("--seeds", type=int, default=None, help=f"seeds per full prompt (default {EvalConfig.seeds})")
    p.add_argument("--partial-seeds", type=int, default=None,
                   help=f"seeds per partial prompt (default {EvalConfig.partial_seeds})")
    p.add_argument("--quick", action="store_true", help="a ~1 minute run with fewer prompts, seeds and scenes")
    p.add_argument("--no-pairs", action="store_true",
                   help="leave out the two-shape categories and guidance variants (for a one-shape model)")
    p.add_argument("--no-families", action="store_true",
                   help="leave out the autoregressive and masked token models (chapter §3.4)")
    p.add_argument("--families-only", action="store_true",
                   help="measure only the token families (chapter §3.4) and replace that section of the existing card")
    p.add_argument("--out-card", default=None, help="default: <model-dir>/model-card.json")
    p.add_argument("--out-readme", default=None, help="default: <model-dir>/README.md")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return p


def main(argv: list[str] | None = None, prog: str = "python3 -m app.evaluation.image") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else EvalConfig()
    overrides = {f.name: getattr(args, f.name) for f in fields(EvalConfig)
                 if getattr(args, f.name, None) is not None}
    cfg = replace(cfg, **overrides)
    model_dir = Path(args.model_dir)
    pipeline = Pipeline.load(model_dir, args.device)
    pair_cfg = None if args.no_pairs else (QUICK_PAIRS if args.quick else PairEvalConfig())
    family_cfg = None if args.no_families else (QUICK_FAMILIES if args.quick else FamilyEvalConfig())
    command = shlex.join([*prog.split(), *argv])
    card_path = Path(args.out_card or model_dir / "model-card.json")
    if args.families_only:
        card = with_new_families(card_path, pipeline, model_dir, family_cfg or FamilyEvalConfig(), command)
    else:
        card = build_card(pipeline, model_dir, cfg, command, pair_cfg=pair_cfg, family_cfg=family_cfg)
    write_card(card, card_path, Path(args.out_readme or model_dir / "README.md"), render_readme(card))
    return 0


def with_new_families(card_path: Path, pipeline: Pipeline, model_dir: Path, family_cfg: FamilyEvalConfig,
                      command: str) -> dict:
    """The card at card_path with only its families section measured again (new token-family weights beside the
    same diffusion model); the section records its own command and time."""
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"--families-only needs the card written by a full run: cannot read {card_path}: {err}")
    started = time.perf_counter()
    families = evaluate_families(pipeline, load_families(model_dir, pipeline.device), family_cfg)
    card["evaluation"]["families"] = families | {
        "command": command, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(pipeline)}
    card["duration_s"] = round(card["duration_s"] + time.perf_counter() - started, 1)
    return card


def write_card(card: dict, card_path: Path, readme_path: Path, readme: str) -> None:
    """The card as strict JSON and its page as Markdown, folders made as needed."""
    for path in (card_path, readme_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
    readme_path.write_text(readme)
    print(f"wrote {card_path} and {readme_path} in {card['duration_s']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
