"""GPU check: one call on a CUDA machine checks and times the GPU path, and writes one JSON file to bench/results/.

With only a fresh checkout and `make install` (`make gpu-check`), in a few minutes it measures, on the committed
weights (DPM-Solver++ (2M), guidance scale 5, 20 steps):
  sampling   seconds per call and images (clips) per second of the image and the video model at batch 1, 8, 64,
             with the peak CUDA memory of each call;
  compiled   the DiT compiled the server's way (AOTInductor, app/nets/compiled.py) and under torch.compile
             (inductor, dynamic=False) in its default mode and in "reduce-overhead" (CUDA graphs), against eager at
             batch 1 and 8: compile seconds, the speed-up, and the pictures' largest pixel difference and judge
             verdicts against eager;
  autocast   bf16 and fp16 autocast against fp32 on the evaluation prompts (full prompts, one seed each): speed,
             pixel differences and whether the judge's verdicts change (they must not);
  cpu_vs_cuda  the same seeds sampled on the CPU and on CUDA (the noise is drawn on the CPU either way): the pictures
             must agree within REPRO_MAX_PIXEL_DIFF and the judge must read them alike.
On a machine without CUDA it runs to completion all the same (CI runs it so): sampling and autocast run on the CPU
as a smoke test, with CPU_BATCHES unless --batches says otherwise, and every CUDA-only check is recorded as skipped
with its reason. Each check that raises is recorded as an error (and the exit status is 1), never lost; a time
budget (--budget-s) skips what is left rather than overrun.
Usage: python bench/gpu_check.py [--device auto|cuda|cpu] [--json PATH] [--quick] [--model-dir models]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.lab.timing import cpu_model
from app.measure.image import adherence, full_prompts
from app.measure.judge import Verdict, judge
from app.nets.compiled import AOTInductor, CompiledBuckets, TorchCompile
from app.nets.device import device_name, pick_device
from app.pipelines.image import GenerationSettings, Pipeline
from app.pipelines.video import ClipSettings, VideoPipeline
from app.world.scenes import to_uint8

DEFAULT_JSON = ROOT / "bench" / "results" / "gpu_check.json"
PROMPT = "a large red circle at the top left"
CLIP_PROMPT = "a large red circle moving right"
SCALE, SAMPLER, STEPS = 5.0, "dpmpp_2m", 20
CUDA_BATCHES = (1, 8, 64)
CPU_BATCHES = (1, 8)  # a CPU run is a smoke test: batch 64 clips would take minutes
COMPILE_BATCHES = (1, 8)
COMPILE_MODES = ("aoti", "default", "reduce-overhead")  # AOTInductor (the server's), torch.compile, + CUDA graphs
AUTOCAST_DTYPES = ("bfloat16", "float16")
EVAL_PROMPTS = 54  # the evaluation's full prompts (app/evaluation/image.py): every shape x colour, one seed each
# Tolerances. The judge must read every picture alike; the pixels may differ by rounding only. 20 sampler steps
# carry a rounding difference on, so the bound is a few levels of 255, not 1.
REPRO_MAX_PIXEL_DIFF = 8  # CPU vs CUDA, fp32, and the compiled path vs eager
VERDICT_FIELDS = ("shape", "colour", "size", "position", "clean")


class Budget:
    """Wall seconds left for the checks; a check that finds it spent is skipped, not started."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def spent(self) -> bool:
        return time.monotonic() >= self.deadline


def skipped(reason: str, **extra) -> dict:
    return {"status": "skipped", "reason": reason, **extra}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[dict, object]:
    """The first call timed on its own (lazy initialisation, autotuning, compilation), then the median of repeats."""
    synchronize(device)
    started = time.perf_counter()
    out = fn()
    synchronize(device)
    first = time.perf_counter() - started
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        synchronize(device)
        runs.append(time.perf_counter() - started)
    runs = runs or [first]
    return {"first_s": first, "median_s": statistics.median(runs), "best_s": min(runs), "runs_s": runs}, out


