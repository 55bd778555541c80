"""Sampling benchmark: seconds per image, where the time goes, FLOPs against this CPU's matmul rate, and scaling.

Loads the committed weights and, with `--threads` torch threads on a passing thread per phase as the server
samples (the main thread runs no torch op), measures
  1. seconds per image for DPM-Solver++ (2M) at guidance scale 5, steps x batch (median of up to `--repeats` runs
     within `--budget` seconds per cell);
  2. the share of the wall time spent inside the networks' forwards (DiT, caption encoder, VAE decoder; timed by
     forward hooks) against everything else (sampler arithmetic, guidance combine, uint8 conversion, PNG encode),
     both for pipeline.generate + encode_png and for one POST /api/v1/generate through the app's TestClient;
  3. the FLOPs of one guided 20-step image (torch.utils.flop_counter, VAE decode included) and the achieved FLOP/s
     against a large float32 torch.mm on this machine (bench/matmul_rate.py), the physical floor;
  4. scaling with the DiT's token count: a randomly initialised DiT of the served config at latent 8, 16, 32.
Usage: python bench/sampling.py [--steps 10 20 50] [--batches 1 4 16] [--repeats 5] [--threads 2] [--json out.json]
"""

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.nets.dit import DiT
from app.pipelines.image import GenerationSettings, Pipeline
from app.service.imaging import encode_png
from app.web.state import state_of
from bench.matmul_rate import matmul_gflops

PROMPT = "a large red circle at the top left"
SCALE = 5.0
SAMPLER = "dpmpp_2m"
FLOP_STEPS = 20
FLOP_MODULES = {"DiT": "dit", "TextEncoder": "text encoder", "Decoder": "VAE decoder"}


def load_average() -> float:
    return os.getloadavg()[0]


def in_thread(threads: int, fn, *args):
    """fn(*args) on a thread that ends with it, as the server samples: no second OpenMP pool stays alive.

    Every thread that runs a parallel torch op keeps an OpenMP pool of its own and two live pools slow each other
    down (app/service/sampling.py), so the main thread runs no torch op and each phase gets a passing thread.
    """
    def call():
        torch.set_num_threads(threads)
        return fn(*args)

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-torch")
    try:
        return executor.submit(call).result()
    finally:
        executor.shutdown(wait=True)


class ForwardTimer:
    """Wall seconds spent inside each network's forward, accumulated by pre/post forward hooks."""

    def __init__(self, modules: dict[str, torch.nn.Module]):
        self.seconds = dict.fromkeys(modules, 0.0)
        self.calls = dict.fromkeys(modules, 0)
        self._started: dict[str, float] = {}
        self._handles = []
        for name, module in modules.items():
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, args):
            self._started[name] = time.perf_counter()
        return hook

    def _post(self, name):
        def hook(module, args, output):
            self.seconds[name] += time.perf_counter() - self._started.pop(name)
            self.calls[name] += 1
        return hook

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)
        self.calls = dict.fromkeys(self.calls, 0)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@contextmanager
def forward_timer(pipeline: Pipeline):
    timer = ForwardTimer({"dit": pipeline.dit, "text encoder": pipeline.text, "VAE decoder": pipeline.vae.decoder})
    try:
        yield timer
    finally:
        timer.remove()


def settings(steps: int, batch: int, seed: int = 0) -> GenerationSettings:
    return GenerationSettings(prompt=PROMPT, seed=seed, steps=steps, batch_size=batch, guidance_scale=SCALE,
                              sampler=SAMPLER)


def generate_and_encode(pipeline: Pipeline, s: GenerationSettings) -> dict:
    """One generate() plus a PNG per image, as the API returns them; wall seconds of each part."""
    started = time.perf_counter()
    result = pipeline.generate(s)
    generated = time.perf_counter()
    for image in result.images:
        encode_png(image, {"prompt": s.prompt, "steps": s.steps, "seed": s.seed})
    done = time.perf_counter()
    return {"generate_s": generated - started, "png_s": done - generated, "total_s": done - started}


