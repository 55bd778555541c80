"""`diffusion-lab evaluate-video`: the video model against the per-frame baseline; writes models/video-card.json
and models/VIDEO.md.

Every prompt and seed is sampled twice with the same ClipSettings: (a) `sample_per_frame`, the image model drawing
frame k from its own noise (seed + k), the flicker failure of EQ MM3.6; (b) `VideoPipeline.generate`, the space-time
model denoising all frames jointly. Both clips are measured by app/measure/video.py (temporal flickering, subject
consistency, motion smoothness, mean jump of the tracked object, direction and attributes against the prompt), and
so are rendered clips of the training grammar that match the prompts: the ceiling the judge allows.

The card's top-level keys: CARD_KEYS. "evaluation" holds "settings" (with the prompt list), "methods" ("video",
"per_frame", "ground_truth", "through_vae" (the ground truth encoded and decoded by the VAE): each summarise() plus "direction_accuracy", "per_direction", and for the two samplers
"seconds_per_clip_median" and one compact row per clip), "comparison" (video minus per-frame) and "targets".
"shape_every_frame_by_size" is the share of clips whose every frame shows the asked shape, per size (the asked
one, or for prompts that leave it open the clip's judged size).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from app.evaluation.image import write_card
from app.evaluation.markdown import table
from app.measure.video import ClipMetrics, measure_clip, summarise
from app.nets.device import device_name
from app.pipelines.image import Pipeline
from app.pipelines.video import VIDEO_WEIGHT_FILES, ClipSettings, VideoPipeline, sample_per_frame
from app.world.clips import (
    DIRECTION_NAMES,
    VideoPrompt,
    format_clip_caption,
    parse_video_prompt,
    render_clips,
    sample_clips,
    select,
)
from app.world.scenes import COLOUR_NAMES, POSITIONS, SHAPES, SIZES, to_uint8

CARD_KEYS = ("name", "description", "model", "evaluation", "machine", "generated_at", "command", "duration_s")
METHODS = ("video", "per_frame")
# (size, colour, shape): every shape, colour and size appears; prompt i pairs direction i % 8 with combo
# (i // 8 + i % 8) % 6, so the 48 prompts are the full cross product and any first 8 see every direction.
COMBOS = (("small", "red", "circle"), ("large", "blue", "square"), ("small", "green", "triangle"),
          ("large", "yellow", "circle"), ("small", "purple", "square"), ("large", "orange", "triangle"))
# One start per direction that leaves the whole path room (from the far side of the frame).
STARTS = {"right": "left", "left": "right", "down": "top", "up": "bottom", "down right": "top left",
          "down left": "top right", "up right": "bottom left", "up left": "bottom right"}
SEED_STRIDE = 100  # prompt i, repeat j uses seed i * SEED_STRIDE + j; the per-frame baseline reads seed + k
DIRECTION_TARGET = 0.9
EVERY_FRAME_TARGET = 0.95  # share of clips whose every frame shows the asked shape
MARGIN_TARGET = 0.1  # "clearly above": the video model beats the baseline by at least this much


@dataclass(frozen=True)
class VideoEvalConfig:
    seeds: int = 2
    steps: int = 20
    scale: float = 5.0
    sampler: str = "dpmpp_2m"
    limit: int | None = None  # the first `limit` prompts only (a quick run)
    truth_seed: int = 0


def eval_prompts(limit: int | None = None) -> list[str]:
    """8 directions x 6 attribute combos, then one prompt per direction with a start; the first `limit`."""
    prompts = []
    for i in range(len(DIRECTION_NAMES) * len(COMBOS)):
        size, colour, shape = COMBOS[(i // len(DIRECTION_NAMES) + i % len(DIRECTION_NAMES)) % len(COMBOS)]
        prompts.append(format_clip_caption(shape, colour, size, DIRECTION_NAMES[i % len(DIRECTION_NAMES)]))
    for j, (direction, start) in enumerate(STARTS.items()):
        size, colour, shape = COMBOS[j % len(COMBOS)]
        prompts.append(format_clip_caption(shape, colour, size, direction, start))
    for j, direction in enumerate(DIRECTION_NAMES):  # colour and size left open: each frame may pick its own
        prompts.append(format_clip_caption(SHAPES[j % len(SHAPES)], direction=direction))
    return prompts[:limit] if limit else prompts


def is_open(prompt: VideoPrompt) -> bool:
    """A prompt that leaves colour and size to the model: where frame-by-frame sampling loses its subject."""
    return prompt.colour is None and prompt.size is None


# --------------------------------------------------------------------------------------------- measurements


def truth_frames(prompt: VideoPrompt, n: int, rng: np.random.Generator, frames: int, resolution: int,
                 tries: int = 64) -> list[np.ndarray]:
    """n rendered training clips that match everything the prompt names (rejection sampling), uint8 (F, H, W, 3)."""
    want = {"shape": (SHAPES, prompt.shape), "colour": (COLOUR_NAMES, prompt.colour), "size": (SIZES, prompt.size),
            "position": (POSITIONS, prompt.start)}
    out: list[np.ndarray] = []
    for _ in range(tries):
        clips = sample_clips(4096, rng, frames, resolution)
        ok = np.ones(len(clips), dtype=bool)
        for attr, (names, value) in want.items():
            if value is not None:
                ok &= getattr(clips.scenes, attr) == names.index(value)
        if prompt.direction is not None:
            ok &= clips.direction == DIRECTION_NAMES.index(prompt.direction)
        index = np.flatnonzero(ok)[: n - len(out)]
        if len(index):
            out += [to_uint8(clip) for clip in render_clips(select(clips, index))]
        if len(out) == n:
            return out
    raise ValueError(f"no training clip matches {prompt.canonical!r}")


@torch.no_grad()
def through_vae(image: Pipeline, clip: np.ndarray) -> np.ndarray:
    """A rendered clip (F, H, W, 3) encoded and decoded frame by frame: the best any model on these latents can draw."""
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(image.device)
    return to_uint8(image.vae.decode_from_diffusion(image.vae.encode_for_diffusion(x)))


def accuracy(metrics: list[ClipMetrics], prompts: list[VideoPrompt]) -> dict:
    """Direction right overall and per asked direction (None where a direction was not asked)."""
    right = [m.direction == p.direction for m, p in zip(metrics, prompts, strict=True)]
    per = {d: [r for r, p in zip(right, prompts) if p.direction == d] for d in DIRECTION_NAMES}
    return {"direction_accuracy": float(np.mean(right)) if right else None,
            "per_direction": {d: float(np.mean(v)) if v else None for d, v in per.items()}}


def _row(text: str, seed: int, m: ClipMetrics, seconds: float | None = None) -> dict:
    row = {"prompt": text, "seed": seed, "direction": m.direction, "velocity_px": m.velocity_px,
           "subject_consistency": m.subject_consistency, "motion_smoothness": round(m.motion_smoothness, 4),
           "temporal_flickering": round(m.temporal_flickering, 4),
           "mean_jump_px": None if m.mean_jump_px is None else round(m.mean_jump_px, 3),
           "judged": [m.shape, m.colour, m.size, m.start], "frame_shapes": m.frame_shapes,
           "all_right": m.adherence.get("all")}
    return row if seconds is None else row | {"seconds": round(seconds, 4)}


def every_frame_by_size(metrics: list[ClipMetrics], prompts: list[VideoPrompt]) -> dict[str, float | None]:
    """Share of clips whose every frame shows the asked shape, per size: the asked one, else the judged one."""
    hits = {size: [] for size in SIZES}
    for m, p in zip(metrics, prompts, strict=True):
        size = p.size or m.size
        if size is not None and "shape_every_frame" in m.adherence:
            hits[size].append(m.adherence["shape_every_frame"])
    return {size: float(np.mean(v)) if v else None for size, v in hits.items()}


def method_entry(metrics: list[ClipMetrics], prompts: list[VideoPrompt], rows: list[dict],
                 seconds: list[float] | None = None) -> dict:
    entry = summarise(metrics) | accuracy(metrics, prompts)
    entry["shape_every_frame_by_size"] = every_frame_by_size(metrics, prompts)
    if seconds:
        entry |= {"seconds_per_clip_median": statistics.median(seconds), "seconds_per_clip_min": min(seconds)}
    return entry | {"clips_measured": rows}


def compare(video: dict, baseline: dict) -> dict:
    """Video minus per-frame for each summary measure (jump and frame difference: lower is steadier)."""
    keys = ("temporal_flickering", "subject_consistency", "motion_smoothness", "mean_jump_px", "direction_accuracy")
    return {k: None if video[k] is None or baseline[k] is None else video[k] - baseline[k] for k in keys}


def targets(video: dict, baseline: dict) -> dict:
    """The acceptance: smoothness and consistency clearly above the baseline, direction right >= 90%, and (where
    measured) the asked shape in every frame of >= 95% of clips."""
    def beats(key: str) -> dict:
        margin = video[key] - baseline[key]
        return {"video": video[key], "per_frame": baseline[key], "margin": margin, "needed": MARGIN_TARGET,
                "met": margin >= MARGIN_TARGET}

    result = {"motion_smoothness": beats("motion_smoothness"), "subject_consistency": beats("subject_consistency")}
    if video.get("open_prompts") and baseline.get("open_prompts"):
        v, b = video["open_prompts"]["subject_consistency"], baseline["open_prompts"]["subject_consistency"]
        result["subject_consistency_open_prompts"] = {"video": v, "per_frame": b, "margin": v - b,
                                                      "needed": MARGIN_TARGET, "met": v - b >= MARGIN_TARGET}
    result["direction_accuracy"] = {"video": video["direction_accuracy"], "needed": DIRECTION_TARGET,
                                    "met": video["direction_accuracy"] >= DIRECTION_TARGET}
    every = video.get("adherence", {}).get("shape_every_frame")
    if every is not None:
        result["shape_every_frame"] = {"video": every, "needed": EVERY_FRAME_TARGET, "met": every >= EVERY_FRAME_TARGET}
    return result


def evaluate(image: Pipeline, video: VideoPipeline, cfg: VideoEvalConfig, log: Callable[[str], None] = print) -> dict:
    """Sample every prompt x seed with both methods, measure every clip and the matching ground truth."""
    texts = eval_prompts(cfg.limit)
    frames = video.max_frames
    samplers = {"video": video.generate, "per_frame": lambda s: sample_per_frame(image, s)}
    for run in samplers.values():  # warm-up: the first call pays for allocations
        run(ClipSettings(prompt=texts[0], steps=2, guidance_scale=cfg.scale, sampler=cfg.sampler, frames=frames))
    measured = {m: {"metrics": [], "rows": [], "seconds": []} for m in METHODS}
    asked: list[VideoPrompt] = []
    for i, text in enumerate(texts):
        prompt = parse_video_prompt(text)
        for j in range(cfg.seeds):
            seed = i * SEED_STRIDE + j
            settings = ClipSettings(prompt=text, seed=seed, steps=cfg.steps, guidance_scale=cfg.scale,
                                    sampler=cfg.sampler, frames=frames)
            for method, run in samplers.items():
                result = run(settings)
                m = measure_clip(result.frames, prompt)
                seconds = result.timings["total_s"]
                measured[method]["metrics"].append(m)
                measured[method]["rows"].append(_row(text, seed, m, seconds))
                measured[method]["seconds"].append(seconds)
            asked.append(prompt)
        v, b = (measured[k]["metrics"][-cfg.seeds:] for k in METHODS)
        log(f"{i + 1:3d}/{len(texts)} {text!r:62} video: dir {sum(m.direction == prompt.direction for m in v)}/"
            f"{cfg.seeds} smooth {np.mean([m.motion_smoothness for m in v]):.2f} | per-frame: smooth "
            f"{np.mean([m.motion_smoothness for m in b]):.2f} cons {np.mean([m.subject_consistency for m in b]):.2f}")
    methods = {k: method_entry(measured[k]["metrics"], asked, measured[k]["rows"], measured[k]["seconds"])
               for k in METHODS}
    rng = np.random.default_rng(cfg.truth_seed)
    truth, truth_rows, truth_clips = [], [], []
    for i, text in enumerate(texts):
        prompt = parse_video_prompt(text)
        for j, clip in enumerate(truth_frames(prompt, cfg.seeds, rng, frames, image.resolution)):
            truth_clips.append(clip)
            truth.append(measure_clip(clip, prompt))
            truth_rows.append(_row(text, j, truth[-1]))
    methods["ground_truth"] = method_entry(truth, asked, truth_rows)
    through = [measure_clip(through_vae(image, clip), prompt) for clip, prompt in zip(truth_clips, asked)]
    methods["through_vae"] = method_entry(through, asked, [_row(r["prompt"], r["seed"], m)
                                                           for r, m in zip(truth_rows, through)])
    open_rows = [i for i, p in enumerate(asked) if is_open(p)]
    clips = {**{k: measured[k]["metrics"] for k in METHODS}, "ground_truth": truth, "through_vae": through}
    for k, entry in methods.items():
        entry["open_prompts"] = summarise([clips[k][i] for i in open_rows]) if open_rows else None
    settings = asdict(cfg) | {"frames": frames, "resolution": image.resolution, "prompts": len(texts),
                              "clips_per_method": len(asked), "prompt_list": texts, "seed_stride": SEED_STRIDE}
    return {"settings": settings, "methods": methods,
            "comparison": compare(methods["video"], methods["per_frame"]),
            "targets": targets(methods["video"], methods["per_frame"])}


# --------------------------------------------------------------------------------------------- the card


def model_section(video: VideoPipeline, model_dir: Path) -> dict:
    """Architecture, parameters, recipe and training time, from the video weights' own metadata."""
    meta = VideoPipeline.metadata_of(model_dir)
    extra = meta["dit"]["extra"]
    config = video.dit.config
    dit_params = sum(p.numel() for p in video.dit.parameters())
    temporal = sum(p.numel() for n, p in video.dit.named_parameters() if n.startswith("temporal."))
    text_params = sum(p.numel() for p in video.text.parameters())
    keep = ("command", "steps_done", "steps_planned", "stopped_early", "wall_time_s", "device", "torch_version",
            "git_commit", "created_utc", "validation", "bank", "initialised_from", "weighting", "recipe", "loss_curve",
            "warm_start")
    return {
        "kind": f"space-time DiT ({config.attention} attention) initialised from the image DiT, "
                f"{extra.get('prediction', 'v')}-prediction, with the image model's VAE",
        "attention": config.attention, "frames": config.frames, "tokens": config.tokens(),
        "files": {name: {"file": file, "bytes": (model_dir / file).stat().st_size, "class": meta[name]["class"]}
                  for name, file in VIDEO_WEIGHT_FILES.items()},
        "parameters": {"denoiser": dit_params, "temporal_blocks": temporal, "image_blocks": dit_params - temporal,
                       "text_encoder": text_params, "total": dit_params + text_params},
        "config": meta["dit"]["config"],
        "training": {k: extra[k] for k in keep if k in extra},
        "training_time_s": extra.get("wall_time_s"),
    }


