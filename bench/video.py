"""Video benchmark: seconds per clip, and what joint attention over all frames costs against factorised attention.

With `--threads` torch threads on a passing thread per phase (as bench/sampling.py), measures
  1. seconds per clip (decode included), the video model sampling all frames jointly against the per-frame
     baseline (the image model, one image per frame, one batch), at each of `--steps`;
  2. one no-grad guided forward (2 rows) of the video DiT at the model's token count, factorised against joint
     attention (both built by VideoDiT.from_image_dit from the same image DiT), for each of `--frames`: ms, the
     ratio to factorised, FLOPs, and the attention pairs N^2 (joint) against T_f (HW)^2 + HW T_f^2 (factorised);
  3. one training step (forward + backward of a v-target MSE, `--train-batch` clips) factorised against joint.
Without video weights in --model-dir, part 1 times the baseline only and parts 2-3 use the image DiT.
Usage: python bench/video.py [--model-dir models] [--steps 10 20] [--frames 2 4 8] [--threads 2] [--json out.json]
"""

import argparse
import json
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.nets.video_dit import VideoDiT
from app.pipelines.image import Pipeline
from app.pipelines.video import ClipSettings, VideoPipeline, sample_per_frame
from bench.sampling import _table, in_thread, load_average
from bench.scaling import machine

PROMPT = "a large red circle moving right"
SCALE = 5.0
KINDS = ("factorised", "joint")


def time_clips(image: Pipeline, video: VideoPipeline | None, steps_list: list[int], repeats: int) -> list[dict]:
    """Median (and best) seconds per clip per method and step count; the methods take turns within a round."""
    methods = {"per_frame": lambda s: sample_per_frame(image, s)}
    if video is not None:
        methods = {"video": video.generate, **methods}
    frames = video.max_frames if video is not None else 8
    for run in methods.values():  # warm-up
        run(ClipSettings(prompt=PROMPT, steps=2, frames=frames, guidance_scale=SCALE))
    runs = {(m, s): [] for s in steps_list for m in methods}
    for r in range(repeats):
        for (method, steps), done in runs.items():
            started = time.perf_counter()
            methods[method](ClipSettings(prompt=PROMPT, seed=r, steps=steps, frames=frames, guidance_scale=SCALE))
            done.append(time.perf_counter() - started)
    rows = [{"method": m, "steps": s, "frames": frames, "median_s": statistics.median(t), "best_s": min(t),
             "runs_s": t, "load_average": load_average()} for (m, s), t in runs.items()]
    for row in rows:
        print(f"  {row['method']:9} steps {row['steps']:3d}: {row['median_s']:.3f} s/clip median, "
              f"{row['best_s']:.3f} best", flush=True)
    return rows


def pairs(kind: str, frames: int, per_frame: int) -> int:
    """Query-key pairs one attention layer scores: joint N^2, factorised T_f (HW)^2 + HW T_f^2 (EQ MM3.6)."""
    if kind == "joint":
        return (frames * per_frame) ** 2
    return frames * per_frame ** 2 + per_frame * frames ** 2


def _inputs(dit: VideoDiT, batch: int, frames: int, generator: torch.Generator):
    c = dit.config
    x = torch.randn(batch, frames, c.latent_channels, c.latent_size, c.latent_size, generator=generator)
    context = torch.randn(batch, 12, c.context_dim, generator=generator)
    return x, torch.full((batch,), 500), context, torch.ones(batch, 12, dtype=torch.bool)


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs), min(runs)


def time_forwards(image_dit, frames_list: list[int], repeats: int) -> list[dict]:
    """One guided (2-row) no-grad forward per attention kind and clip length."""
    rows = []
    for frames in frames_list:
        for kind in KINDS:
            dit = VideoDiT.from_image_dit(image_dit, frames, kind).eval()
            args = _inputs(dit, 2, frames, torch.Generator().manual_seed(0))
            with torch.inference_mode():
                with FlopCounterMode(display=False) as counter:
                    dit(*args)
                median, best = _median_ms(lambda dit=dit, args=args: dit(*args), repeats)
            per_frame = dit.config.tokens(frames)["per_frame"]
            rows.append({"frames": frames, "attention": kind, "tokens": frames * per_frame, "median_ms": median,
                         "best_ms": best, "flops": counter.get_total_flops(), "pairs": pairs(kind, frames, per_frame),
                         "parameters": sum(p.numel() for p in dit.parameters()), "load_average": load_average()})
    for row in rows:
        base = next(r for r in rows if r["frames"] == row["frames"] and r["attention"] == "factorised")
        row["vs_factorised"] = row["median_ms"] / base["median_ms"]
        row["pairs_vs_factorised"] = row["pairs"] / base["pairs"]
    return rows


