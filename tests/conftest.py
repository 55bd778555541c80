"""Shared fixtures: the app through TestClient, live servers, and headless Chromium. Helpers live in tests/helpers/."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.browser import CHROMIUM, CHROMIUM_FLAGS, PageProbe
from tests.helpers.models import model_settings, settings_for_tests, write_tiny_model
from tests.helpers.server import serve


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`): tiny tensors run
    faster on one, and two threads on a shared CPU stall on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random model (32 x 32 images, f = 8) in a temporary models/ directory."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def model_app(tiny_model_dir):
    """The app serving the tiny model, with small caps so the settings-dependent limits are testable."""
    return create_app(model_settings(tiny_model_dir, max_steps=50, max_batch=4))


@pytest.fixture(scope="session")
def model_client(model_app):
    with TestClient(model_app) as c:
        yield c


@pytest.fixture(scope="session")
def app():
    return create_app(settings_for_tests())


@pytest.fixture(scope="session")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def live_server():
    """The app served by uvicorn on a free loopback port, in a thread, for the browser tests."""
    yield from serve(create_app(settings_for_tests()))


@pytest.fixture(scope="session")
def model_live_app(tiny_model_dir):
    """The app with the tiny random model, for a live server (up to 1000 steps, so a run can be long)."""
    return create_app(model_settings(tiny_model_dir, max_steps=1000, max_batch=4))


@pytest.fixture(scope="session")
def model_live_server(model_live_app):
    """model_live_app served like live_server: the browser tests of /generate and the stream's disconnects."""
    yield from serve(model_live_app)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _page_probe(browser, base_url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield PageProbe(page, base_url)
    context.close()


@pytest.fixture
def probe(browser, live_server):
    yield from _page_probe(browser, live_server)


@pytest.fixture
def model_probe(browser, model_live_server):
    """A probe on the live server that has the tiny model loaded."""
    yield from _page_probe(browser, model_live_server)