def machine(device: torch.device) -> dict:
    return {"device": device_name(device), "device_type": device.type, "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_1m": os.getloadavg()[0]}


def build_card(image: Pipeline, video: VideoPipeline, model_dir: str | Path, cfg: VideoEvalConfig, command: str,
               log: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    model_dir = Path(model_dir)
    evaluation = evaluate(image, video, cfg, log)
    return {
        "name": "diffusion-lab clips-64",
        "description": "A text-to-clip latent diffusion model: the image model's DiT extended with attention "
                       "across frames and trained on clips of one shape moving in a straight line; measured "
                       "against the image model sampled frame by frame by `diffusion-lab evaluate-video`.",
        "model": model_section(video, model_dir),
        "evaluation": evaluation,
        "machine": machine(video.device),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "duration_s": round(time.perf_counter() - started, 1),
    }


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _training_sentence(train: dict, hours: float | None) -> str:
    if "command" not in train:
        return "The weights record no training run."
    steps = train.get("steps_done", "?")
    if train.get("warm_start"):  # the command is the last stage's; the time counts every stage
        text = (f"The last training stage ran `{train['command']}`: {steps} steps, warm-started from earlier weights "
                f"([TRAINING.md](TRAINING.md) lists every stage)")
        if hours is not None:
            text += f"; {hours:.2f} h of training in all on {train.get('device', '?')}"
    else:
        text = f"Trained by `{train['command']}`: {steps} steps"
        if hours is not None:
            text += f" in {hours:.2f} h on {train.get('device', '?')}"
    if train.get("validation"):
        text += "; validation " + ", ".join(f"{k} {v:.4f}" for k, v in train["validation"].items())
    if train.get("bank"):
        text += f"; clips from a bank of {train['bank']['clips']:,}, VAE-encoded once"
    return text + "."


def _open_prompts_section(methods: dict, names: dict) -> list[str]:
    """The rows of prompts naming only the shape: where per-frame sampling changes colour and size."""
    rows = [[names[k], _f(m["open_prompts"]["subject_consistency"]), _f(m["open_prompts"]["motion_smoothness"]),
             _f(m["open_prompts"]["mean_jump_px"], 2)]
            for k, m in methods.items() if m.get("open_prompts")]
    if not rows:
        return []
    return ["The prompts that name only the shape and the direction (colour and size left to the model):", "",
            table(["method", "consistency", "smoothness", "jump px"], rows), ""]


def render_video_readme(card: dict) -> str:
    """models/VIDEO.md: what was measured, the two methods and the ceiling side by side, timing, the recipe."""
    model, ev = card["model"], card["evaluation"]
    st, methods, tg = ev["settings"], ev["methods"], ev["targets"]
    names = {"video": "video model (frames together)", "per_frame": "image model, frame by frame",
             "ground_truth": "rendered training clips", "through_vae": "the same, through the VAE"}
    main = [[names[k], _f(m["temporal_flickering"]), _f(m["subject_consistency"]), _f(m["motion_smoothness"]),
             _f(m["mean_jump_px"], 2), _f(m["direction_accuracy"]),
             *(_f(m["adherence"].get(a)) for a in ("shape", "shape_every_frame", "colour", "size", "all"))]
            for k, m in methods.items()]
    every = [[names[k], *(_f(m["shape_every_frame_by_size"][size]) for size in SIZES)]
             for k, m in methods.items()]
    per_dir = [[d, *(_f(methods[k]["per_direction"][d], 2) for k in methods)] for d in DIRECTION_NAMES]
    train = model["training"]
    hours = None if model["training_time_s"] is None else model["training_time_s"] / 3600
    verdict = "; ".join(f"{k.replace('_', ' ')} {'met' if t['met'] else 'NOT met'}" for k, t in tg.items())
    timing = {k: methods[k]["seconds_per_clip_median"] for k in METHODS}
    return "\n".join([
        "# The video model",
        "",
        f"{card['description']} Generated by `{card['command']}` on {card['generated_at'][:10]} "
        f"({card['machine']['device']}, torch {card['machine']['torch']}); every number is in "
        "[video-card.json](video-card.json).",
        "",
        "## Per-frame sampling against joint sampling",
        "",
        f"{st['prompts']} prompts ({'' if st['limit'] is None else 'the first of the set: '}8 directions x 6 "
        f"shape/colour/size combinations, then one per direction naming a start, then one per direction naming only "
        f"the shape) x {st['seeds']} seeds, "
        f"{st['frames']} frames, {st['steps']} `{st['sampler']}` steps at s = {st['scale']:g}. Each seed is sampled both ways with the same settings: the image model draws frame k "
        "from its own noise (seed + k), the video model denoises all frames together. The last two rows are the same "
        "measurement on rendered clips of the training grammar that match the prompts (the ceiling of the judge), and on "
        "those clips encoded and decoded by the VAE (the ceiling of any model that draws through it). "
        "*Flicker* is 1 - mean |frame k+1 - frame k| (1 = no change); *consistency* the share of frames whose "
        "judged shape, colour and size equal the clip's most common ones; *smoothness* exp(-rms / 4 px) of the "
        "tracked centre around its best constant-velocity line; *jump* the mean frame-to-frame displacement in "
        "pixels; *direction* the share of clips whose fitted motion lies in the asked 45-degree sector; *shape*, "
        "*colour*, *size* the clip's most common judged value right; *every frame* the asked shape in every frame; "
        "*all* every named attribute right in a fully consistent clip.",
        "",
        table(["method", "flicker", "consistency", "smoothness", "jump px", "direction", "shape", "every frame",
               "colour", "size", "all"], main),
        "",
        f"Targets: {verdict} (smoothness and consistency at least {MARGIN_TARGET:g} above the baseline, direction "
        f"right in at least {DIRECTION_TARGET:.0%} of clips, the asked shape in every frame of at least "
        f"{EVERY_FRAME_TARGET:.0%}).",
        "",
        "The asked shape in every frame, by size (the asked size, or the judged one where the prompt leaves it open):",
        "",
        table(["method", *SIZES], every),
        "",
        *_open_prompts_section(methods, names),
        "Direction right, per asked direction:",
        "",
        table(["direction", *(names[k] for k in methods)], per_dir),
        "",
        "## Timing",
        "",
        f"Median seconds per {st['frames']}-frame clip, decode included: video model {timing['video']:.2f} s, "
        f"image model frame by frame {timing['per_frame']:.2f} s (torch threads: {card['machine']['torch_threads']}; "
        f"1-minute load average {card['machine']['load_average_1m']:.1f} at the end).",
        "",
        "## The model",
        "",
        f"{model['kind']}. {model['frames']} frames of {model['tokens']['per_frame']} latent tokens "
        f"({model['tokens']['per_clip']} per clip). Parameters: denoiser {model['parameters']['denoiser']:,} "
        f"(of which temporal blocks {model['parameters']['temporal_blocks']:,}), caption encoder "
        f"{model['parameters']['text_encoder']:,}.",
        "",
        _training_sentence(train, hours),
        "",
        "## Reproduce",
        "",
        f"`{card['command']}` rewrites this page and video-card.json (about {card['duration_s'] / 60:.0f} min "
        "here); `--limit 8 --seeds 1 --steps 10` is a quick check.",
        "",
    ])


# --------------------------------------------------------------------------------------------- command line


def build_parser(prog: str = "python3 -m app.evaluation.video") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Measure the video model against the per-frame baseline.")
    p.add_argument("--model-dir", default="models", help="folder with the image and video weights")
    p.add_argument("--seeds", type=int, default=VideoEvalConfig.seeds, help="seeds per prompt")
    p.add_argument("--steps", type=int, default=VideoEvalConfig.steps, help="denoising steps")
    p.add_argument("--scale", type=float, default=VideoEvalConfig.scale, help="guidance scale s")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts (a quick run)")
    p.add_argument("--out", default=None, help="default: <model-dir>/video-card.json")
    p.add_argument("--readme", default=None, help="default: <model-dir>/VIDEO.md")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    return p


def in_worker(threads: int, fn: Callable, *args):
    """fn(*args) on a worker thread with `threads` torch threads: torch in the main thread can be far slower here
    when other thread pools exist (see bench/sampling.py)."""
    def call():
        torch.set_num_threads(threads)
        return fn(*args)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate-video") as executor:
        return executor.submit(call).result()


def main(argv: list[str] | None = None, prog: str = "python3 -m app.evaluation.video") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    model_dir = Path(args.model_dir)
    if not VideoPipeline.available(model_dir):
        print(f"{prog}: no video weights in {model_dir} ({', '.join(VIDEO_WEIGHT_FILES.values())}); "
              "train them with `python3 -m app.training video`", file=sys.stderr)
        return 2
    cfg = VideoEvalConfig(seeds=args.seeds, steps=args.steps, scale=args.scale, limit=args.limit)

    def run() -> dict:
        image = Pipeline.load(model_dir, args.device)
        video = VideoPipeline.load(model_dir, image.vae)
        return build_card(image, video, model_dir, cfg, shlex.join([*prog.split(), *argv]))

    card = in_worker(args.threads, run)
    write_card(card, Path(args.out or model_dir / "video-card.json"), Path(args.readme or model_dir / "VIDEO.md"),
               render_video_readme(card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
