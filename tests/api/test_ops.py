"""Operations: configuration errors, the API key, CORS, request ids and logs, /metrics, draining and SIGTERM."""

import base64
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.cli import main as cli_main
from app.config import ConfigError, Settings, describe_errors, load_settings, unknown_variables
from app.main import create_app
from app.server import begin_drain
from app.web import middleware
from app.web.app import ROUTERS
from app.web.deps import network_routes
from app.web.logs import JsonFormatter, RequestIdFilter, log_config
from app.web.state import state_of
from tests.helpers.models import model_settings, settings_for_tests

KEY = "test-key-0123456789abcdef"
GENERATE = {"prompt": "a red circle", "steps": 2, "seed": 3}


@pytest.fixture
def clean_env(monkeypatch):
    """No DIFFUSION_LAB_* variable from the caller's environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith("DIFFUSION_LAB_"):
            monkeypatch.delenv(name)
    return monkeypatch


# ---- configuration ----

@pytest.mark.parametrize("name, value, says", [
    ("DIFFUSION_LAB_PORT", "abc", "valid integer"),
    ("DIFFUSION_LAB_PORT", "70000", "less than or equal to 65535"),
    ("DIFFUSION_LAB_LOG_FORMAT", "xml", "'text' or 'json'"),
    ("DIFFUSION_LAB_DEVICE", "tpu", "'auto', 'cpu' or 'cuda'"),
    ("DIFFUSION_LAB_SHUTDOWN_GRACE_S", "-1", "greater than or equal to 0"),
    ("DIFFUSION_LAB_CORS_ORIGINS", "https://lab.example.org/", "is not an origin"),
])
def test_a_bad_variable_stops_serve_naming_it_without_a_traceback(clean_env, capsys, name, value, says):
    clean_env.setenv(name, value)
    assert cli_main(["serve"]) == 2
    err = capsys.readouterr().err
    assert f"{name}={value!r}" in err and says in err
    assert "Traceback" not in err and len(err.splitlines()) == 2


def test_every_bad_variable_is_listed_and_the_api_key_is_never_echoed(clean_env, capsys):
    clean_env.setenv("DIFFUSION_LAB_API_KEY", KEY)
    clean_env.setenv("DIFFUSION_LAB_PORT", "http")
    clean_env.setenv("DIFFUSION_LAB_MAX_BATCH", "0")
    assert cli_main(["serve"]) != 0
    err = capsys.readouterr().err
    assert "DIFFUSION_LAB_PORT='http'" in err and "DIFFUSION_LAB_MAX_BATCH='0'" in err and KEY not in err
    clean_env.delenv("DIFFUSION_LAB_PORT")
    clean_env.delenv("DIFFUSION_LAB_MAX_BATCH")
    with pytest.raises(ConfigError, match=r"DIFFUSION_LAB_API_KEY=<hidden>"):
        load_settings(api_key=12345)
    assert KEY not in repr(load_settings(api_key=KEY))


def test_cors_origins_read_as_a_comma_list_or_json(clean_env):
    clean_env.setenv("DIFFUSION_LAB_CORS_ORIGINS", " https://a.example.org, http://localhost:3000 ,")
    assert load_settings().cors_origins == ["https://a.example.org", "http://localhost:3000"]
    clean_env.setenv("DIFFUSION_LAB_CORS_ORIGINS", '["https://b.example.org"]')
    assert load_settings().cors_origins == ["https://b.example.org"]
    clean_env.setenv("DIFFUSION_LAB_CORS_ORIGINS", "")
    assert load_settings().cors_origins == []


def test_defaults_a_blank_key_and_unknown_variables(clean_env):
    s = load_settings()
    assert (s.log_format, s.cors_origins, s.api_key, s.shutdown_grace_s) == ("text", [], None, 8.0)
    clean_env.setenv("DIFFUSION_LAB_API_KEY", "   ")
    assert load_settings().api_key is None
    assert unknown_variables({"DIFFUSION_LAB_PROT": "1", "DIFFUSION_LAB_PORT": "1", "HOME": "/"}) == \
        ["DIFFUSION_LAB_PROT"]


def test_describe_errors_names_environment_variables():
    with pytest.raises(Exception) as info:
        Settings(port="x", queue_size=0)
    lines = describe_errors(info.value).splitlines()
    assert [line.split("=")[0] for line in lines] == ["DIFFUSION_LAB_PORT", "DIFFUSION_LAB_QUEUE_SIZE"]


# ---- the API key ----

@pytest.fixture(scope="module")
def keyed_client(tiny_model_dir):
    with TestClient(create_app(model_settings(tiny_model_dir, api_key=KEY))) as c:
        yield c


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/v1/generate"),
    ("GET", "/api/v1/generate/stream?prompt=a+red+circle&steps=2"),
    ("GET", "/api/v1/generate/validate?prompt=a+red+circle"),
])
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"},
                                     {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer"}])
def test_generation_without_the_right_key_is_401(keyed_client, method, path, headers):
    r = keyed_client.request(method, path, json=GENERATE if method == "POST" else None, headers=headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-API-Key" in r.json()["detail"]


NETWORK_ROUTES = {("POST", "/api/v1/generate"), ("GET", "/api/v1/generate/stream"), ("POST", "/api/v1/generate/video"),
                  ("GET", "/api/v1/generate/video/stream"), ("POST", "/api/v1/generate/grid"),
                  ("POST", "/api/v1/generate/sweep"), ("POST", "/api/v1/generate/guidance"),
                  ("GET", "/api/v1/instruments/compression/measured"),
                  ("GET", "/api/v1/instruments/coherence/attention"), ("POST", "/api/v1/instruments/families/judge"),
                  ("POST", "/api/v1/instruments/families/likelihood"), ("GET", "/api/v1/instruments/families/codebook"),
                  ("GET", "/api/v1/instruments/families/cost"), ("POST", "/v1/images/generations"),
                  ("POST", "/sdapi/v1/txt2img"), ("GET", "/sdapi/v1/progress"), ("POST", "/sdapi/v1/interrupt")}


def test_the_routes_that_run_the_networks_are_read_from_the_route_table():
    """A new route that needs the model lands in this set (and behind the key) by its dependencies alone."""
    found = {(method, path) for path, route in network_routes(ROUTERS) for method in route.methods}
    assert found == NETWORK_ROUTES


@pytest.mark.parametrize(("method", "path"), sorted(NETWORK_ROUTES))
def test_every_route_that_runs_the_networks_needs_the_key(keyed_client, method, path):
    r = keyed_client.request(method, path, json=GENERATE if method == "POST" else None)
    body = r.json()
    said = body["error"]["message"] if path.startswith("/v1/") else body["detail"]  # OpenAI's error object there
    assert r.status_code == 401 and "X-API-Key" in said, (path, r.status_code)


def basic(credentials: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"},
                                     {"authorization": f"bearer  {KEY}"}, basic(f"anyone:{KEY}"), basic(f":{KEY}")])
def test_generation_with_the_key_is_200(keyed_client, headers):
    r = keyed_client.post("/api/v1/generate", json=GENERATE, headers=headers)
    assert r.status_code == 200 and len(r.json()["images"]) == 1


@pytest.mark.parametrize("headers", [basic(f"{KEY}:"), basic(KEY), basic(f"anyone:{KEY}x"),
                                     {"Authorization": "Basic !!"}, {"Authorization": "Basic " + "/w=="}])
def test_a_basic_password_that_is_not_the_key_is_401(keyed_client, headers):
    assert keyed_client.post("/api/v1/generate", json=GENERATE, headers=headers).status_code == 401


def test_the_key_is_compared_in_constant_time_on_fixed_length_digests(keyed_client, monkeypatch):
    calls = []
    real = middleware.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(middleware.hmac, "compare_digest", spy)
    keyed_client.post("/api/v1/generate", json=GENERATE, headers={"X-API-Key": "short"})
    keyed_client.post("/api/v1/generate", json=GENERATE, headers={"X-API-Key": KEY * 10})
    assert calls == [(32, 32), (32, 32)]


def test_the_key_protects_only_generation(keyed_client):
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/model", "/api/v1/instruments/compression", "/"):
        assert keyed_client.get(path).status_code == 200, path


def test_without_a_key_configured_generation_is_open(model_client):
    assert model_client.post("/api/v1/generate", json=GENERATE).status_code == 200


# ---- CORS ----

PREFLIGHT = {"Origin": "https://lab.example.org", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type,x-api-key"}


def test_no_cors_headers_unless_configured(client):
    r = client.get("/healthz", headers={"Origin": "https://lab.example.org"})
    assert not any(h.startswith("access-control-") for h in r.headers)
    assert client.options("/api/v1/generate", headers=PREFLIGHT).status_code == 405


def test_cors_allows_the_configured_origins_only(clean_env):
    app = create_app(settings_for_tests(cors_origins="https://lab.example.org", api_key=KEY))
    with TestClient(app) as c:
        r = c.get("/healthz", headers={"Origin": "https://lab.example.org"})
        assert r.headers["access-control-allow-origin"] == "https://lab.example.org"
        assert "X-Request-ID" in r.headers["access-control-expose-headers"]
        other = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pre = c.options("/api/v1/generate", headers=PREFLIGHT)  # a preflight carries no key and must not need one
        assert pre.status_code == 200 and "x-api-key" in pre.headers["access-control-allow-headers"].lower()
        denied = c.post("/api/v1/generate", json=GENERATE, headers={"Origin": "https://lab.example.org"})
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "https://lab.example.org"


# ---- request ids and logs ----

def test_every_response_carries_a_request_id(client):
    ids = set()
    for method, path in [("GET", "/healthz"), ("GET", "/no-such-page"), ("GET", "/api/v1/instruments/compression?f=3"),
                         ("POST", "/api/v1/generate"), ("GET", "/static/css/lab.css")]:
        rid = client.request(method, path).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid), (path, rid)
        ids.add(rid)
    assert len(ids) == 5


@pytest.mark.parametrize("given, echoed", [("abc-123", True), ("trace:7f.0_A", True), ("x" * 128, True),
                                           ("x" * 129, False), ("two words", False), ("", False), ("ü", False)])
def test_a_sane_incoming_request_id_is_echoed_else_replaced(client, given, echoed):
    rid = client.get("/healthz", headers={"X-Request-ID": given.encode()}).headers["X-Request-ID"]
    assert (rid == given) is echoed and (echoed or re.fullmatch(r"[0-9a-f]{32}", rid))


def test_an_unhandled_error_is_a_json_500_with_the_request_id_in_the_log(caplog):
    app = create_app(settings_for_tests())

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.ERROR, "diffusion_lab"):
        r = c.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500 and r.headers["X-Request-ID"] == "boom-1"
    assert r.json() == {"detail": "internal server error", "request_id": "boom-1"}
    assert any("kaboom" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)


@pytest.fixture
def json_log():
    """The app's and the access log's lines, formatted as in production (DIFFUSION_LAB_LOG_FORMAT=json)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("diffusion_lab")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_log_lines_carry_the_request_id_as_json(json_log):
    app = create_app(settings_for_tests())

    @app.get("/chatty")
    def chatty():  # a sync endpoint runs in a worker thread: the id must follow it there
        logging.getLogger("diffusion_lab.test").info("inside the endpoint")
        return {}

    with TestClient(app) as c:
        c.get("/chatty", headers={"X-Request-ID": "req-77"})
        c.get("/api/v1/instruments/compression", params={"height": 64}, headers={"X-Request-ID": "req-78"})
    records = json_log()
    inside = [r for r in records if r["message"] == "inside the endpoint"]
    assert inside and inside[0]["request_id"] == "req-77" and inside[0]["logger"] == "diffusion_lab.test"
    access = {r["request_id"]: r for r in records if r["logger"] == "diffusion_lab.access"}
    assert access["req-78"]["route"] == "/api/v1/instruments/compression" and access["req-78"]["status"] == 200
    assert access["req-78"]["method"] == "GET" and access["req-78"]["duration_ms"] >= 0
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", r["time"]) for r in records)