@contextmanager
def peak_memory(device: torch.device, into: dict):
    """Peak CUDA memory allocated inside the block, in MiB (not measured on the CPU)."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.reset_peak_memory_stats(device)
    yield
    into["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20


# ---------------------------------------------------------------------------------------------- what is sampled

def image_job(steps: int, batch: int, prompt: str = PROMPT, seed: int = 0) -> GenerationSettings:
    return GenerationSettings(prompt=prompt, seed=seed, steps=steps, batch_size=batch, guidance_scale=SCALE,
                              sampler=SAMPLER)


def eval_jobs(n: int, steps: int) -> list[GenerationSettings]:
    """The evaluation's first n full prompts, prompt i with seed i, as jobs sampled together in one batch."""
    return [image_job(steps, 1, p.canonical, seed=i) for i, p in enumerate(full_prompts(n))]


def eval_images(pipeline: Pipeline, jobs: list[GenerationSettings]) -> np.ndarray:
    """(n, H, W, 3) uint8, one picture per job."""
    return np.concatenate([r.images for r in pipeline.generate_batch(jobs)])


def clips(video: VideoPipeline, steps: int, batch: int) -> np.ndarray:
    """batch clips of CLIP_PROMPT (seeds 0..batch-1), decoded: (batch * F, H, W, 3) uint8."""
    z0, _ = video.sample(ClipSettings(prompt=CLIP_PROMPT, steps=steps, guidance_scale=SCALE, sampler=SAMPLER),
                         range(batch))
    return to_uint8(video.decode(z0).flatten(0, 1))


def verdict_key(v: Verdict) -> tuple:
    return tuple(getattr(v, f) for f in VERDICT_FIELDS)


def compare(reference: np.ndarray, other: np.ndarray, prompts=None) -> dict:
    """Pixel differences (0..255) and judge verdicts of two sets of the same pictures."""
    diff = np.abs(reference.astype(np.int16) - other.astype(np.int16))
    ref_v, other_v = judge(reference), judge(other)
    changed = [i for i, (a, b) in enumerate(zip(ref_v, other_v, strict=True)) if verdict_key(a) != verdict_key(b)]
    out = {"images": len(reference), "max_abs_pixel_diff": int(diff.max()), "mean_abs_pixel_diff": float(diff.mean()),
           "p99_abs_pixel_diff": float(np.percentile(diff, 99)), "verdicts_changed": len(changed),
           "changed_images": changed[:16], "verdicts_identical": not changed}
    if prompts is not None:
        out["adherence_all"] = [adherence(ref_v, prompts)["all"], adherence(other_v, prompts)["all"]]
    return out


# ---------------------------------------------------------------------------------------------- the checks

def check_sampling(image: Pipeline, video: VideoPipeline | None, batches, steps: int, repeats: int,
                   budget: Budget) -> dict:
    device = image.device
    families = {"image": lambda b: image.generate(image_job(steps, b)).images}
    if video is not None:
        families["video"] = lambda b: clips(video, steps, b)
    out = {"status": "ok", "device": str(device), "steps": steps, "families": {}}
    if video is None:
        out["video"] = skipped("no video weights in the model folder")
    for family, run in families.items():
        cells = []
        for batch in batches:
            if budget.spent():
                cells.append(skipped("time budget spent", batch=batch))
                continue
            cell = {"batch": batch}
            with peak_memory(device, cell):
                times, _ = timed(lambda run=run, batch=batch: run(batch), device, repeats)
            cell |= times | {"per_second": batch / times["median_s"], "s_per_item": times["median_s"] / batch}
            cells.append(cell)
        out["families"][family] = {"unit": "images" if family == "image" else "clips", "cells": cells}
    return out


