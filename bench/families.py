"""Chapter §3.4's cost benchmark: one image's sampling time against the token count N, for the three families.

The same measurement as the /instruments/families page's cost panel (app/lab/family_cost.py), with more rounds and
a longer budget: at N = 16, 64, 256, 1024 the autoregressive sampler with its KV cache (N sequential forwards), the
masked sampler (8 rounds) and the diffusion sampler (20 steps of DPM-Solver++), each drawing one guided image with
random weights of the served sizes (the token models' from --model-dir when their weights are there, else the
trainers' default size; the DiT's from the image model), interleaved round by round, medians and quartiles, and the
log-log slope of each family's time against N. It records the machine (CPU, cores, torch, threads), the load
average before and after, the date and the command, and writes the record to --json.
Usage: python bench/families.py [--quick] [--threads 2] [--repeats 7] [--budget 300] [--model-dir models]
       [--json bench/results/families.json]
"""

import argparse
import dataclasses
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.lab import family_cost
from app.pipelines.image import Pipeline
from app.pipelines.tokens import FAMILY_FILES, TokenFamily
from app.service.models import fingerprint
from app.service.token_models import missing_family_files
from bench.sampling import _table, in_thread, load_average
from bench.scaling import machine

DEFAULT_JSON = ROOT / "bench" / "results" / "families.json"
FORMAT = 1
QUICK_COUNTS = (16, 64, 256)


def token_configs(model_dir: Path) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The token models' configs in model_dir by family, why the others are missing, and the files' ids."""
    served, reasons, ids = {}, {}, {}
    for family, file in FAMILY_FILES.items():
        if missing := missing_family_files(model_dir, family):
            reasons[family] = missing
            continue
        served[family] = TokenFamily.load(model_dir, family, "cpu").config
        ids[family] = fingerprint(model_dir, (file,))
    return served, reasons, ids


def measure(args: argparse.Namespace) -> dict:
    started, load_start = time.perf_counter(), load_average()
    recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
    pipeline = in_thread(args.threads, Pipeline.load, args.model_dir, "cpu")
    served, reasons, ids = in_thread(args.threads, token_configs, args.model_dir)
    counts = QUICK_COUNTS if args.quick else family_cost.TOKEN_COUNTS
    print(f"load average {load_start:.2f}; timing N = {list(counts)}, {args.repeats} rounds at most, "
          f"{args.budget:.0f} s budget", flush=True)
    result = in_thread(args.threads, family_cost.measure, pipeline, served, reasons, args.repeats, args.budget,
                       lambda: 0, counts)
    command = "python bench/families.py" + (" " + shlex.join(args.argv) if args.argv else "")
    return {"format": FORMAT, "command": command, "recorded_at": recorded_at,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "duration_s": time.perf_counter() - started,
            "quick": args.quick, "machine": machine(args.threads),
            "load_average": {"start": load_start, "end": load_average()},
            "models": {"image": fingerprint(args.model_dir), **ids}, "result": dataclasses.asdict(result)}


def report(record: dict) -> None:
    result = record["result"]
    curves = result["curves"]
    rows = [[str(point["tokens"])] + [f"{c['points'][i]['forwards']} fwd {c['points'][i]['median_ms']:.1f} ms"
                                      f"{' est' if c['points'][i]['estimated'] else ''}" for c in curves]
            for i, point in enumerate(curves[0]["points"])]
    _table(f"ms per image, median of {result['conditions']['rounds']} interleaved rounds (sequential forwards)",
           ["N", *(c["family"] for c in curves)], rows)
    for c in curves:
        print(f"  {c['family']}: time ~ N^{c['exponent']:.2f}; {c['architecture']['note']}")
    print(f"autoregressive: {result['autoregressive']['text']}")
    if result["conditions"]["noisy"]:
        print("noisy: " + "; ".join(result["conditions"]["noisy_reasons"]))
    print(f"load average {record['load_average']['start']:.2f} at start, {record['load_average']['end']:.2f} at end; "
          f"{record['duration_s']:.1f} s")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"a smoke run: N = {list(QUICK_COUNTS)}, three rounds")
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds at most (at least three are run)")
    p.add_argument("--budget", type=float, default=300.0, help="seconds the rounds may take")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the record")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.budget = 3, min(args.budget, 5.0)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    record = measure(args)
    report(record)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