def test_probes_are_access_logged_at_debug_only(json_log):
    with TestClient(create_app(settings_for_tests())) as c:
        c.get("/healthz", headers={"X-Request-ID": "probe-1"})
    assert not [r for r in json_log() if r["request_id"] == "probe-1"]


def test_log_config_puts_the_filter_on_the_handler_for_every_format():
    for fmt in ("text", "json"):
        cfg = log_config("warning", fmt)
        handler = cfg["handlers"]["default"]
        assert handler["formatter"] == fmt and handler["filters"] == ["request_id"]
        assert {n: c["level"] for n, c in cfg["loggers"].items() if n != "uvicorn.error"} == \
            dict.fromkeys(["diffusion_lab", "uvicorn", "uvicorn.access"], "WARNING")
    assert "%(request_id)s" in log_config()["formatters"]["text"]["format"]


# ---- /metrics ----

def _metrics(client) -> dict:
    """{(name, labels as sorted tuple): value} of every sample."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def test_metrics_count_requests_by_route_template_not_raw_path(tiny_model_dir):
    with TestClient(create_app(model_settings(tiny_model_dir))) as c:
        for h in (32, 64, 128):
            c.get("/api/v1/instruments/compression", params={"height": h})
        for junk in ("/wp-admin", "/a/b/c", "/static/../etc"):
            c.get(junk)
        c.get("/static/css/lab.css")
        c.post("/api/v1/generate", json={**GENERATE, "batch_size": 3})
        c.post("/api/v1/generate", json={"prompt": "a plaid circle"})
        m = _metrics(c)
    req = "diffusion_lab_http_requests_total"
    assert m[(req, (("method", "GET"), ("route", "/api/v1/instruments/compression"), ("status", "200")))] == 3
    assert m[(req, (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))] == 3
    assert m[(req, (("method", "GET"), ("route", "/static/{path}"), ("status", "200")))] == 1
    assert m[(req, (("method", "POST"), ("route", "/api/v1/generate"), ("status", "422")))] == 1
    routes = {dict(labels).get("route") for (name, labels) in m if name == req}
    assert not routes & {"/wp-admin", "/a/b/c"}
    lat = ("diffusion_lab_http_request_duration_seconds_count",
           (("method", "GET"), ("route", "/api/v1/instruments/compression")))
    assert m[lat] == 3
    assert m[("diffusion_lab_images_generated_total", ())] == 3
    assert m[("diffusion_lab_sampling_seconds_count", (("outcome", "done"),))] == 1
    assert m[("diffusion_lab_sampling_seconds_sum", (("outcome", "done"),))] > 0
    assert m[("diffusion_lab_sampler_queue_depth", ())] == 0 and m[("diffusion_lab_sampler_running_jobs", ())] == 0
    assert m[("diffusion_lab_sampler_capacity", ())] == 1 + 16 and m[("diffusion_lab_ready", ())] == 1
    assert not any(name.endswith("_created") for name, _ in m)


def test_metrics_without_a_model_say_not_ready_with_an_empty_queue(client):
    m = _metrics(client)
    assert m[("diffusion_lab_sampler_queue_depth", ())] == 0 and m[("diffusion_lab_sampler_capacity", ())] == 0
    assert m[("diffusion_lab_ready", ())] == 1  # ready: this app runs without the model on purpose


# ---- /docs offline ----

def test_api_docs_load_only_local_assets(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


# ---- draining and SIGTERM ----

def test_while_draining_generation_is_503_with_retry_after_and_not_ready(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir))
    with TestClient(app) as c:
        assert c.post("/api/v1/generate", json=GENERATE).status_code == 200
        begin_drain(app, grace_s=30)
        for r in (c.post("/api/v1/generate", json=GENERATE),
                  c.get("/api/v1/generate/stream", params={"prompt": "a red circle", "steps": 2})):
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0 and "shutting down" in r.json()["detail"]
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"].startswith("shutting down")
        assert ready.json()["model_loaded"] is True
        assert c.get("/healthz").status_code == 200  # still alive: a liveness probe must not kill a drain


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def test_sigterm_cancels_a_long_job_and_exits_within_the_grace_time(tiny_model_dir, tmp_path):
    grace_s, port = 1.5, _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFUSION_LAB_")}
    env.update(DIFFUSION_LAB_MODEL_DIR=str(tiny_model_dir), DIFFUSION_LAB_DEVICE="cpu",
               DIFFUSION_LAB_TORCH_THREADS="1", DIFFUSION_LAB_MAX_STEPS="1000", DIFFUSION_LAB_MAX_BATCH="64",
               DIFFUSION_LAB_SHUTDOWN_GRACE_S=str(grace_s), DIFFUSION_LAB_COMPILE="off")
    log = tmp_path / "server.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen([str(Path(sys.executable).parent / "diffusion-lab"), "serve", "--port", str(port)],
                                  cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    outcome: dict = {}

    def long_generate():
        body = json.dumps({"prompt": "a red circle", "steps": 1000, "batch_size": 64, "seed": 1}).encode()
        req = urllib.request.Request(base + "/api/v1/generate", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                outcome["status"] = r.status
        except urllib.error.HTTPError as err:
            outcome["status"], outcome["body"] = err.code, err.read()
        except OSError as err:  # the connection was closed: also an answer, not a hang
            outcome["closed"] = repr(err)
        outcome["at"] = time.monotonic()

    try:
        deadline = time.monotonic() + 60
        while _status(base + "/readyz") != 200:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        client = threading.Thread(target=long_generate, daemon=True)
        client.start()
        while "diffusion_lab_sampler_running_jobs 1.0" not in urllib.request.urlopen(base + "/metrics").read().decode():
            assert time.monotonic() < deadline and client.is_alive(), outcome
            time.sleep(0.05)
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=grace_s + 5)
        exited = time.monotonic() - sent
        client.join(timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    text = log.read_text()
    assert exited < grace_s + 3, text
    assert exited >= grace_s - 0.2, "the running job should have had its grace time"
    assert not client.is_alive() and outcome["at"] - sent < grace_s + 3
    assert outcome.get("status") == 503 and b"shutting down" in outcome["body"] or "closed" in outcome, outcome
    assert "shutting down: no new jobs" in text and "Traceback" not in text


def test_a_job_refused_at_shutdown_is_a_503_not_a_500(model_client, model_app, monkeypatch):
    """Between the dependency's 'closing' check and submit() the service may start draining: still a 503."""
    from app.diffusion.samplers import SamplingCancelled

    def draining(job):
        raise SamplingCancelled("the server is shutting down and takes no new generation jobs")

    monkeypatch.setattr(state_of(model_app).sampler, "_admit", draining)
    for response in (model_client.get("/api/v1/generate/stream", params={"prompt": "a red circle", "steps": 2}),
                     model_client.post("/api/v1/generate", json={"prompt": "a red circle", "steps": 2})):
        assert response.status_code == 503 and "shutting down" in response.json()["detail"]
        assert "retry-after" in response.headers