def time_grid(pipeline: Pipeline, steps_list: list[int], batches: list[int], repeats: int, budget_s: float) -> list:
    """Seconds per image for each (steps, batch): median of up to `repeats` runs, fewer if one cell passes budget_s.

    The cells take turns (one run of each per round), so a burst of load from other processes lands on several
    cells instead of wiping out one; `best` is the fastest run, the closest to an unloaded machine.
    """
    cells = [(steps, batch) for batch in batches for steps in steps_list]
    runs: dict[tuple[int, int], list[dict]] = {c: [] for c in cells}
    with forward_timer(pipeline) as timer:
        for round_ in range(repeats):
            for steps, batch in cells:
                done = runs[steps, batch]
                if done and sum(r["total_s"] for r in done) + done[-1]["total_s"] > budget_s:
                    continue
                timer.reset()
                run = generate_and_encode(pipeline, settings(steps, batch, seed=round_))
                done.append({**run, "forward_s": timer.total, "load_average": load_average()})
    rows = []
    for (steps, batch), done in runs.items():
        median = statistics.median(r["total_s"] for r in done)
        rows.append({"steps": steps, "batch": batch, "repeats": len(done), "median_s": median,
                     "s_per_image": median / batch, "best_s_per_image": min(r["total_s"] for r in done) / batch,
                     "forward_share": statistics.median(r["forward_s"] / r["total_s"] for r in done),
                     "runs_s": [r["total_s"] for r in done], "load_average": [r["load_average"] for r in done]})
        print(f"  steps {steps:3d} batch {batch:3d}: {median / batch:7.3f} s/image median, "
              f"{rows[-1]['best_s_per_image']:7.3f} best ({len(done)} runs, forwards {rows[-1]['forward_share']:.1%}), "
              f"load {min(rows[-1]['load_average']):.1f}-{max(rows[-1]['load_average']):.1f}", flush=True)
    return rows


def overhead_direct(pipeline: Pipeline, steps: int, batch: int, repeats: int) -> dict:
    """Forward time vs the wall time of generate() + PNG encode: medians over `repeats` runs."""
    runs = []
    with forward_timer(pipeline) as timer:
        for r in range(repeats):
            timer.reset()
            run = generate_and_encode(pipeline, settings(steps, batch, seed=r))
            runs.append({**run, "forwards": dict(timer.seconds), "calls": dict(timer.calls)})
    return _overhead_summary(runs, "pipeline.generate + encode_png")


