"""Three `diffusion-lab serve` replicas behind Debian's nginx with deploy/nginx.conf, without Docker.

Requests spread over the replicas, a stream passes through unbuffered, the same seed gives the same picture from
every replica, and stopping one replica under load loses no request that it had not admitted (nginx gives them to
the others). Each replica serves the committed weights on one torch thread. `make test` installs Debian's nginx.
"""

import base64
import io
import json
import os
import signal
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers.models import COMMITTED_MODELS
from tests.helpers.replicas import (
    NGINX_CONF,
    adapt_nginx_conf,
    nginx_binary,
    start_nginx,
    start_replica,
    stop,
    upstreams_of,
    wait_for,
)
from tests.helpers.server import free_port

pytestmark = [pytest.mark.weights, pytest.mark.slow]
REPLICAS = 3
GRACE_S = 8
CLIENTS, REQUESTS_EACH = 12, 8  # with 6 clients, POSTs refused by the draining replica hit the race too rarely
PROMPT = "a large red circle at the top left"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if nginx_binary() is None:
        pytest.fail("nginx not found; `make test` installs Debian's nginx")
    workdir = tmp_path_factory.mktemp("replicas")
    env = dict(os.environ, OMP_NUM_THREADS="1", DIFFUSION_LAB_TORCH_THREADS="1", DIFFUSION_LAB_DEVICE="cpu",
               DIFFUSION_LAB_MODEL_DIR=str(COMMITTED_MODELS), DIFFUSION_LAB_LOG_LEVEL="warning",
               DIFFUSION_LAB_SHUTDOWN_GRACE_S=str(GRACE_S), DIFFUSION_LAB_COMPILE="off", FORWARDED_ALLOW_IPS="*")
    replicas = [start_replica(env, workdir / f"replica-{i}.log") for i in range(REPLICAS)]
    port = free_port()
    nginx = None
    try:
        for replica in replicas:
            wait_for(replica.url + "/readyz", timeout=120)
        nginx = start_nginx(workdir, adapt_nginx_conf(NGINX_CONF.read_text(), port, [r.port for r in replicas],
                                                      workdir))
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield {"url": f"http://127.0.0.1:{port}", "replicas": replicas, "access_log": workdir / "access.log"}
    finally:
        if nginx is not None:
            stop(nginx, timeout=10)
        for replica in replicas:
            stop(replica.process)


def test_requests_spread_over_every_replica(stack):
    with httpx.Client(base_url=stack["url"], timeout=30) as http:
        for i in range(30):
            r = http.get("/api/v1/instruments/compression", headers={"X-Request-ID": f"spread-{i}"})
            assert r.status_code == 200
    tried = upstreams_of(stack["access_log"], [f"spread-{i}" for i in range(30)])
    counts = Counter(replicas[-1] for replicas in tried.values())
    assert set(counts) == {f"127.0.0.1:{r.port}" for r in stack["replicas"]}
    assert min(counts.values()) >= 5, counts


