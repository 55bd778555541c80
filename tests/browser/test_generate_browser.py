"""/generate in headless Chromium against a live server with the tiny random model (noise images, real stream)."""

import base64
import time

import pytest

from app.service.imaging import read_parameters
from app.web.state import state_of
from tests.helpers.browser import wait_for

pytestmark = pytest.mark.browser


def png_of(data_url: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return base64.b64decode(data_url[len(prefix):])


def test_typing_generating_previews_download_and_scrubber(model_probe):
    page = model_probe.goto("/generate?steps=6&seed=42&guidance_scale=2")
    assert page.input_value("#steps") == "6" and page.input_value("#seed") == "42"
    assert page.text_content("output[for=steps]") == "6"
    page.fill("#prompt", "")
    page.type("#prompt", "a large re")
    page.click("#prompt-suggestions button:text-is('red')")
    assert page.input_value("#prompt") == "a large red "
    page.type("#prompt", "circle")
    wait_for(page, "document.getElementById('prompt-canonical').textContent.includes('a large red circle')")
    assert "prompt=a+large+red+circle" in page.url  # the state lives in the URL

    page.click("#generate")
    page.wait_for_selector("#results figure img")
    assert page.text_content("#ro-seed") == "42" and page.text_content("#ro-step") == "6 / 6"
    assert page.eval_on_selector("#progress", "p => [p.value, p.max]") == [6, 6]
    live_xt = page.get_attribute("#live-xt", "src")
    assert png_of(live_xt) and png_of(page.get_attribute("#live-x0", "src"))
    assert page.eval_on_selector("#live-xt", "e => getComputedStyle(e).imageRendering") == "pixelated"
    assert page.is_disabled("#cancel") and page.is_enabled("#generate")

    link = page.locator("#results a[download]")
    assert link.get_attribute("download") == "a-large-red-circle-seed-42.png"
    parameters = read_parameters(png_of(link.get_attribute("href")))
    assert parameters.startswith("a large red circle\n") and "Steps: 6" in parameters and "Seed: 42" in parameters
    assert "CFG scale: 2" in parameters
    curl = page.text_content("#curl-text")
    assert curl.startswith("curl -X POST '") and "/api/v1/generate'" in curl and '"seed":42' in curl

    assert page.is_enabled("#scrub") and page.get_attribute("#scrub", "max") == "5"
    page.fill("#scrub", "0")
    assert page.text_content("#scrub-out") == "1 / 6" and page.text_content("#sc-t") == "999"
    abar_first = float(page.text_content("#sc-abar"))
    signal, noise = float(page.text_content("#sc-signal")), float(page.text_content("#sc-noise"))
    assert 0 < abar_first < 0.01 and signal ** 2 == pytest.approx(abar_first, abs=2e-4)
    assert signal ** 2 + noise ** 2 == pytest.approx(1, abs=2e-4)
    first_xt = page.get_attribute("#sc-xt", "src")
    page.fill("#scrub", "5")
    assert float(page.text_content("#sc-abar")) > abar_first and page.get_attribute("#sc-xt", "src") != first_xt
    assert png_of(page.get_attribute("#sc-eps", "src"))
    model_probe.assert_clean()


def test_cancel_a_long_run_returns_to_idle_and_stops_the_server(model_probe, model_live_app):
    page = model_probe.goto("/generate?prompt=a+circle&steps=1000&seed=1")
    page.click("#generate")
    wait_for(page, "parseInt(document.getElementById('ro-step').textContent) >= 3")
    assert page.text_content("#ro-step").endswith(" / 1000")
    page.click("#cancel")
    assert page.is_enabled("#generate") and page.is_disabled("#cancel")
    assert page.text_content("#run-status").startswith("Cancelled after")
    assert page.is_enabled("#scrub")  # the steps that arrived can still be scrubbed
    service = state_of(model_live_app).sampler
    deadline = time.monotonic() + 5
    while service.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.running == 0
    assert page.locator("#results figure").count() == 0
    model_probe.assert_clean()


def test_an_unknown_word_shows_the_servers_message_inline(model_probe):
    page = model_probe.goto("/generate")
    page.fill("#prompt", "a red star")
    wait_for(page, "document.getElementById('prompt-error').textContent.includes('unknown word: star')")
    assert "The model knows" in page.text_content("#prompt-error")
    page.click("#generate")
    wait_for(page, "document.getElementById('generate-error').textContent !== ''")
    assert page.text_content("#run-status") == "Idle." and page.is_enabled("#generate")
    # the only console noise is the browser logging the 422 answers themselves
    assert all("422" in message for message in model_probe.console_errors), model_probe.console_errors
    assert model_probe.foreign_requests == []


def test_without_a_model_the_page_says_so_and_fits_a_phone(probe):
    page = probe.goto("/generate")
    assert page.is_visible("#model-status")
    assert "not loaded" in page.text_content("#model-status")
    assert page.is_disabled("#generate")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    probe.assert_clean()


def test_with_an_api_key_the_page_generates_once_the_reader_gives_the_key(browser, tiny_model_dir):
    """EventSource cannot send headers; the page streams over fetch, so a protected server still works."""
    from app.main import create_app
    from tests.helpers.browser import PageProbe
    from tests.helpers.models import model_settings
    from tests.helpers.server import serve

    server = serve(create_app(model_settings(tiny_model_dir, api_key="s3cret-key")))
    base = next(server)
    context = browser.new_context()
    try:
        probe = PageProbe(context.new_page(), base)
        page = probe.goto("/generate?prompt=a+red+circle&steps=3&seed=1")
        page.click("#generate")
        wait_for(page, "document.getElementById('prompt-error').textContent.includes('API key')")
        assert page.query_selector("#results figure img") is None
        page.click("#generate-form details summary")
        page.fill("#api-key", "s3cret-key")
        page.dispatch_event("#api-key", "change")
        page.click("#generate")
        page.wait_for_selector("#results figure img")
        assert "s3cret" not in page.url  # the key never enters the shareable URL
    finally:
        context.close()
        next(server, None)
