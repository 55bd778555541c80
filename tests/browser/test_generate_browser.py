"""/generate in headless Chromium against a live server with the tiny random model (noise images, real stream)."""

import base64
import time

import pytest

from app.service.imaging import read_parameters
from app.web.state import state_of
from tests.helpers.browser import get_json, wait_for

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
    assert page.text_content("#ro-seed") == "42" and page.text_content("#ro-step") == "step 6 of 6"
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
    assert page.text_content("#scrub-out") == "step 1 of 6 · t = 999" and page.text_content("#sc-t") == "999"
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
    wait_for(page, "parseInt(document.getElementById('ro-step').textContent.slice(5)) >= 3")
    assert page.text_content("#ro-step").endswith(" of 1000")
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
    assert page.get_attribute("#prompt", "aria-invalid") == "true"
    page.click("#generate")
    wait_for(page, "document.getElementById('generate-error').textContent !== ''")
    assert page.text_content("#generate-error") == "Not started: fix this field first: Prompt."
    assert page.evaluate("document.activeElement.id") == "prompt"
    assert page.text_content("#run-status") == "Idle." and page.is_enabled("#generate")
    model_probe.assert_clean()  # the check answers 200 even when it refuses: no failed request in the console


def typed_checks(page) -> list[int]:
    """The statuses of the page's checks of its request, as they answer."""
    statuses = []
    page.on("response", lambda r: "/api/v1/generate/validate" in r.url and statuses.append(r.status))
    return statuses


def test_typing_an_invalid_then_a_valid_prompt_keeps_the_console_clean(model_probe):
    page = model_probe.goto("/generate")
    statuses = typed_checks(page)
    page.fill("#prompt", "")
    page.type("#prompt", "a red star", delay=60)
    wait_for(page, "document.getElementById('prompt-error').textContent.includes('unknown word: star')")
    for _ in "a red star":
        page.keyboard.press("Backspace")
    page.type("#prompt", "a blue square", delay=60)
    wait_for(page, "document.getElementById('prompt-canonical').textContent.includes('a blue square')")
    assert page.text_content("#prompt-error") == "" and page.get_attribute("#prompt", "aria-invalid") is None
    assert statuses and set(statuses) == {200}, statuses
    model_probe.assert_clean()


def test_each_refusal_is_shown_by_its_own_field_and_the_first_is_focused(model_probe):
    page = model_probe.goto("/generate?steps=2")
    page.fill("#negative_prompt", "a star")
    page.fill("#seed", "-1")
    page.fill("#batch_size", "0")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the form is off-screen when the button is
    page.click("#generate")
    wait_for(page, "document.getElementById('generate-error').textContent !== ''")
    assert page.text_content("#generate-error") == \
        "Not started: fix these fields first: Negative prompt, Seed of the starting noise, Batch size."
    shown = {field: page.text_content(f"#{field}-error") for field in ("negative_prompt", "seed", "batch_size")}
    assert shown["negative_prompt"].startswith("unknown word: star")
    assert shown["seed"] == "Input should be greater than or equal to 0"
    assert shown["batch_size"] == "Input should be greater than or equal to 1"
    for field in shown:
        assert page.get_attribute(f"#{field}", "aria-invalid") == "true"
        assert f"{field}-error" in page.get_attribute(f"#{field}", "aria-describedby").split()
    assert page.text_content("#prompt-error") == "" and page.get_attribute("#prompt", "aria-invalid") is None
    assert page.evaluate("document.activeElement.id") == "negative_prompt"
    assert page.evaluate("(() => { const r = document.activeElement.getBoundingClientRect();"
                         " return r.top >= 0 && r.bottom <= window.innerHeight; })()")
    assert page.query_selector("#results figure") is None

    page.fill("#negative_prompt", "a blue square")
    page.fill("#seed", "5")
    page.fill("#batch_size", "2")
    wait_for(page, "document.querySelectorAll('#generate-form [aria-invalid]').length === 0")
    assert all(page.text_content(f"#{field}-error") == "" for field in shown)
    page.click("#generate")
    page.wait_for_selector("#results figure img")
    assert page.locator("#results figure").count() == 2 and page.text_content("#generate-error") == ""
    model_probe.assert_clean()


@pytest.mark.parametrize("prompt", ["", "   "])
def test_an_empty_or_blank_prompt_is_an_unconditional_sample_as_the_api_says(model_probe, prompt):
    page = model_probe.goto("/generate?steps=2&seed=4")
    assert "unconditional sample" in page.text_content("#prompt-hint")
    page.fill("#prompt", prompt)
    wait_for(page, "document.getElementById('prompt-canonical').textContent.startsWith('Empty prompt')")
    assert page.text_content("#prompt-error") == ""
    page.click("#generate")
    page.wait_for_selector("#results figure img")
    assert page.locator("#results figure").count() == 1 and page.text_content("#generate-error") == ""
    assert get_json(model_probe.base_url, "/api/v1/generate/validate", prompt=prompt)["prompt_canonical"] == ""
    model_probe.assert_clean()


