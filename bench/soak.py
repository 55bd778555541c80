"""Soak test: minutes of mixed traffic against a real server process; counts status codes, watches its memory.

Starts `python -m app.cli serve` on a free loopback port with the committed weights and a small queue
(DIFFUSION_LAB_QUEUE_SIZE, default 4), waits for /readyz, then runs for `--seconds`:
  - getters: instrument GETs, pages, /healthz and /api/v1/model, back to back;
  - a generator: POST /api/v1/generate with a few steps;
  - a streamer: GET /api/v1/generate/stream, closed half-way through the steps (a client walking away);
  - bursts: every few seconds, more concurrent POSTs than the queue holds (the overflow must be 429, not 500).
Prints the status codes per kind of traffic, failures, whether the server is still up, and its RSS at the start
and the end (VmRSS of /proc/<pid>/status). Exit status 1 on any 5xx other than 503, a transport error, or a
server that died. Loopback only. RSS is also sampled every --rss-every seconds (rss_series: seconds, requests
so far, MiB), with its growth per quarter of the run.
Usage: python bench/soak.py [--seconds 180] [--queue 4] [--pause 0] [--json out.json]
"""

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
GETS = ("/api/v1/instruments/denoising", "/api/v1/instruments/compression", "/api/v1/instruments/guidance",
        "/api/v1/instruments/coherence", "/", "/generate", "/healthz", "/api/v1/model", "/static/js/lab.js")