def _overhead_summary(runs: list[dict], label: str) -> dict:
    pick = sorted(runs, key=lambda r: r["total_s"])[len(runs) // 2]  # the median run, with its parts
    forward = sum(pick["forwards"].values())
    return {"label": label, "repeats": len(runs), "total_s": pick["total_s"], "forward_s": forward,
            "forwards_s": pick["forwards"], "forward_calls": pick["calls"], "png_s": pick.get("png_s"),
            "outside_s": pick["total_s"] - forward, "outside_share": 1 - forward / pick["total_s"],
            "runs_s": [r["total_s"] for r in runs], "load_average": load_average()}


def overhead_http(model_dir: Path, threads: int, steps: int, repeats: int) -> dict:
    """The same split for POST /api/v1/generate through the app's TestClient (validation, queue, JSON, base64)."""
    from fastapi.testclient import TestClient

    from app.config import load_settings
    from app.main import create_app

    app = create_app(load_settings(model_dir=model_dir, load_model=True, device="cpu", torch_threads=threads))
    body = {"prompt": PROMPT, "steps": steps, "guidance_scale": SCALE, "sampler": SAMPLER, "batch_size": 1}
    runs = []
    with TestClient(app) as client:
        pipeline = state_of(app).model.pipeline
        client.post("/api/v1/generate", json={**body, "seed": 99}).raise_for_status()  # warm-up
        with forward_timer(pipeline) as timer:
            for r in range(repeats):
                timer.reset()
                started = time.perf_counter()
                client.post("/api/v1/generate", json={**body, "seed": r}).raise_for_status()
                runs.append({"total_s": time.perf_counter() - started, "forwards": dict(timer.seconds),
                             "calls": dict(timer.calls)})
    return _overhead_summary(runs, "POST /api/v1/generate (TestClient)")


def count_flops(pipeline: Pipeline, steps: int = FLOP_STEPS) -> dict:
    """FLOPs of one guided image of `steps` steps (text encoder, 2-row DiT forwards, VAE decode), per network."""
    with FlopCounterMode(display=False) as counter:
        pipeline.generate(settings(steps, 1))
    per_module = {label: sum(counter.get_flop_counts().get(key, {}).values()) for key, label in FLOP_MODULES.items()}
    return {"steps": steps, "total": counter.get_total_flops(), "per_network": per_module,
            "dit_per_forward": per_module["dit"] / steps}


@torch.inference_mode()
def time_resolution(pipeline: Pipeline, sizes: list[int], repeats: int) -> list[dict]:
    """One guided DiT forward (2 rows) of the served config at each latent size, random weights, and its FLOPs."""
    rows = []
    context = torch.randn(2, 12, pipeline.dit.config.context_dim, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 12, dtype=torch.bool)
    t = torch.full((2,), 500)
    for size in sizes:
        torch.manual_seed(0)
        config = replace(pipeline.dit.config, latent_size=size)
        dit = DiT(config).eval()
        x = torch.randn(2, config.latent_channels, size, size)
        with FlopCounterMode(display=False) as counter:
            dit(x, t, context, mask)  # also the warm-up
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            dit(x, t, context, mask)
            runs.append(time.perf_counter() - started)
        median = statistics.median(runs)
        flops = counter.get_total_flops()
        rows.append({"latent": size, "tokens": (size // config.patch) ** 2, "weights": "random",
                     "median_ms": median * 1000, "best_ms": min(runs) * 1000, "flops": flops, "gflops_per_s": flops / median / 1e9,
                     "runs_ms": [r * 1000 for r in runs], "load_average": load_average()})
    return rows


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def report(res: dict) -> None:
    grid = res["grid"]
    steps_list, batches = res["args"]["steps"], res["args"]["batches"]
    cell = {(r["steps"], r["batch"]): r for r in grid}
    _table(f"Seconds per image, median (best) ({SAMPLER}, scale {SCALE}, {res['threads']} threads; rows: steps)",
           ["steps"] + [f"batch {b}" for b in batches],
           [[str(s)] + [f"{cell[s, b]['s_per_image']:.3f} ({cell[s, b]['best_s_per_image']:.3f})" for b in batches]
            for s in steps_list])
    _table("Steps scaling: time per image relative to the fewest steps (linear would be steps / steps_min)",
           ["steps"] + [f"batch {b}" for b in batches] + ["linear"],
           [[str(s)] + [f"{cell[s, b]['s_per_image'] / cell[steps_list[0], b]['s_per_image']:.2f}" for b in batches]
            + [f"{s / steps_list[0]:.2f}"] for s in steps_list])
    _table("Batch scaling: images per second relative to batch 1",
           ["steps"] + [f"batch {b}" for b in batches],
           [[str(s)] + [f"{cell[s, batches[0]]['s_per_image'] / cell[s, b]['s_per_image']:.2f}x" for b in batches]
            for s in steps_list])
    _table("Time inside the networks' forwards vs outside them (median run)",
           ["path", "total s", "dit s", "text s", "vae s", "png s", "outside s", "outside %", "load"],
           [[o["label"], f"{o['total_s']:.3f}", f"{o['forwards_s']['dit']:.3f}",
             f"{o['forwards_s']['text encoder']:.4f}", f"{o['forwards_s']['VAE decoder']:.3f}",
             "-" if o["png_s"] is None else f"{o['png_s']:.4f}", f"{o['outside_s']:.3f}",
             f"{o['outside_share']:.1%}", f"{o['load_average']:.1f}"] for o in res["overhead"]])
    f, mm = res["flops"], res["matmul"]
    print(f"\nFLOPs of one guided {f['steps']}-step image: {f['total'] / 1e9:.2f} GFLOP "
          + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in f["per_network"].items())
          + f"; {f['dit_per_forward'] / 1e6:.0f} MFLOP per 2-row DiT forward")
    print(f"float32 torch.mm {mm['n']}x{mm['n']}: {mm['gflops']:.1f} GFLOP/s (best {mm['best_gflops']:.1f}), "
          f"load {mm['load_average']:.1f}")
    _table("Achieved rate against the matmul floor",
           ["what", "GFLOP/s", "of matmul", "best GFLOP/s"],
           [[a["label"], f"{a['gflops_per_s']:.1f}", f"{a['of_matmul']:.1%}",
             f"{a['best_gflops_per_s']:.1f}" if "best_gflops_per_s" in a else "-"] for a in res["achieved"]])
    _table("Resolution: one guided DiT forward (2 rows), served config, RANDOM weights",
           ["latent", "tokens", "ms", "best ms", "x vs first", "GFLOP", "GFLOP/s", "load"],
           [[f"{r['latent']}x{r['latent']}", str(r["tokens"]), f"{r['median_ms']:.1f}", f"{r['best_ms']:.1f}",
             f"{r['median_ms'] / res['resolution'][0]['median_ms']:.1f}", f"{r['flops'] / 1e9:.2f}",
             f"{r['gflops_per_s']:.1f}", f"{r['load_average']:.1f}"] for r in res["resolution"]])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=25.0, help="seconds a grid cell may take before it stops repeating")
    p.add_argument("--latents", type=int, nargs="+", default=[8, 16, 32], help="latent sizes for the resolution scan")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args()
    res = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "threads": args.threads, "torch": torch.__version__, "load_average_start": load_average()}

    n = args.threads
    pipeline = in_thread(n, Pipeline.load, args.model_dir, "cpu")
    in_thread(n, pipeline.generate, settings(2, 1))  # warm-up
    res["matmul"] = {**in_thread(n, matmul_gflops), "load_average": load_average()}
    print(f"load average {res['load_average_start']:.1f} at start; grid:", flush=True)
    res["grid"] = in_thread(n, time_grid, pipeline, args.steps, args.batches, args.repeats, args.budget)
    res["overhead"] = [in_thread(n, overhead_direct, pipeline, FLOP_STEPS, 1, args.repeats),
                       overhead_http(args.model_dir, n, FLOP_STEPS, args.repeats)]  # the app runs its own threads
    res["flops"] = in_thread(n, count_flops, pipeline)

    per_image = res["flops"]["total"]
    cell = {(r["steps"], r["batch"]): r for r in res["grid"]}
    direct = res["overhead"][0]
    achieved = [{"label": "inside the forwards, batch 1, 20 steps", "gflops_per_s": per_image / direct["forward_s"] / 1e9}]
    for batch in args.batches:
        if (FLOP_STEPS, batch) in cell:  # FLOPs grow with the batch; the text encoder's share is negligible
            achieved.append({"label": f"end to end, batch {batch}, 20 steps",
                             "gflops_per_s": per_image / cell[FLOP_STEPS, batch]["s_per_image"] / 1e9,
                             "best_gflops_per_s": per_image / cell[FLOP_STEPS, batch]["best_s_per_image"] / 1e9})
    for a in achieved:
        a["of_matmul"] = a["gflops_per_s"] / res["matmul"]["gflops"]
    res["achieved"] = achieved
    res["resolution"] = in_thread(n, time_resolution, pipeline, args.latents, max(args.repeats, 5))
    res["load_average_end"] = load_average()
    report(res)
    print(f"\nload average {res['load_average_start']:.1f} at start, {res['load_average_end']:.1f} at end")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
