"""Concurrency benchmark: many clients at once through the sampling service, batching on vs off, same run.

Loads the committed weights, starts one SamplingService that merges compatible jobs into shared batches and one
that runs them one at a time (batch_rows = 1), and lets `--clients` clients each send `--requests` one-image
requests back to back (each client its own prompt and guidance scale, all 20 dpmpp_2m steps). Prints images per
second and request latency for both, and the ratio. The weights load in a passing thread and sampling runs on the
service's thread, as in the server.
Usage: python bench/sampling_concurrency.py [--clients 16] [--requests 2] [--steps 20] [--threads 2] [--json out.json]
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.measure.image import full_prompts  # noqa: E402
from app.pipelines.image import GenerationSettings, Pipeline  # noqa: E402
from app.service.sampling import SamplingService, in_passing_thread  # noqa: E402

SCALES = (3.0, 5.0, 7.5)


async def _client(service: SamplingService, index: int, requests: int, steps: int, prompt: str) -> list[float]:
    """One client's requests in a row; the latency of each, in seconds."""
    latencies = []
    for r in range(requests):
        settings = GenerationSettings(prompt=prompt, seed=1000 * index + r, steps=steps,
                                      guidance_scale=SCALES[index % len(SCALES)])
        started = time.perf_counter()
        await service.run(settings, client=f"client-{index}")
        latencies.append(time.perf_counter() - started)
    return latencies


async def _load(service: SamplingService, clients: int, requests: int, steps: int) -> dict:
    prompts = [p.canonical for p in full_prompts(clients)]
    started = time.perf_counter()
    per_client = await asyncio.gather(*(_client(service, i, requests, steps, prompts[i]) for i in range(clients)))
    wall = time.perf_counter() - started
    latencies = sorted(x for c in per_client for x in c)
    stats = service.stats()
    return {"images": len(latencies), "wall_s": wall, "images_per_s": len(latencies) / wall,
            "latency_p50_s": statistics.median(latencies),
            "latency_p95_s": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
            "pipeline_calls": stats["batches"], "jobs_per_call": stats["jobs_per_batch"]}


def _load_pipeline(model_dir: str) -> Pipeline:
    pipeline = Pipeline.load(model_dir, "cpu")
    pipeline.generate(GenerationSettings(prompt="a red circle", steps=2))  # warm-up
    return pipeline


def run(mode: str, pipeline: Pipeline, args) -> dict:
    rows = 32 if mode == "batched" else 1
    service = SamplingService(pipeline, workers=1, queue_size=args.clients, timeout_s=600, batch_rows=rows)
    try:
        return asyncio.run(_load(service, args.clients, args.requests, args.steps))
    finally:
        service.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=2, help="requests per client, one after the other")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--model-dir", default=str(ROOT / "models"))
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = asyncio.run(in_passing_thread(_load_pipeline, args.model_dir))  # as the server does: no torch pool left here
    load = os.getloadavg()[0]
    results = {mode: run(mode, pipeline, args) for mode in ("one at a time", "batched")}
    ratio = results["batched"]["images_per_s"] / results["one at a time"]["images_per_s"]
    print(f"{args.clients} clients x {args.requests} requests, 1 image of {args.steps} dpmpp_2m steps each, "
          f"{args.threads} torch threads, 1 worker; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    for mode, r in results.items():
        print(f"{mode:>14}: {r['images_per_s']:6.2f} images/s  wall {r['wall_s']:6.2f} s  "
              f"latency p50 {r['latency_p50_s']:5.2f} s  p95 {r['latency_p95_s']:5.2f} s  "
              f"{r['pipeline_calls']} pipeline calls ({r['jobs_per_call']:.1f} jobs each)")
    print(f"batched / one at a time: {ratio:.2f}x images/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
