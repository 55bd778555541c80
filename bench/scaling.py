"""Scaling benchmark: how sampling time grows with the steps, the batch and the resolution (the /benchmarks page).

Loads the committed weights (Pipeline.load) and, with `--threads` torch threads on a passing thread per phase as
bench/sampling.py samples (its helpers do the timing), measures
  (a) seconds per image against the denoising steps (5, 10, 20, 50) at batch 1;
  (b) seconds per image and per batch against the batch size (1, 2, 4, 8, 16) at 20 steps;
  (c) one guided DiT forward (2 rows) of the committed denoiser's architecture (its DiTConfig, random weights) with
      latent side = resolution / f, at 32, 64, 128 and 256 px, and one decode by the committed VAE at each size:
      the token count, the ratio to the model's own resolution (64 px) and the log-log slope of time against tokens,
      so "time grows like N^k".
DPM-Solver++ (2M), guidance scale 5, prompt "a large red circle at the top left", as bench/sampling.py. It records the
machine (CPU model, cores, torch, threads), the 1-minute load average before and after, the date and the command, and
writes bench/results/scaling.json, which GET /api/v1/benchmarks/scaling serves as recorded (app/web/benchmarks.py).
Usage: python bench/scaling.py [--quick] [--json PATH] [--threads 2] [--repeats 5] [--model-dir models]
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.lab.timing import cpu_model
from app.measure.fits import linear_fit, local_exponents, loglog_fit
from app.pipelines.image import Pipeline
from app.service.models import fingerprint, parameter_counts
from app.web.benchmarks import SCALING_FILE, SCALING_FORMAT
from app.web.schemas import ScalingResult
from bench.sampling import (
    PROMPT,
    SAMPLER,
    SCALE,
    in_thread,
    load_average,
    settings,
    time_grid,
    time_resolution,
)

DEFAULT_JSON = ROOT / "bench" / "results" / SCALING_FILE
DIT_ROWS = 2  # one guided image: the conditional and the unconditional row in one forward (time_resolution's batch)
VAE_ROWS = 1
FULL = {"steps": [5, 10, 20, 50], "batches": [1, 2, 4, 8, 16], "batch_steps": 20, "resolutions": [32, 64, 128, 256],
        "repeats": 5, "budget": 25.0}
QUICK = {"steps": [2, 5], "batches": [1, 2], "batch_steps": 5, "resolutions": [32, 64, 128], "repeats": 2,
         "budget": 3.0}


# ---------------------------------------------------------------- the sections of the record (pure: no timing)

def _fits(xs: list[float], ys: list[float]) -> tuple[dict | None, dict | None]:
    """The straight line (fixed + per unit) and the power law through (xs, ys); None where two x are missing."""
    if len(set(xs)) < 2:
        return None, None
    fixed, per_unit = linear_fit(xs, ys)
    exponent, prefactor = loglog_fit(xs, ys)
    return {"fixed_s": fixed, "per_unit_s": per_unit}, {"exponent": exponent, "prefactor": prefactor}


def steps_section(batch: int, grid: list[dict]) -> dict:
    """(a) from time_grid's rows at one batch size: seconds per image against steps."""
    rows = [{"steps": r["steps"], "repeats": r["repeats"], "median_s_per_image": r["s_per_image"],
             "best_s_per_image": r["best_s_per_image"], "runs_s": r["runs_s"], "load_average": r["load_average"]}
            for r in sorted(grid, key=lambda r: r["steps"])]
    fit, power = _fits([r["steps"] for r in rows], [r["median_s_per_image"] for r in rows])
    return {"batch": batch, "rows": rows, "fit": fit, "power": power}


def batch_section(steps: int, grid: list[dict]) -> dict:
    """(b) from time_grid's rows at one number of steps: seconds per image and per batch against the batch size."""
    grid = sorted(grid, key=lambda r: r["batch"])
    first = grid[0]["s_per_image"]
    rows = [{"batch": r["batch"], "repeats": r["repeats"], "median_s_per_batch": r["median_s"],
             "median_s_per_image": r["s_per_image"], "best_s_per_image": r["best_s_per_image"],
             "images_per_s": 1 / r["s_per_image"], "speedup": first / r["s_per_image"], "runs_s": r["runs_s"],
             "load_average": r["load_average"]} for r in grid]
    fit, power = _fits([r["batch"] for r in rows], [r["median_s_per_batch"] for r in rows])
    return {"steps": steps, "rows": rows, "fit": fit, "power": power}