def test_a_link_value_the_form_cannot_take_falls_back_and_says_why(model_probe):
    page = model_probe.goto("/generate?sampler=bogus&steps=5000&guidance_scale=abc&previews=maybe&seed=7")
    assert page.input_value("#sampler") == "dpmpp_2m" and page.input_value("#steps") == "20"
    assert page.input_value("#guidance_scale") == "5" and page.is_checked("#previews")
    assert page.input_value("#seed") == "7"  # what it can take, it takes
    note = page.text_content("#generate-form-link-note")
    assert page.is_visible("#generate-form-link-note")
    assert "sampler=bogus is not one of ddim, ddpm, dpmpp_2m, so it is dpmpp_2m" in note
    assert "steps=5000 is above the greatest value, 1000, so it is 20" in note
    assert "guidance_scale=abc is not a number, so it is 5" in note
    assert "previews=maybe is neither true nor false, so it is true" in note
    assert "sampler=dpmpp_2m" in page.url and "bogus" not in page.url  # the address bar now reproduces the view
    page.goto(model_probe.base_url + "/generate?sampler=ddim")
    assert page.input_value("#sampler") == "ddim" and page.query_selector("#generate-form-link-note") is None
    model_probe.assert_clean()


def test_the_prompt_field_shows_a_whole_prompt_and_enter_still_generates(model_probe):
    page = model_probe.goto("/generate?steps=2")
    for prompt in ("a large red circle at the top left", "a large purple triangle at the bottom right, please"):
        page.fill("#prompt", prompt)
        assert page.evaluate("(() => { const e = document.getElementById('prompt');"
                             " return e.scrollHeight <= e.clientHeight && e.scrollWidth <= e.clientWidth; })()"), prompt
    width = page.evaluate("[document.getElementById('prompt').offsetWidth,"
                          " document.getElementById('prompt').closest('.control').clientWidth]")
    assert width[0] == width[1]
    page.fill("#prompt", "a green square")
    page.press("#prompt", "Enter")
    page.wait_for_selector("#results figure img")
    assert page.input_value("#prompt") == "a green square"  # Enter generated, it did not add a line
    model_probe.assert_clean()


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
        wait_for(page, "document.getElementById('generate-error').textContent.includes('API key')")
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


def test_the_masked_family_fills_its_grid_in_rounds_and_an_image_comes_back(model_probe):
    page = model_probe.goto("/generate?seed=3&prompt=a+red+circle")
    assert page.is_visible("#steps") and page.is_hidden("#temperature") and page.is_hidden("#live-grid")
    page.select_option("#family", "autoregressive")
    assert page.is_visible("#temperature") and page.is_visible("#top_k") and page.is_hidden("#rounds")
    assert page.is_hidden("#steps") and page.is_hidden("#sampler") and page.is_hidden("#guidance_method")
    page.select_option("#family", "masked")
    assert page.is_visible("#rounds") and page.is_hidden("#steps") and page.is_hidden("#live-x0")
    assert page.input_value("#guidance_scale") == "3"  # the token families' own default, the slider untouched
    page.fill("#rounds", "4")
    wait_for(page, "location.search.includes('family=masked') && location.search.includes('rounds=4')")

    page.click("#generate")
    page.wait_for_selector("#results figure img")
    assert page.text_content("#ro-step") == "step 4 of 4" and page.text_content("#ro-forwards") == "4"
    assert page.text_content("#ro-tokens") == "64 of 64"  # the tiny model's 8 x 8 grid, all drawn
    assert png_of(page.get_attribute("#live-grid", "src"))
    assert "4 network forwards one after another" in page.text_content("#latent-note")
    parameters = read_parameters(png_of(page.get_attribute("#results a[download]", "href")))
    assert parameters.startswith("a red circle\nFamily: masked, Rounds: 4, Temperature: 1, CFG scale: 3, Seed: 3")
    assert "Steps" not in parameters
    curl = page.text_content("#curl-text")
    assert '"family":"masked"' in curl and '"rounds":4' in curl and '"steps"' not in curl

    page.fill("#scrub", "0")
    assert page.text_content("#sc-forwards") == "1" and int(page.text_content("#sc-tokens").split()[0]) < 64
    assert int(page.text_content("#sc-new")) > 0 and png_of(page.get_attribute("#sc-grid", "src"))

    page.fill("#grid-scales", "1, 3")  # the guidance grid draws with the form's family and its knobs
    page.click("#grid-draw")
    wait_for(page, "document.getElementById('grid-status').textContent.startsWith('Drew')")
    assert "(4 network forwards for all of them)" in page.text_content("#grid-status")
    assert page.locator("#grid-table tbody img").count() == 2 * 3
    model_probe.assert_clean()