def check_compiled(image: Pipeline, batches, steps: int, repeats: int, modes, budget: Budget) -> dict:
    """The server's compiled path (app/nets/compiled.py) on CUDA, per mode, against eager."""
    device = image.device
    if device.type != "cuda":
        return skipped("needs CUDA: this checks torch.compile and CUDA graphs on the GPU; the CPU's compiled path is "
                       "timed by bench/compiled.py")
    eager_dit = image.dit
    eager = {}
    for batch in batches:
        times, images = timed(lambda batch=batch: image.generate(image_job(steps, batch)).images, device, repeats)
        eager[batch] = (times, images)
    out = {"status": "ok", "steps": steps, "eager": {b: t for b, (t, _) in eager.items()}, "modes": {}}
    context, mask = image.encode_captions([PROMPT])
    c, s = eager_dit.config.latent_channels, eager_dit.config.latent_size
    for mode in modes:
        if budget.spent():
            out["modes"][mode] = skipped("time budget spent")
            continue
        torch._dynamo.reset()
        compiler = (AOTInductor(Path(tempfile.mkdtemp(prefix="gpu-check-")), "dit") if mode == "aoti"
                    else TorchCompile(mode=None if mode == "default" else mode))
        wrapper = CompiledBuckets(eager_dit, [2 * b for b in batches], compiler)
        cells = []
        try:
            for batch in batches:
                rows = 2 * batch
                compile_s = wrapper.warm((torch.zeros(rows, c, s, s, device=device),
                                          torch.full((rows,), 500, device=device),
                                          context.expand(rows, -1, -1).contiguous(), mask.expand(rows, -1).contiguous()))
                image.dit = wrapper
                times, images = timed(lambda batch=batch: image.generate(image_job(steps, batch)).images, device,
                                      repeats)
                image.dit = eager_dit
                eager_times, eager_images = eager[batch]
                cells.append({"batch": batch, **times, "compile_s": compile_s,
                              "speedup": eager_times["median_s"] / times["median_s"],
                              "against_eager": compare(eager_images, images)})
        except Exception as err:  # noqa: BLE001 (one compiler failing, say for want of a C++ compiler, is a finding)
            out["modes"][mode] = {"status": "error", "error": f"{type(err).__name__}: {err}", "cells": cells}
            continue
        finally:
            image.dit = eager_dit
        within = all(c["against_eager"]["max_abs_pixel_diff"] <= REPRO_MAX_PIXEL_DIFF
                     and c["against_eager"]["verdicts_identical"] for c in cells)
        out["modes"][mode] = {"status": "ok" if within else "differs", "cells": cells}
    return out


def check_autocast(image: Pipeline, n_prompts: int, steps: int, dtypes, budget: Budget) -> dict:
    device = image.device
    jobs = eval_jobs(n_prompts, steps)
    prompts = full_prompts(n_prompts)
    fp32, reference = timed(lambda: eval_images(image, jobs), device, 1)
    out = {"status": "ok", "prompts": n_prompts, "steps": steps, "fp32_s": fp32["median_s"], "dtypes": {}}
    for name in dtypes:
        if budget.spent():
            out["dtypes"][name] = skipped("time budget spent")
            continue
        if device.type == "cpu" and name == "float16":
            out["dtypes"][name] = skipped("float16 autocast on a CPU is emulated (about 30x slower than fp32 here): "
                                          "a CUDA check only")
            continue
        dtype = getattr(torch, name)
        with torch.autocast(device.type, dtype=dtype):
            times, images = timed(lambda: eval_images(image, jobs), device, 1)
        result = compare(reference, images, prompts)
        out["dtypes"][name] = {"status": "ok" if result["verdicts_identical"] else "verdicts changed",
                               "seconds": times["median_s"], "speedup": fp32["median_s"] / times["median_s"]} | result
    if any(d.get("status") == "verdicts changed" for d in out["dtypes"].values()):
        out["status"] = "verdicts changed"
    return out


def check_cpu_vs_cuda(image: Pipeline, video: VideoPipeline | None, model_dir: Path, n_prompts: int, steps: int,
                      budget: Budget) -> dict:
    if image.device.type != "cuda":
        return skipped("needs CUDA: compares the pictures of the same seeds sampled on the CPU and on CUDA")
    if budget.spent():
        return skipped("time budget spent")
    jobs = eval_jobs(n_prompts, steps)
    cpu = Pipeline.load(model_dir, "cpu")
    result = compare(eval_images(cpu, jobs), eval_images(image, jobs), full_prompts(n_prompts))
    out = {"steps": steps, "tolerance_max_abs_pixel_diff": REPRO_MAX_PIXEL_DIFF,
           "cuda_tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
           "image": result}
    ok = result["verdicts_identical"] and result["max_abs_pixel_diff"] <= REPRO_MAX_PIXEL_DIFF
    if video is not None:
        cpu_video = VideoPipeline.load(model_dir, cpu.vae)
        out["video"] = compare(clips(cpu_video, steps, 2), clips(video, steps, 2))
        ok = ok and out["video"]["verdicts_identical"] and out["video"]["max_abs_pixel_diff"] <= REPRO_MAX_PIXEL_DIFF
    return {"status": "ok" if ok else "differs"} | out