def resolution_section(resolutions: list[int], reference: int, dit: list[dict], vae: list[dict]) -> dict:
    """(c) from time_resolution's rows (one per latent size) and time_decode's, in the order of `resolutions`."""
    ref = resolutions.index(reference) if reference in resolutions else 0
    tokens = [d["tokens"] for d in dit]
    dit_ms, vae_ms = [d["median_ms"] for d in dit], [v["median_ms"] for v in vae]
    dit_local, vae_local = local_exponents(tokens, dit_ms), local_exponents(tokens, vae_ms)
    rows = [{"resolution": px, "latent_size": d["latent"], "tokens": d["tokens"],
             "dit_median_ms": d["median_ms"], "dit_best_ms": d["best_ms"], "dit_gflop": d["flops"] / 1e9,
             "dit_ratio": d["median_ms"] / dit_ms[ref], "dit_local_exponent": dit_local[i], "dit_runs_ms": d["runs_ms"],
             "vae_median_ms": v["median_ms"], "vae_best_ms": v["best_ms"], "vae_ratio": v["median_ms"] / vae_ms[ref],
             "vae_local_exponent": vae_local[i], "vae_runs_ms": v["runs_ms"],
             "load_average": max(d["load_average"], v["load_average"])}
            for i, (px, d, v) in enumerate(zip(resolutions, dit, vae))]
    dit_power = vae_power = None
    if len(set(tokens)) >= 2:
        k, c = loglog_fit(tokens, dit_ms)
        dit_power = {"exponent": k, "prefactor": c}
        k, c = loglog_fit(tokens, vae_ms)
        vae_power = {"exponent": k, "prefactor": c}
    return {"dit_weights": "random", "vae_weights": "trained", "dit_batch": DIT_ROWS, "vae_batch": VAE_ROWS,
            "reference_resolution": resolutions[ref], "rows": rows, "dit_power": dit_power, "vae_power": vae_power}


# ---------------------------------------------------------------- measuring

@torch.inference_mode()
def time_decode(pipeline: Pipeline, latents: list[int], repeats: int) -> list[dict]:
    """One decode of a (1, c_z, s, s) latent by the committed VAE decoder per size: median of `repeats`, warm."""
    rows = []
    channels = pipeline.vae.config.latent_channels
    for size in latents:
        z = torch.randn(VAE_ROWS, channels, size, size, generator=torch.Generator().manual_seed(0)).to(pipeline.device)
        pipeline.decode(z)  # warm-up
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            pipeline.decode(z)
            runs.append((time.perf_counter() - started) * 1000)
        rows.append({"latent": size, "median_ms": statistics.median(runs), "best_ms": min(runs), "runs_ms": runs,
                     "load_average": load_average()})
    return rows


def machine(threads: int) -> dict:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 1, "cores_available": available or 1,
            "torch": torch.__version__, "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": threads, "python": platform.python_version(), "platform": platform.platform()}