def stream_timing(url: str) -> dict:
    """One 20-step stream without previews: when each step event arrived, and when the replica made it."""
    arrivals, made, finished = [], [], None
    params = {"prompt": PROMPT, "seed": 3, "steps": 20, "previews": "false"}
    with httpx.Client(base_url=url, timeout=60) as http, \
            http.stream("GET", "/api/v1/generate/stream", params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "step":
                arrivals.append(time.perf_counter())
                made.append(json.loads(line.removeprefix("data: "))["elapsed_s"])
            elif line.startswith("data: ") and event == "result":
                finished = time.perf_counter()
    assert len(arrivals) == 20 and finished is not None
    made_span = made[-1] - made[0]
    lags = [(a - arrivals[0]) - (m - made[0]) for a, m in zip(arrivals, made)]
    return {"made_span": made_span, "arrived_span": arrivals[-1] - arrivals[0],
            "median_lag": float(np.median(np.abs(lags))), "first_before_result": finished - arrivals[0]}


def arrived_as_made(t: dict) -> bool:
    """Events spread over the run as they were made (a buffering proxy delivers them together at the end)."""
    return (t["arrived_span"] > 0.5 * t["made_span"] and t["median_lag"] < 0.25 * t["made_span"]
            and t["first_before_result"] > 0.5 * t["made_span"])


def test_a_stream_passes_through_unbuffered(stack):
    """Each step event reaches the client when the replica sends it, not when the response ends. (The whole
    stream, about 6 KB, fits in nginx's proxy buffers: a buffered proxy would deliver every event at the end.)"""
    timing = stream_timing(stack["url"])
    assert timing["made_span"] > 0.1  # long enough for buffering to show
    assert arrived_as_made(timing), timing


def test_the_stream_check_sees_a_proxy_that_holds_events_back(stack, tmp_path):
    """The same check through a copy of the configuration whose stream location buffers (ignoring the app's
    X-Accel-Buffering: no) and compresses: gzip then sends a block only when its buffer fills, as nothing flushes
    it (measured here: buffering alone, or gzip alone, still passed every event on at once). It must notice."""
    conf = adapt_nginx_conf(NGINX_CONF.read_text(), free_port(), [r.port for r in stack["replicas"]], tmp_path)
    buffered = conf.replace("proxy_buffering off;", "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering; "
                                                    "gzip on; gzip_types text/event-stream;")
    assert buffered != conf
    nginx = start_nginx(tmp_path, buffered)
    try:
        port = int(buffered.split("listen 127.0.0.1:", 1)[1].split(";", 1)[0])
        wait_for(f"http://127.0.0.1:{port}/healthz")
        timing = stream_timing(f"http://127.0.0.1:{port}")
    finally:
        stop(nginx, timeout=10)
    assert timing["made_span"] > 0.1
    assert not arrived_as_made(timing), timing


def _pixels(b64_png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64_png))).convert("RGB"))


def test_the_same_seed_gives_the_same_picture_from_every_replica(stack):
    body = {"prompt": PROMPT, "seed": 11, "steps": 10, "guidance_scale": 5}
    answers = []
    for replica in stack["replicas"]:  # each one asked directly, so each one surely draws it
        r = httpx.post(replica.url + "/api/v1/generate", json=body, timeout=60)
        assert r.status_code == 200
        answers.append(r.json())
    r = httpx.post(stack["url"] + "/api/v1/generate", json=body, timeout=60)
    assert r.status_code == 200
    answers.append(r.json())
    pictures = [_pixels(a["images"][0]["png_base64"]) for a in answers]
    assert len({a["model_id"] for a in answers}) == 1
    assert all(np.array_equal(pictures[0], p) for p in pictures[1:])
    assert pictures[0].std() > 10  # a picture, not a blank


def test_stopping_a_replica_under_load_loses_no_request_it_had_not_admitted(stack):
    """Twelve clients post generate requests through nginx; one replica gets SIGTERM after a few answers. It stops
    admitting (503) and closes its socket; nginx must hand every request it did not admit to another replica, so
    every client gets its picture. (Requests the replica had admitted finish within its grace, a few steps here.)"""
    victim = stack["replicas"][0]
    results, lock = [], threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=stack["url"], timeout=60) as http:
            for i in range(REQUESTS_EACH):
                rid, started = f"load-{k}-{i}", time.monotonic()
                r = http.post("/api/v1/generate", json={"prompt": PROMPT, "seed": 100 * k + i, "steps": 8},
                              headers={"X-Request-ID": rid})
                with lock:
                    results.append({"id": rid, "started": started, "status": r.status_code, "body": r.text[:200]})

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    while len(results) < 12:
        time.sleep(0.01)
    signalled = time.monotonic()
    exit_status = stop(victim.process, timeout=GRACE_S + 20)
    for t in threads:
        t.join(timeout=120)
    assert len(results) == CLIENTS * REQUESTS_EACH
    assert [(r["id"], r["status"], r["body"]) for r in results if r["status"] != 200] == []
    assert exit_status in (0, -signal.SIGTERM)  # drained and exited in time (uvicorn re-raises the signal it caught)
    tried = upstreams_of(stack["access_log"], [r["id"] for r in results])
    victim_address = f"127.0.0.1:{victim.port}"
    before = [r["id"] for r in results if r["started"] < signalled]
    late = [r["id"] for r in results if r["started"] > signalled + 0.5]
    assert any(tried[rid][-1] == victim_address for rid in before)  # it took its share until the signal
    assert len(late) >= 12  # the load went on well after it
    assert [rid for rid in late if tried[rid][-1] == victim_address] == []
