"""Compiled inference (DIFFUSION_LAB_COMPILE) against eager, end to end, on the committed weights (issue 18 §1).

Loads the image and video models, puts the server's compiled networks in place (app/service/compiled.py: the DiT,
the VAE decoder and the video DiT under torch.compile, inductor, dynamic=False, freezing on the CPU) and warms just
the buckets the cells below need, timing each: into an empty inductor cache (the first start's compile cost), then
again in a fresh process from the cache it filled (a restart's load cost). Then, in interleaved rounds (eager,
compiled, eager, ... so load from other processes falls on both alike), it times
  - a guided 20-step image (DPM-Solver++ (2M), s = 5, decode included) at batch 1 and 16,
  - a guided 20-step 8-frame clip of the video model,
and reports the medians, the speed-up, the achieved GFLOP/s against this machine's float32 matmul rate
(bench/matmul_rate.py, same threads; FLOPs counted by torch.utils.flop_counter on the eager image), and how far the
compiled pictures are from the eager ones (largest pixel difference; the judge's verdicts). First, the candidates
side by side on one guided DiT forward (2 and 32 rows): eager, torch.compile (inductor, freezing), AOTInductor
(torch.export, freezing: the one the server uses) and ONNX Runtime (torch.onnx.export, when onnxruntime and
onnxscript are installed: the dev extra has them).
Usage: python bench/compiled.py [--threads 1] [--rounds 7] [--batches 1 16] [--json bench/results/compiled.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.measure.judge import judge
from app.nets.compiled import AOTInductor, CompiledBuckets, TorchCompile, eager_of
from app.pipelines.image import GenerationSettings, Pipeline
from app.pipelines.video import ClipSettings, VideoPipeline
from app.service.compiled import CompileState, inductor_options, install, warm_up_plan
from bench.gpu_check import verdict_key
from bench.matmul_rate import matmul_gflops
from bench.sampling import count_flops

PROMPT, CLIP_PROMPT, SCALE, STEPS = "a large red circle at the top left", "a large red circle moving right", 5.0, 20


def load(model_dir: Path, cache_dir: Path) -> tuple[Pipeline, VideoPipeline, CompileState]:
    image = Pipeline.load(model_dir, "cpu")
    video = VideoPipeline.load(model_dir, image.vae)
    return image, video, install(image, video, "on", cache_dir)


def warm(image: Pipeline, video: VideoPipeline, state: CompileState, batches: list[int]) -> dict:
    """Warm the buckets the cells use (the DiT at 2 rows per image, the decoder per image, the clip): seconds each."""
    wanted = {("dit", 2 * b) for b in batches} | {("decoder", b) for b in batches} | \
        {("video_dit", 2), ("decoder", video.max_frames)}
    seconds = {}
    for name, args in warm_up_plan(image, video, state):
        if (name, args[0].shape[0]) in wanted:
            seconds[f"{name}/{args[0].shape[0]}"] = round(state.networks[name].warm(args), 2)
    return seconds


def toggled(image: Pipeline, video: VideoPipeline, state: CompileState):
    """A function that switches the three networks between their compiled wrapper and the eager network."""
    nets = {"dit": (image, "dit"), "decoder": (image.vae, "decoder"), "video_dit": (video, "dit")}

    def use(compiled: bool) -> None:
        for name, (owner, attr) in nets.items():
            wrapper = state.networks[name]
            setattr(owner, attr, wrapper if compiled else wrapper.module)

    return use


def interleaved(cells: dict, use, rounds: int) -> dict:
    """Per cell, eager and compiled timed in alternation: median seconds and the last outputs of each."""
    times = {name: {"eager": [], "compiled": []} for name in cells}
    outputs = {}
    for _ in range(rounds + 1):  # the first round warms caches and is not counted
        for name, run in cells.items():
            for mode in ("eager", "compiled"):
                use(mode == "compiled")
                started = time.perf_counter()
                outputs[name, mode] = run()
                times[name][mode].append(time.perf_counter() - started)
    result = {}
    for name, t in times.items():
        eager, compiled = statistics.median(t["eager"][1:]), statistics.median(t["compiled"][1:])
        a, b = outputs[name, "eager"], outputs[name, "compiled"]
        same = [verdict_key(x) == verdict_key(y) for x, y in zip(judge(a), judge(b), strict=True)]
        result[name] = {"eager_s": eager, "compiled_s": compiled, "speedup": eager / compiled,
                        "eager_runs_s": t["eager"][1:], "compiled_runs_s": t["compiled"][1:],
                        "max_abs_pixel_diff": int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()),
                        "verdicts_identical": all(same), "images": len(a)}
    return result


def onnx_runtime(module, args: tuple, path: Path):
    """(export seconds, a callable running module's export in an ONNX Runtime session on this thread count), or None
    without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    started = time.perf_counter()
    torch.onnx.export(module, args, str(path), dynamo=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    def run(*call_args):
        return session.run(None, dict(zip(names, (x.numpy() for x in call_args), strict=True)))

    return round(time.perf_counter() - started, 1), run


def candidates(image: Pipeline, cache: Path, rows_list: list[int], rounds: int) -> dict:
    """One guided DiT forward under each compiler, timed in interleaved rounds: compile and median ms."""
    dit = eager_of(image.dit)
    context, mask = image.encode_captions([PROMPT])
    out = {}
    for rows in rows_list:
        args = (torch.randn(rows, dit.config.latent_channels, dit.config.latent_size, dit.config.latent_size),
                torch.full((rows,), 500), context.expand(rows, -1, -1).contiguous(), mask.expand(rows, -1).contiguous())
        runners, compile_s = {"eager": dit}, {}
        for name, compiler in (("torch.compile (freezing)", TorchCompile(options=inductor_options(args[0].device))),
                               ("AOTInductor (freezing)", AOTInductor(cache / "candidates", "dit",
                                                                      inductor_options(args[0].device)))):
            wrapped = CompiledBuckets(dit, [rows], compiler)
            compile_s[name] = round(wrapped.warm(args), 1)
            runners[name] = wrapped
        onnx = onnx_runtime(dit, args, cache / f"dit-{rows}.onnx")
        if onnx is not None:
            compile_s["ONNX Runtime"], runners["ONNX Runtime"] = onnx
        times = {name: [] for name in runners}
        with torch.no_grad():
            for _ in range(rounds * 5):
                for name, run in runners.items():
                    started = time.perf_counter()
                    run(*args)
                    times[name].append(time.perf_counter() - started)
        eager = statistics.median(times["eager"])
        out[rows] = {name: {"median_ms": statistics.median(t) * 1e3, "speedup": eager / statistics.median(t),
                            "compile_s": compile_s.get(name)} for name, t in times.items()}
    return out


def measure(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="compiled-"))
    load_before = os.getloadavg()[0]
    image, video, state = load(args.model_dir, cache)
    forwards = candidates(image, cache, [2, 32], args.rounds) if args.candidates else None
    cold = warm(image, video, state, args.batches)
    restart = subprocess.run([sys.executable, __file__, "--warm-only", "--threads", str(args.threads),
                              "--cache-dir", str(cache), "--batches", *map(str, args.batches)],
                             capture_output=True, text=True, check=True)
    cells = {f"image batch {b}": (lambda b=b: image.generate(GenerationSettings(
        prompt=PROMPT, seed=0, steps=STEPS, guidance_scale=SCALE, batch_size=b)).images) for b in args.batches}
    cells["clip (8 frames)"] = lambda: video.generate(ClipSettings(prompt=CLIP_PROMPT, seed=0, steps=STEPS,
                                                                   guidance_scale=SCALE, frames=8)).frames
    use = toggled(image, video, state)
    rate_before = matmul_gflops(2048, 5)
    result = interleaved(cells, use, args.rounds)
    use(False)
    flops = count_flops(image, STEPS)  # one guided image, eager
    rate_after = matmul_gflops(2048, 5)
    # The floor is the machine's best: other processes' load only ever lowers a measurement of it.
    rate = max(rate_before, rate_after, key=lambda r: r["gflops"])
    for b in args.batches:
        cell = result[f"image batch {b}"]
        for mode in ("eager", "compiled"):
            gflops = flops["total"] * b / cell[f"{mode}_s"] / 1e9
            cell[f"{mode}_gflops"] = gflops
            cell[f"{mode}_of_matmul_rate"] = gflops / rate["gflops"]
    return {"threads": args.threads, "rounds": args.rounds, "cache_dir_cold": True, "dit_forward_candidates": forwards,
            "warm_s_first_start": cold, "warm_s_restart": json.loads(restart.stdout.splitlines()[-1]),
            "cells": result, "flops_per_image": flops, "matmul_gflops": rate["gflops"],
            "matmul_gflops_before_after": [rate_before["gflops"], rate_after["gflops"]],
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv),
            "torch": torch.__version__}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--cache-dir", default=None, help="inductor's cache (default: a new, empty one)")
    p.add_argument("--warm-only", action="store_true", help="load, warm from --cache-dir, print the seconds")
    p.add_argument("--no-candidates", dest="candidates", action="store_false",
                   help="skip the side-by-side of the compilers on one DiT forward")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.warm_only:
        torch.set_num_threads(args.threads)
        image, video, state = load(args.model_dir, Path(args.cache_dir))
        print(json.dumps(warm(image, video, state, args.batches)))
        return 0
    record = measure(args)
    for rows, cands in (record["dit_forward_candidates"] or {}).items():
        for name, c in cands.items():
            print(f"DiT forward, {rows:2d} rows, {name:26} {c['median_ms']:7.2f} ms  {c['speedup']:.2f}x"
                  + (f"  (compile {c['compile_s']} s)" if c["compile_s"] is not None else ""))
    for name, c in record["cells"].items():
        extra = "".join(f", {c[f'{m}_of_matmul_rate']:.0%} of matmul ({m})" for m in ("eager", "compiled")
                        if f"{m}_of_matmul_rate" in c)
        print(f"{name:16} eager {c['eager_s'] * 1e3:8.1f} ms  compiled {c['compiled_s'] * 1e3:8.1f} ms  "
              f"{c['speedup']:.2f}x  max pixel diff {c['max_abs_pixel_diff']}, verdicts same: "
              f"{c['verdicts_identical']}{extra}")
    print("first start (compile) s:", record["warm_s_first_start"])
    print("restart (from the cache) s:", record["warm_s_restart"])
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