PROMPTS = ("a red circle", "a large blue square at the top left", "a small green triangle", "a yellow circle")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident set size of process pid, in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Tally:
    """Status codes (or exception names) per kind of traffic, shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.codes: dict[str, Counter] = {}
        self.failures: list[str] = []

    def add(self, kind: str, outcome) -> None:
        with self.lock:
            self.codes.setdefault(kind, Counter())[str(outcome)] += 1
            bad = isinstance(outcome, str) or (outcome >= 500 and outcome != 503)
            if bad and len(self.failures) < 20:
                self.failures.append(f"{kind}: {outcome}")

    def total(self) -> int:
        with self.lock:
            return sum(n for kind, c in self.codes.items() if kind != "stream_cut_after_steps" for n in c.values())


def start_server(port: int, queue: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "DIFFUSION_LAB_QUEUE_SIZE": str(queue), "DIFFUSION_LAB_TORCH_THREADS": str(threads),
           "DIFFUSION_LAB_DEVICE": "cpu", "DIFFUSION_LAB_LOG_LEVEL": "warning"}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--host", HOST, "--port", str(port)],
                            cwd=ROOT, env=env)


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server was not ready in time")


def body(i: int, steps: int) -> dict:
    return {"prompt": PROMPTS[i % len(PROMPTS)], "steps": steps, "seed": i, "sampler": "ddim"}


def getter(base: str, tally: Tally, stop: float, offset: int, pause: float) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        i = offset
        while time.monotonic() < stop:
            try:
                tally.add("get", c.get(GETS[i % len(GETS)]).status_code)
            except httpx.HTTPError as err:
                tally.add("get", type(err).__name__)
            i += 1
            time.sleep(pause)


def generator(base: str, tally: Tally, stop: float, steps: int, pause: float) -> None:
    with httpx.Client(base_url=base, timeout=60) as c:
        i = 0
        while time.monotonic() < stop:
            try:
                r = c.post("/api/v1/generate", json=body(i, steps))
                tally.add("generate", r.status_code)
                if r.status_code == 429:
                    time.sleep(0.2)
            except httpx.HTTPError as err:
                tally.add("generate", type(err).__name__)
            i += 1
            time.sleep(pause)


def streamer(base: str, tally: Tally, stop: float, steps: int, pause: float) -> None:
    """Streams of `steps` steps, the connection closed once half of the step events arrived."""
    i = 0
    while time.monotonic() < stop:
        params = {**body(i, steps), "previews": "true"}
        try:
            with httpx.stream("GET", base + "/api/v1/generate/stream", params=params, timeout=60) as r:
                tally.add("stream", r.status_code)
                seen = 0
                if r.status_code == 200:
                    for line in r.iter_lines():
                        seen += line == "event: step"
                        if seen >= steps // 2:
                            break  # leaving the block closes the connection mid-stream
                    tally.add("stream_cut_after_steps", seen)
                else:
                    time.sleep(0.2)
        except httpx.HTTPError as err:
            tally.add("stream", type(err).__name__)
        i += 1
        time.sleep(pause)


def burster(base: str, tally: Tally, stop: float, size: int, steps: int, every_s: float) -> None:
    """`size` simultaneous POSTs every `every_s` seconds: more than the queue holds."""
    with httpx.Client(base_url=base, timeout=120, limits=httpx.Limits(max_connections=size)) as c, \
            ThreadPoolExecutor(size) as pool:
        n = 0
        while time.monotonic() < stop:
            def one(i):
                try:
                    return c.post("/api/v1/generate", json=body(i, steps)).status_code
                except httpx.HTTPError as err:
                    return type(err).__name__
            for code in pool.map(one, range(n, n + size)):
                tally.add("burst", code)
            n += size
            time.sleep(every_s)


def soak(args) -> dict:
    port = free_port()
    base = f"http://{HOST}:{port}"
    proc = start_server(port, args.queue, args.threads)
    try:
        wait_ready(base, proc)
        rss_start = rss_mib(proc.pid)
        tally, started = Tally(), time.monotonic()
        stop = started + args.seconds
        workers = [threading.Thread(target=getter, args=(base, tally, stop, k, args.pause))
                   for k in range(args.getters)]
        workers += [threading.Thread(target=generator, args=(base, tally, stop, args.steps, args.pause)),
                    threading.Thread(target=streamer, args=(base, tally, stop, args.stream_steps, args.pause)),
                    threading.Thread(target=burster, args=(base, tally, stop, args.burst, args.steps, 5.0))]
        for w in workers:
            w.start()
        rss_peak, series, next_sample = rss_start, [], started
        while any(w.is_alive() for w in workers):
            time.sleep(1)
            if proc.poll() is None:
                rss = rss_mib(proc.pid)
                rss_peak = max(rss_peak, rss)
                if time.monotonic() >= next_sample:
                    series.append([round(time.monotonic() - started), tally.total(), round(rss, 1)])
                    next_sample += args.rss_every
        for w in workers:
            w.join()
        elapsed = time.monotonic() - started
        alive = proc.poll() is None
        health = httpx.get(base + "/healthz", timeout=5).status_code if alive else None
        ready = httpx.get(base + "/readyz", timeout=5).status_code if alive else None
        rss_end = rss_mib(proc.pid) if alive else None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    codes = {kind: dict(sorted(c.items())) for kind, c in sorted(tally.codes.items())}
    requests = tally.total()
    return {"seconds": round(elapsed, 1), "queue_size": args.queue, "requests": requests,
            "requests_per_s": round(requests / elapsed, 1), "codes": codes, "failures": tally.failures,
            "server_alive": alive, "healthz": health, "readyz": ready,
            "rss_mib": {"start": round(rss_start, 1), "end": rss_end and round(rss_end, 1),
                        "peak": round(rss_peak, 1), "growth_by_quarter": quarter_growth(series)},
            "rss_series": series}


def quarter_growth(series: list) -> list[float] | None:
    """RSS growth (MiB) within each quarter of the run: a leak keeps growing, a warm-up levels off."""
    if len(series) < 5:
        return None
    edges = [series[round(q * (len(series) - 1) / 4)][2] for q in range(5)]
    return [round(b - a, 1) for a, b in itertools.pairwise(edges)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--queue", type=int, default=4, help="DIFFUSION_LAB_QUEUE_SIZE of the server")
    p.add_argument("--steps", type=int, default=4, help="steps of each POST /generate")
    p.add_argument("--stream-steps", type=int, default=12, help="steps of each stream (cut after half)")
    p.add_argument("--burst", type=int, default=10, help="simultaneous POSTs in a burst (more than --queue)")
    p.add_argument("--getters", type=int, default=2, help="threads sending GETs")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server")
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds each getter, generator and streamer waits between requests (a gentler, longer soak)")
    p.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS samples in rss_series")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    if args.pause < 0 or args.rss_every <= 0:
        p.error("--pause must be >= 0 and --rss-every > 0")
    result = soak(args)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    ok = result["server_alive"] and result["healthz"] == 200 and not result["failures"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
