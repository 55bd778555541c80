"""Shared fixtures: the app through TestClient, a live server, and headless Chromium."""

import json
import os
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient

from app.config import Settings
from app.diffusion.schedule import NoiseSchedule
from app.main import create_app
from app.nets import (
    DIT_SIZES,
    TEXT_SIZES,
    VAE,
    VAE_SIZES,
    DiT,
    TextEncoder,
    save_module,
)
from app.nets.video_dit import VideoDiT
from app.scenes import VOCAB

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
    return Settings(**{"load_model": False, **overrides})


def write_tiny_model(directory: Path, resolution: int = 32, seed: int = 0) -> Path:
    """A randomly initialised VAE, caption encoder and DiT, saved the way training saves them; returns directory.

    The DiT's zero-initialised gates and output are opened (adaLN-Zero leaves a fresh DiT predicting 0),
    so its output depends on the noise, the timestep and the caption.
    """
    torch.manual_seed(seed)
    vae = VAE(VAE_SIZES["tiny"]())
    text = TextEncoder(TEXT_SIZES["tiny"](vocab_size=len(VOCAB)))
    dit = DiT(DIT_SIZES["tiny"](latent_size=resolution // vae.config.downsample_factor,
                                latent_channels=vae.config.latent_channels, context_dim=text.config.width))
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "adaLN" in name or name.startswith("final."):
                p.normal_(std=0.05)
    directory.mkdir(parents=True, exist_ok=True)
    save_module(directory / "vae.safetensors", vae, vae.config)
    save_module(directory / "text_encoder.safetensors", text, text.config)
    save_module(directory / "denoiser.safetensors", dit, dit.config,
                {"schedule": NoiseSchedule.make().config(), "prediction": "v"})
    write_tiny_video_model(directory, text, dit)
    return directory


def write_tiny_video_model(directory: Path, text: TextEncoder, dit: DiT, frames: int = 8) -> Path:
    """The video model's two files beside the image model's: its DiT wraps `dit`, its temporal gates opened."""
    video = VideoDiT.from_image_dit(dit, frames=frames)
    with torch.no_grad():
        for name, p in video.named_parameters():
            if name.startswith("temporal.") and "adaLN" in name:
                p.normal_(std=0.05)
    save_module(directory / "video_text_encoder.safetensors", text, text.config)
    save_module(directory / "video_denoiser.safetensors", video, video.config,
                {"schedule": NoiseSchedule.make().config(), "prediction": "v"})
    return directory


def model_settings(model_dir: Path, **overrides) -> Settings:
    """Settings that load the model in model_dir on the CPU, one torch thread (tiny tensors, shared cores)."""
    return test_settings(**{"model_dir": model_dir, "load_model": True, "device": "cpu", "torch_threads": 1,
                            **overrides})


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
    yield from _serve(create_app(test_settings()))


@pytest.fixture(scope="session")
def model_live_app(tiny_model_dir):
    """The app with the tiny random model, for a live server (up to 1000 steps, so a run can be long)."""
    return create_app(model_settings(tiny_model_dir, max_steps=1000, max_batch=4))


@pytest.fixture(scope="session")
def model_live_server(model_live_app):
    """model_live_app served like live_server: the browser tests of /generate and the stream's disconnects."""
    yield from _serve(model_live_app)


def _serve(app):
    """Run app with uvicorn on a free loopback port in a thread; yields its URL, stops it afterwards."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
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


def wait_for(page, expression: str, arg=None, timeout: int = 15_000) -> None:
    """Poll `expression` (or a function of `arg`) with page.evaluate until it is truthy, or time out."""
    # Not page.wait_for_function: Playwright evals its predicate inside the page, which the app's CSP refuses.
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            if page.evaluate(expression, arg):
                return
            error = None
        except PlaywrightError as err:  # the element the expression reads may not exist yet
            error = err
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} ms for {expression!r}") from error
        page.wait_for_timeout(50)


@pytest.fixture
def probe(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield PageProbe(page, live_server)
    context.close()


@pytest.fixture
def model_probe(browser, model_live_server):
    """A probe on the live server that has the tiny model loaded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield PageProbe(page, model_live_server)
    context.close()


def wait_text(page, selector: str, text: str) -> None:
    """Wait until the element's trimmed text is exactly `text` (a readout the server recomputed)."""
    wait_for(page, "([sel, want]) => document.querySelector(sel).textContent.trim() === want", arg=[selector, text])


def answer_quiz(quiz, answer: str) -> str:
    """Type `answer` into a check-yourself form (a Playwright locator), submit it, return the verdict's text."""
    quiz.locator("input").fill(answer)
    quiz.locator("button").click()
    return quiz.locator(".verdict").text_content()


def get_json(base_url: str, path: str, **params) -> dict:
    """GET base_url + path with a query from params, straight from the server (what the page should show)."""
    with urllib.request.urlopen(f"{base_url}{path}?{urllib.parse.urlencode(params)}") as response:
        return json.load(response)
