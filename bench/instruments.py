"""Load benchmark: the instrument endpoints against a bare JSON endpoint of the same app, in the same run.

Starts the app with uvicorn on a free loopback port, drives it with wrk (Debian's `wrk`), and prints
requests per second and p50/p99 latency for each endpoint, with the ratio to the bare endpoint.
Two rounds: `same` asks each endpoint the same URL over and over (what the instruments' answer cache makes cheap:
app/web/response_cache.py), `new` asks each request at a slider position drawn at random (a wrk Lua script), so
nearly every request misses the cache and runs the instrument: the cost of a reader moving a slider somewhere
no one has been.
Usage: python bench/instruments.py [--seconds 10] [--connections 32] [--threads 2] [--rounds same new] [--json out.json]
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ENDPOINTS = {
    "bare JSON (/healthz)": "/healthz",
    "compression": "/api/v1/instruments/compression?height=512&width=512&f=8&channels=4&patch=2",
    "guidance": "/api/v1/instruments/guidance?scale=7.5&seed=0",
    "coherence": "/api/v1/instruments/coherence?coherence=0.5&frames=16&seed=0",
    "denoising": "/api/v1/instruments/denoising",
}

# Per instrument, its URL with one slider drawn uniformly at random per request (lo, hi, digits): 3 decimals make
# about a million positions per slider, so a run of seconds meets almost none twice.
SLIDERS = {
    "compression": ("/api/v1/instruments/compression?height={}&width=512&f=8&channels=4&patch=2", 1, 64, "64*"),
    "guidance": ("/api/v1/instruments/guidance?scale={}&seed=0", 0, 20, "%.3f"),
    "coherence": ("/api/v1/instruments/coherence?coherence={}&frames=16&seed=0", 0, 1, "%.4f"),
    "denoising": ("/api/v1/instruments/denoising?target_x={}", -3, 3, "%.4f"),
}
LUA = """math.randomseed({seed})
request = function()
  local v = {draw}
  return wrk.format("GET", string.format("{path}", v))
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNITS[unit]


def slider_script(name: str, seed: int = 0) -> str:
    """A wrk Lua script that asks `name` at a random position of its slider per request."""
    template, lo, hi, fmt = SLIDERS[name]
    if fmt == "64*":  # a multiple of 64 px, so f = 8 divides it
        draw, path = f"64 * math.random({lo}, {hi})", template.replace("{}", "%d")
    else:
        draw, path = f"{lo} + ({hi} - {lo}) * math.random()", template.replace("{}", fmt)
    return LUA.format(seed=seed, draw=draw, path=path)


def run_wrk(url: str, seconds: int, connections: int, threads: int, script: str | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        extra = []
        if script is not None:
            lua.write(script)
            lua.flush()
            extra = ["-s", lua.name]
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
            capture_output=True, text=True, check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", nargs="+", choices=("same", "new"), default=["same", "new"],
                        help="same: one URL per endpoint; new: a random slider position per request")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")

    port = _free_port()
    env = dict(os.environ, DIFFUSION_LAB_LOAD_MODEL="false", DIFFUSION_LAB_LOG_LEVEL="warning")
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        results = {"load_average_before": os.getloadavg()[0]}
        for round_ in args.rounds:
            rows = {}
            for name, path in ENDPOINTS.items():
                urllib.request.urlopen(base + path, timeout=10)  # warm-up, and fail loudly on a bad path
                script = slider_script(name) if round_ == "new" and name in SLIDERS else None
                rows[name] = run_wrk(base + path, args.seconds, args.connections, args.threads, script)
            baseline = rows["bare JSON (/healthz)"]["rps"]
            print(f"round '{round_}'\n{'endpoint':24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}")
            for name, r in rows.items():
                r["ratio_to_bare"] = r["rps"] / baseline
                print(f"{name:24} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['ratio_to_bare']:8.2f}")
            results[round_] = rows
        results["load_average_after"] = os.getloadavg()[0]
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