def _utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def measure(args: argparse.Namespace) -> dict:
    """Every phase on a passing thread with args.threads torch threads; returns the record (not yet validated)."""
    n = args.threads
    started, load_start, recorded_at = time.perf_counter(), load_average(), _utc()
    pipeline = in_thread(n, Pipeline.load, args.model_dir, "cpu")
    f, patch = pipeline.vae.config.downsample_factor, pipeline.dit.config.patch
    for px in args.resolutions:
        if px % (f * patch):
            raise SystemExit(f"--resolutions: {px} px is not a multiple of f x patch = {f * patch}")
    in_thread(n, pipeline.generate, settings(2, 1))  # warm-up
    print(f"load average {load_start:.2f} at start; (a) steps at batch 1:", flush=True)
    steps = in_thread(n, time_grid, pipeline, args.steps, [1], args.repeats, args.budget)
    print(f"(b) batch at {args.batch_steps} steps:", flush=True)
    batch = in_thread(n, time_grid, pipeline, [args.batch_steps], args.batches, args.repeats, args.budget)
    latents = [px // f for px in args.resolutions]
    print(f"(c) resolution {args.resolutions} px = latent {latents}: DiT forward (random weights), VAE decode",
          flush=True)
    dit = in_thread(n, time_resolution, pipeline, latents, args.repeats)
    vae = in_thread(n, time_decode, pipeline, latents, args.repeats)
    command = "python bench/scaling.py" + (" " + shlex.join(args.argv) if args.argv else "")
    return {
        "format": SCALING_FORMAT, "command": command, "recorded_at": recorded_at, "finished_at": _utc(),
        "duration_s": time.perf_counter() - started, "quick": args.quick, "machine": machine(n),
        "load_average": {"start": load_start, "end": load_average()},
        "model": {"model_id": fingerprint(args.model_dir), "resolution": pipeline.resolution, "downsample_factor": f,
                  "dit": pipeline.dit.config.to_dict(), "parameters": parameter_counts(pipeline)},
        "sampling": {"prompt": PROMPT, "sampler": SAMPLER, "guidance_scale": SCALE, "repeats": args.repeats,
                     "budget_s": args.budget},
        "steps": steps_section(1, steps),
        "batch": batch_section(args.batch_steps, batch),
        "resolution": resolution_section(args.resolutions, pipeline.resolution, dit, vae),
    }


def report(rec: dict) -> None:
    s, b, r = rec["steps"], rec["batch"], rec["resolution"]
    print(f"\n(a) seconds per image at batch {s['batch']}: "
          + ", ".join(f"{row['steps']} steps {row['median_s_per_image']:.3f}" for row in s["rows"]))
    if s["fit"]:
        print(f"    fit: {s['fit']['fixed_s']:.3f} s + {s['fit']['per_unit_s'] * 1000:.2f} ms x steps; "
              f"log-log slope {s['power']['exponent']:.2f}")
    print(f"(b) at {b['steps']} steps, seconds per image / per batch: "
          + ", ".join(f"batch {row['batch']} {row['median_s_per_image']:.3f} / {row['median_s_per_batch']:.3f} "
                      f"({row['speedup']:.2f}x)" for row in b["rows"]))
    print(f"(c) guided DiT forward ({r['dit_batch']} rows, random weights) and VAE decode, ratios to "
          f"{r['reference_resolution']} px:")
    for row in r["rows"]:
        print(f"    {row['resolution']:4d} px  latent {row['latent_size']:3d}  N {row['tokens']:5d}  "
              f"DiT {row['dit_median_ms']:8.1f} ms ({row['dit_ratio']:6.2f}x)  "
              f"VAE {row['vae_median_ms']:8.1f} ms ({row['vae_ratio']:6.2f}x)")
    if r["dit_power"]:
        print(f"    time grows like N^{r['dit_power']['exponent']:.2f} (DiT), N^{r['vae_power']['exponent']:.2f} (VAE)")
    print(f"load average {rec['load_average']['start']:.2f} at start, {rec['load_average']['end']:.2f} at end; "
          f"{rec['duration_s']:.1f} s")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run: few steps, sizes and repeats")
    p.add_argument("--steps", type=int, nargs="+", help=f"(a) steps at batch 1 (default {FULL['steps']})")
    p.add_argument("--batches", type=int, nargs="+", help=f"(b) batch sizes (default {FULL['batches']})")
    p.add_argument("--batch-steps", type=int, help=f"(b) steps of the batch sweep (default {FULL['batch_steps']})")
    p.add_argument("--resolutions", type=int, nargs="+", help=f"(c) image sides in px (default {FULL['resolutions']})")
    p.add_argument("--repeats", type=int, help=f"runs per cell and size (default {FULL['repeats']})")
    p.add_argument("--budget", type=float, help="seconds a cell may take before it stops repeating "
                                                f"(default {FULL['budget']})")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the record "
                                                                   "(default bench/results/scaling.json)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    record = ScalingResult.model_validate(measure(args)).model_dump(mode="json")  # the shape the API serves
    report(record)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
