"""Training throughput on one process against torchrun's several: the same denoiser run, the same global batch.

Runs `python3 -m app.training denoiser` (the served "small" size on the committed VAE, --steps steps of --batch
scenes) three ways, each in a fresh process: one process on 1 torch thread, one process on `--processes` threads,
and torchrun with `--processes` ranks of 1 thread each (gloo). Reports the training seconds per step that each run
records in its weights' metadata (`wall_time_s`, the loop alone: no start-up, no validation) and the images per
second, with the ratio to the one-thread run, and the 1-minute load average around each run.
Usage: python bench/training_processes.py [--steps 20] [--batch 32] [--processes 2] [--json out.json]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from subprocess import run

ROOT = Path(__file__).resolve().parent.parent


def train(out: Path, steps: int, batch: int, threads: int, processes: int) -> dict:
    args = ["denoiser", "--device", "cpu", "--size", "small", "--batch", str(batch), "--steps", str(steps),
            "--warmup", "2", "--val-size", "16", "--val-every", "0", "--ckpt-every", "0", "--log-every", "5",
            "--no-progress", "--vae", str(ROOT / "models" / "vae.safetensors"), "--out", str(out / "d.safetensors"),
            "--ckpt-dir", str(out / "ckpt")]
    launcher = [sys.executable, "-m", "app.training"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
         "-m", "app.training"]
    load_before = os.getloadavg()[0]
    run([*launcher, *args], cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS=str(threads)), check=True,
        capture_output=True)
    sys.path.insert(0, str(ROOT))
    from app.nets import read_metadata

    extra = read_metadata(out / "d.safetensors")["extra"]
    per_step = extra["wall_time_s"] / extra["steps_done"]
    return {"processes": processes, "threads_each": threads, "steps": extra["steps_done"], "batch": batch,
            "s_per_step": per_step, "images_per_s": batch / per_step, "final_loss": extra["loss_curve"][-1][1],
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    ways = [(1, 1), (args.processes, 1), (1, args.processes)]  # (threads, processes)
    rows = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        for i, (threads, processes) in enumerate(ways):
            rows.append(train(Path(tmp) / str(i), args.steps, args.batch, threads, processes))
    base = rows[0]["images_per_s"]
    print(f"{'processes':>9} {'threads':>7} {'s/step':>8} {'images/s':>9} {'vs 1x1':>7} {'loss':>8} {'load':>9}")
    for r in rows:
        r["ratio"] = r["images_per_s"] / base
        print(f"{r['processes']:9d} {r['threads_each']:7d} {r['s_per_step']:8.3f} {r['images_per_s']:9.1f} "
              f"{r['ratio']:7.2f} {r['final_loss']:8.4f} {r['load_before']:4.1f}-{r['load_after']:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"started_utc": started, "command": " ".join(sys.argv), "runs": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