# ---------------------------------------------------------------------------------------------- the record

def machine(device: torch.device) -> dict:
    out = {"device": str(device), "device_name": device_name(device), "cpu": cpu_model(), "cores": os.cpu_count(),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cuda_available":
           torch.cuda.is_available(), "cuda_version": torch.version.cuda, "python": platform.python_version(),
           "platform": platform.platform()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out |= {"capability": f"{props.major}.{props.minor}", "memory_gib": props.total_memory / 2 ** 30,
                "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported()}
    return out


def run_check(name: str, fn: Callable[[], dict], record: dict) -> None:
    """Run one check into record["checks"][name]; an exception is recorded as an error, not raised."""
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as err:  # noqa: BLE001 (the record must say what failed, and the next check still runs)
        result = {"status": "error", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    result["seconds"] = round(time.perf_counter() - started, 3)
    record["checks"][name] = result
    why = result.get("reason", result.get("error", ""))
    print(f"{name:12} {result['status']:16} {result['seconds']:8.1f} s  {why}", flush=True)


def measure(args: argparse.Namespace) -> dict:
    device = pick_device(args.device)
    batches = args.batches or (CUDA_BATCHES if device.type == "cuda" else CPU_BATCHES)
    budget = Budget(args.budget_s)
    record = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "started_utc": _utc(),
              "load_average_before": os.getloadavg()[0], "machine": machine(device),
              "settings": {"steps": args.steps, "batches": list(batches), "prompts": args.prompts,
                           "repeats": args.repeats, "sampler": SAMPLER, "guidance_scale": SCALE,
                           "budget_s": args.budget_s, "model_dir": str(args.model_dir)},
              "checks": {}}
    if device.type != "cuda":
        record["note"] = "no CUDA device: the CUDA-only checks are skipped; sampling and autocast ran on the CPU"
    image = Pipeline.load(args.model_dir, str(device))
    video = VideoPipeline.load(args.model_dir, image.vae) if VideoPipeline.available(args.model_dir) else None
    run_check("sampling", lambda: check_sampling(image, video, batches, args.steps, args.repeats, budget), record)
    run_check("compiled", lambda: check_compiled(image, args.compile_batches or COMPILE_BATCHES, args.steps,
                                                 args.repeats, COMPILE_MODES, budget), record)
    run_check("autocast", lambda: check_autocast(image, args.prompts, args.steps, AUTOCAST_DTYPES, budget), record)
    run_check("cpu_vs_cuda", lambda: check_cpu_vs_cuda(image, video, args.model_dir, args.prompts, args.steps,
                                                       budget), record)
    if device.type != "cuda":
        record["machine"]["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record |= {"finished_utc": _utc(), "load_average_after": os.getloadavg()[0]}
    return record


def _utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="auto: CUDA when present, else the CPU (a smoke run)")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the record is written")
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--batches", type=int, nargs="+", default=None,
                   help=f"sampling batch sizes (default {CUDA_BATCHES} on CUDA, {CPU_BATCHES} on the CPU)")
    p.add_argument("--compile-batches", type=int, nargs="+", default=None, help=f"default {COMPILE_BATCHES}")
    p.add_argument("--prompts", type=int, default=EVAL_PROMPTS, help="evaluation prompts for autocast and CPU vs CUDA")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell after the first")
    p.add_argument("--budget-s", type=float, default=480.0, help="checks not started by then are skipped")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run: 3 steps, batches 1 2, 4 prompts")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.batches, args.prompts, args.repeats = 3, args.batches or [1, 2], 4, 1
        args.compile_batches = args.compile_batches or [1]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = measure(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 1 if any(c["status"] == "error" for c in record["checks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