def time_training(image_dit, frames: int, batch: int, repeats: int) -> list[dict]:
    """Forward + backward of an MSE against a random v target, `batch` clips of `frames` frames."""
    rows = []
    for kind in KINDS:
        torch.manual_seed(0)
        dit = VideoDiT.from_image_dit(image_dit, frames, kind).train()
        gen = torch.Generator().manual_seed(1)
        x, t, context, mask = _inputs(dit, batch, frames, gen)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        target = torch.randn(x.shape, generator=gen)

        def step(dit=dit, inputs=(x, t, context, mask), target=target):
            dit.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(dit(*inputs), target).backward()

        median, best = _median_ms(step, repeats)
        rows.append({"attention": kind, "frames": frames, "batch": batch, "median_ms": median, "best_ms": best,
                     "load_average": load_average()})
    for row in rows:
        row["vs_factorised"] = row["median_ms"] / rows[0]["median_ms"]
    return rows


def report(res: dict) -> None:
    if res["clips"]:
        steps = sorted({r["steps"] for r in res["clips"]})
        cell = {(r["method"], r["steps"]): r for r in res["clips"]}
        methods = [m for m in ("video", "per_frame") if (m, steps[0]) in cell]
        _table(f"Seconds per {res['clips'][0]['frames']}-frame clip, median (best), decode included "
               f"(s = {SCALE}, {res['threads']} threads)",
               ["steps", *methods, *(["video / per-frame"] if len(methods) == 2 else [])],
               [[str(s), *(f"{cell[m, s]['median_s']:.3f} ({cell[m, s]['best_s']:.3f})" for m in methods),
                 *([f"{cell['video', s]['median_s'] / cell['per_frame', s]['median_s']:.2f}x"]
                   if len(methods) == 2 else [])] for s in steps])
    _table(f"One guided DiT forward (2 rows, no grad), {res['dit_source']}",
           ["frames", "attention", "tokens", "median ms", "best ms", "x factorised", "GFLOP", "pairs",
            "pairs x factorised"],
           [[str(r["frames"]), r["attention"], str(r["tokens"]), f"{r['median_ms']:.1f}", f"{r['best_ms']:.1f}",
             f"{r['vs_factorised']:.2f}", f"{r['flops'] / 1e9:.3f}", f"{r['pairs']:,}",
             f"{r['pairs_vs_factorised']:.2f}"] for r in res["forward"]])
    tr = res["training"]
    _table(f"One training step (forward + backward), {tr[0]['batch']} clips of {tr[0]['frames']} frames",
           ["attention", "median ms", "best ms", "x factorised"],
           [[r["attention"], f"{r['median_ms']:.1f}", f"{r['best_ms']:.1f}", f"{r['vs_factorised']:.2f}"]
            for r in tr])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20])
    p.add_argument("--frames", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--repeats", type=int, default=3, help="runs per clip cell (medians)")
    p.add_argument("--forward-repeats", type=int, default=10)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-frames", type=int, default=8)
    p.add_argument("--train-repeats", type=int, default=3)
    p.add_argument("--skip-clips", action="store_true", help="only the forward and training-step timings")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args()
    n = args.threads
    res = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "threads": n,
           "torch": torch.__version__, "load_average_start": load_average(),
           "command": "python bench/video.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""),
           "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(n)}
    image = in_thread(n, Pipeline.load, args.model_dir, "cpu")
    video = in_thread(n, VideoPipeline.load, args.model_dir, image.vae) if VideoPipeline.available(args.model_dir) \
        else None
    res["video_weights"] = video is not None
    if not args.skip_clips:
        print(f"load average {res['load_average_start']:.1f} at start; clips:", flush=True)
    res["clips"] = [] if args.skip_clips else in_thread(n, time_clips, image, video, args.steps, args.repeats)
    image_dit = video.dit.image if video is not None else image.dit
    res["dit_source"] = "image part of the video DiT" if video is not None else "image DiT (no video weights)"
    res["forward"] = in_thread(n, time_forwards, image_dit, args.frames, args.forward_repeats)
    res["training"] = in_thread(n, time_training, image_dit, args.train_frames, args.train_batch, args.train_repeats)
    res["load_average_end"] = load_average()
    report(res)
    print(f"\nload average {res['load_average_start']:.1f} at start, {res['load_average_end']:.1f} at end")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
