"""The physical floor: this machine's float32 matrix-multiply rate, one large torch.mm timed, in GFLOP/s.

An n x n by n x n product costs 2 n^3 floating-point operations (a multiply and an add per term); the median
of a few timed products, after one warm-up, gives the rate the networks' matrix products can at best reach.
Usage: python bench/matmul_rate.py [--n 2048] [--repeats 5] [--threads 2] [--json out.json]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch


def matmul_gflops(n: int = 2048, repeats: int = 5) -> dict:
    """Median GFLOP/s of torch.mm on two random float32 n x n matrices, with the runs behind it."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)  # (n, n)
    b = torch.randn(n, n, generator=gen)  # (n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up: the first call pays for the thread pool and caches
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b, out=out)
        seconds.append(time.perf_counter() - started)
    flops = 2 * n ** 3
    median = statistics.median(seconds)
    return {"n": n, "flops": flops, "median_s": median, "gflops": flops / median / 1e9,
            "best_gflops": flops / min(seconds) / 1e9, "runs_s": seconds, "torch_threads": torch.get_num_threads()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    r = matmul_gflops(args.n, args.repeats)
    print(f"torch.mm float32 {args.n}x{args.n}, {args.threads} threads: {r['gflops']:.1f} GFLOP/s median "
          f"(best {r['best_gflops']:.1f}), {r['median_s'] * 1000:.1f} ms per product; load average {load:.1f}")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
