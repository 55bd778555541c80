"""Security headers on every response, static files confined to their folder, a constant-time API key check."""

import hashlib
import http.client
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import Headers

from app.main import create_app
from app.web import middleware
from app.web.security import APP_CSP, DOCS_CSP
from tests.helpers.models import settings_for_tests

FIXED = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def assert_secured(response, csp: str = APP_CSP):
    for name, value in FIXED.items():
        assert response.headers[name] == value, name
    assert response.headers["Content-Security-Policy"] == csp


def directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in csp.split("; ")}


def test_the_app_csp_allows_only_this_origin_for_scripts_and_forbids_framing():
    d = directives(APP_CSP)
    assert d["script-src"] == ["'self'"]
    assert d["default-src"] == ["'self'"]
    assert d["frame-ancestors"] == ["'none'"]
    assert d["object-src"] == ["'none'"]
    assert d["img-src"] == ["'self'", "data:"]  # the generate page shows PNGs as data: URLs
    assert "'unsafe-eval'" not in APP_CSP
    assert directives(DOCS_CSP)["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("path", ["/", "/generate", "/instruments/denoising", "/healthz", "/api/v1/model",
                                  "/static/js/lab.js", "/static/css/lab.css", "/vendor/plotly.min.js",
                                  "/openapi.json", "/nowhere", "/static/missing.js"])
def test_every_get_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404, 503)
    assert_secured(response)


def test_docs_pages_get_their_own_policy(client):
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200
        assert_secured(response, DOCS_CSP)


def test_errors_carry_the_headers(client):
    bad = client.post("/api/v1/generate", content=b"{not json", headers={"Content-Type": "application/json"})
    wrong_method = client.delete("/api/v1/model")
    assert (bad.status_code, wrong_method.status_code) == (422, 405)
    assert_secured(bad)
    assert_secured(wrong_method)


def test_an_unhandled_error_and_a_401_carry_the_headers():
    app = create_app(settings_for_tests(api_key="k3y"))

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        crashed = c.get("/boom")
        refused = c.post("/api/v1/generate", json={"prompt": "a red circle"})
    assert crashed.status_code == 500
    assert_secured(crashed)
    assert refused.status_code == 401
    assert_secured(refused)


@pytest.mark.parametrize("raw_path", [
    "/static/../app/config.py",
    "/static/%2e%2e/app/config.py",
    "/static/%2E%2E/%2E%2E/app/config.py",
    "/static/..%2fapp%2fconfig.py",
    "/static/%2e%2e%2fapp%2fconfig.py",
    "/static/..%5capp%5cconfig.py",
    "/static/js/../../app/config.py",
    "/static//work/main/app/config.py",
    "/static/%2fetc%2fpasswd",
    "/static/../../../../etc/passwd",
])
def test_static_files_cannot_escape_their_folder(live_server, raw_path):
    url = urlparse(live_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", raw_path)  # sent verbatim: no client-side normalisation of the dots
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 404
    assert b"get_settings" not in body and b"root:" not in body
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_the_api_key_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = middleware.hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(middleware.hmac, "compare_digest", counting)
    guard = middleware.ApiKeyMiddleware(app=None, api_key="the-right-key")
    assert guard.authorised(Headers({"x-api-key": "the-right-key"}))
    assert not guard.authorised(Headers({"x-api-key": "the-right-kez"}))
    assert not guard.authorised(Headers({"authorization": "Bearer a-much-longer-wrong-key-than-the-right-one"}))
    assert not guard.authorised(Headers({}))
    assert len(calls) == 4
    # both sides are sha256 digests: equal length whatever was sent, so the length of the key does not leak either
    assert all(len(a) == len(b) == 32 for a, b in calls)
    assert calls[0][0] == hashlib.sha256(b"the-right-key").digest()


@pytest.mark.browser
@pytest.mark.parametrize("path, selector", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_the_docs_render_under_their_policy(probe, path, selector):
    page = probe.goto(path)
    page.wait_for_selector(selector)
    assert "Diffusion Lab" in page.inner_text(selector)
    # ReDoc's sidebar links a logo on cdn.redoc.ly: the policy blocking it is what keeps the page offline
    blocked_logo = [e for e in probe.console_errors if "https://cdn.redoc.ly/" in e and "violates" in e]
    assert len(blocked_logo) <= (path == "/redoc")
    assert [e for e in probe.console_errors if e not in blocked_logo] == []
    assert all(any(url in e for e in blocked_logo) for url in probe.foreign_requests)  # attempted, refused


@pytest.mark.browser
def test_the_policy_blocks_an_injected_inline_script(probe):
    page = probe.goto("/")
    page.evaluate("""() => { const s = document.createElement('script');
                             s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }""")
    assert page.evaluate("window.__injected") is None
    assert any("Content Security Policy" in e for e in probe.console_errors), probe.console_errors
