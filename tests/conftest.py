"""Shared fixtures: the app through TestClient, a live server, and headless Chromium."""

import os
import shutil
import socket
import threading
import time
from urllib.parse import urlparse

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

CHROMIUM = os.environ.get("DIFFUSION_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def test_settings(**overrides) -> Settings:
    """Settings for tests: no trained weights unless a test asks for them."""
    return Settings(load_model=False, **overrides)


@pytest.fixture(scope="session")
def app():
    return create_app(test_settings())


@pytest.fixture(scope="session")
def client(app):
    with TestClient(app) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server():
    """The app served by uvicorn on a free loopback port, in a thread, for the browser tests."""
    port = _free_port()
    config = uvicorn.Config(create_app(test_settings()), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class PageProbe:
    """A browser page that records console errors, page errors and requests to any other host."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        host = urlparse(base_url).netloc
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on(
            "request",
            lambda r: urlparse(r.url).scheme in ("http", "https")
            and urlparse(r.url).netloc != host
            and self.foreign_requests.append(r.url),
        )

    def goto(self, path: str):
        self.page.goto(self.base_url + path, wait_until="networkidle")
        return self.page

    def assert_clean(self):
        assert self.console_errors == [], self.console_errors
        assert self.foreign_requests == [], self.foreign_requests


@pytest.fixture
def probe(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield PageProbe(page, live_server)
    context.close()
