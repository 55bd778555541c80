"""A small scaling record built from exact synthetic timings: the tests' stand-in for bench/results/scaling.json.

The timings follow known laws (a straight line in the steps and in the batch, power laws in the token count), so the
fits bench/scaling.py reports can be checked exactly; the record goes through the benchmark's own section builders.
"""

import json
from pathlib import Path

from app.web.benchmarks import SCALING_FILE, SCALING_FORMAT
from bench.scaling import batch_section, resolution_section, steps_section

STEPS = [5, 10, 20, 50]
BATCHES = [1, 2, 4, 8, 16]
RESOLUTIONS = [32, 64, 128, 256]
F = 8
STEP_FIXED_S, STEP_S = 0.03, 0.009  # seconds per image = 0.03 + 0.009 steps
BATCH_FIXED_S, IMAGE_S = 0.12, 0.08  # seconds per batch = 0.12 + 0.08 batch
DIT_C, DIT_K = 0.5, 1.25  # DiT ms = 0.5 N^1.25
VAE_C, VAE_K = 0.2, 1.0  # VAE ms = 0.2 N


def _grid_row(steps: int, batch: int, per_batch_s: float) -> dict:
    """A row as bench/sampling.time_grid returns it."""
    return {"steps": steps, "batch": batch, "repeats": 3, "median_s": per_batch_s, "s_per_image": per_batch_s / batch,
            "best_s_per_image": 0.9 * per_batch_s / batch, "forward_share": 0.9,
            "runs_s": [per_batch_s, 0.9 * per_batch_s, 1.1 * per_batch_s], "load_average": [0.5, 0.6, 0.7]}


def scaling_record() -> dict:
    """A complete record of format 1, as bench/scaling.py writes it (before validation)."""
    steps = [_grid_row(s, 1, STEP_FIXED_S + STEP_S * s) for s in STEPS]
    batch = [_grid_row(20, b, BATCH_FIXED_S + IMAGE_S * b) for b in BATCHES]
    latents = [px // F for px in RESOLUTIONS]
    dit_ms = [DIT_C * (s * s) ** DIT_K for s in latents]
    dit = [{"latent": s, "tokens": s * s, "median_ms": ms, "best_ms": 0.95 * ms, "flops": 9e6 * s * s,
            "runs_ms": [ms] * 3, "load_average": 0.4} for s, ms in zip(latents, dit_ms)]
    vae = [{"latent": s, "median_ms": VAE_C * s * s, "best_ms": 0.95 * VAE_C * s * s, "runs_ms": [VAE_C * s * s] * 3,
            "load_average": 0.5} for s in latents]
    return {
        "format": SCALING_FORMAT,
        "command": "python bench/scaling.py --json fixture.json",
        "recorded_at": "2026-01-02T03:04:05+00:00",
        "finished_at": "2026-01-02T03:05:10+00:00",
        "duration_s": 65.0,
        "quick": False,
        "machine": {"cpu": "Fixture CPU @ 1.00GHz", "cores": 2, "cores_available": 2, "torch": "2.13.0+cpu",
                    "torch_capability": "AVX512", "threads": 2, "python": "3.11.9", "platform": "Linux-fixture"},
        "load_average": {"start": 0.42, "end": 0.77},
        "model": {"model_id": "fixture0model", "resolution": 64, "downsample_factor": F,
                  "dit": {"latent_size": 8, "latent_channels": 4, "patch": 1, "width": 160, "depth": 6, "heads": 5,
                          "mlp_ratio": 4.0, "context_dim": 128, "pooled_text": True},
                  "parameters": {"vae": 1, "text_encoder": 2, "denoiser": 3, "total": 6}},
        "sampling": {"prompt": "a large red circle at the top left", "sampler": "dpmpp_2m", "guidance_scale": 5.0,
                     "repeats": 3, "budget_s": 25.0},
        "steps": steps_section(1, steps),
        "batch": batch_section(20, batch),
        "resolution": resolution_section(RESOLUTIONS, 64, dit, vae),
    }


def write_scaling(directory: Path, record: dict | None = None) -> dict:
    """Write record (default: scaling_record()) as directory/scaling.json, as JSON would carry it; return it."""
    record = json.loads(json.dumps(scaling_record() if record is None else record))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SCALING_FILE).write_text(json.dumps(record, indent=2))
    return record
