"""The autoregressive & masked page (§3.4) in headless Chromium: without models it says why; on the tiny models the
likelihood, codebook and cost panels show the server's own figures, the three columns draw, Re-measure works, and
the check-yourself questions check."""

import json
import urllib.request

import pytest

from app.service.imaging import encode_png, to_base64
from app.world.prompts import matching_scene, parse_prompt
from app.world.scenes import to_uint8
from tests.helpers.browser import answer_quiz, get_json, press_remeasure, wait_for

pytestmark = pytest.mark.browser

PATH = "/instruments/families"
API = "/api/v1/instruments/families"
LOADED = "!document.getElementById('cost-remeasure').disabled"  # the last panel the page fills on its own
DEFAULT_PROMPT = "a large red circle at the top left"


def post_json(base_url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(base_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def fmt(x: float, digits: int) -> str:
    """Lab.fmt for numbers between 1e-3 and 1e6: grouped thousands, at most `digits` decimals."""
    return f"{round(x, digits):,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{round(x):,}"


def test_without_models_it_says_why_and_the_questions_check(probe):
    page = probe.goto(PATH)
    wait_for(page, "!document.getElementById('missing-autoregressive').hidden")
    for family in ("autoregressive", "masked", "diffusion"):
        assert "runs without the model" in page.text_content(f"#missing-{family}")
    assert page.text_content("#likelihood-status").startswith("The autoregressive model is not loaded")
    assert page.is_disabled("#likelihood-score") and page.is_disabled("#families-draw")
    assert page.text_content("#cost-status").startswith("Not timed: this server runs without the model")
    assert page.text_content("#codebook-status").startswith("Not measured")
    assert page.get_attribute(f'nav a[href="{PATH}"]', "aria-current") == "page"
    assert page.locator(".equation math").count() == 1
    rounds, bits = page.locator("form.quiz").nth(0), page.locator("form.quiz").nth(1)
    assert answer_quiz(rounds, "32").startswith("Right.")
    assert answer_quiz(rounds, "256").startswith("Not quite")
    assert answer_quiz(bits, "2,304").startswith("Right.")
    assert answer_quiz(bits, "9").startswith("Not quite")
    probe.assert_clean()


def test_the_panels_show_the_servers_own_figures(model_probe, model_live_server):
    page = model_probe.goto(PATH)
    wait_for(page, LOADED, timeout=180_000)
    scored = post_json(model_live_server, f"{API}/likelihood", {"prompt": DEFAULT_PROMPT, "source": "scene",
                                                                "scene_seed": 0})
    assert page.text_content("#lk-total") == fmt(scored["total_bits"], 1)
    assert page.text_content("#lk-uniform") == fmt(scored["uniform_bits"], 1)
    assert page.text_content("#lk-uncond") == fmt(scored["unconditional_bits"], 1)
    z = page.evaluate("document.getElementById('likelihood-chart').data[0].z")
    assert z == [[pytest.approx(-v, abs=1e-9) for v in row] for row in scored["log2_probs"]]
    assert scored["scene_caption"] in page.text_content("#lk-picture-caption")

    codebook = get_json(model_live_server, f"{API}/codebook")
    assert codebook["cached"] and page.text_content("#cb-k") == fmt(codebook["codebook_size"], 0)
    assert page.text_content("#cb-used") == fmt(codebook["codes_used"], 0)
    assert page.text_content("#cb-vq-psnr") == fmt(codebook["tokenizer"]["psnr_db"], 2)
    assert page.text_content("#cb-vae-psnr") == fmt(codebook["vae"]["psnr_db"], 2)

    cost = get_json(model_live_server, f"{API}/cost", repeats=3)
    assert cost["cached"]
    chart = page.evaluate("document.getElementById('cost-chart').data.map(t => [t.x, t.y])")
    assert chart == [[[p["tokens"] for p in c["points"]], [p["median_ms"] for p in c["points"]]]
                     for c in cost["curves"]]
    assert page.locator("#cost-rows tr").count() == 4
    assert page.text_content("#cost-rows tr:first-child td").startswith("16 fwd · ")
    assert "(est.)" in page.text_content("#cost-rows tr:last-child td:last-child")  # diffusion at N = 1024
    assert cost["autoregressive"]["text"] in page.text_content("#cost-verdict")
    assert page.text_content("#cost-conditions").startswith("Noisy: ") == cost["conditions"]["noisy"]
    assert "estimated: one sampler step" in page.text_content("#cost-notes")
    model_probe.assert_clean()


def test_re_measure_by_keyboard(model_probe, model_live_server):
    page = model_probe.goto(PATH)
    wait_for(page, LOADED, timeout=180_000)
    before = get_json(model_live_server, f"{API}/codebook")
    press_remeasure(page, "codebook-remeasure", "codebook-status")
    after = get_json(model_live_server, f"{API}/codebook")
    assert after["measured_at"] >= before["measured_at"] and page.text_content("#codebook-remeasure") == "Re-measure"


def test_the_three_draw_one_after_another_and_are_judged(model_probe):
    """The diffusion column streams today; a token family's column draws once the stream takes `family` (until then
    it shows the server's refusal)."""
    page = model_probe.goto(f"{PATH}?steps=3&seed=5&rounds=4")
    wait_for(page, LOADED, timeout=180_000)
    page.click("#families-draw")
    wait_for(page, "document.getElementById('families-run-status').textContent.startsWith('Done')", timeout=120_000)
    wait_for(page, "!['–', 'judging…'].includes(document.getElementById('judged-diffusion').textContent)")
    assert page.text_content("#forwards-diffusion") == "3"
    assert page.text_content("#sampling-diffusion").endswith(" s")
    assert "seed 5" in page.get_attribute("#pic-diffusion", "alt")
    assert page.text_content("#verdict-diffusion").startswith(("yes", "no"))
    for family, forwards in (("autoregressive", "64"), ("masked", "4")):
        shown = page.text_content(f"#forwards-{family}")
        assert shown == forwards or page.text_content(f"#progress-{family}-text").startswith("stopped: "), family
    assert page.is_enabled('#likelihood-source option[value="diffusion"]')
    page.select_option("#likelihood-source", "diffusion")
    page.click("#likelihood-score")
    wait_for(page, "document.getElementById('lk-picture-caption').textContent.includes('diffusion model')")
    assert page.text_content("#likelihood-status") == "Scored."


def sse(events: list[tuple[str, dict]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def test_a_token_familys_stream_fills_its_column_as_the_contract_says(model_probe):
    """The stream's token families, answered here in the shape of main's TokenStreamStep (start with the token grid,
    a step per row with the grid so far and its preview, the POST /generate payload as the result), so the column's
    code is held to it before this branch meets that server: the picture follows the steps, the counters come from
    the result, the judge reads the PNG, and the likelihood panel scores the tokens as drawn."""
    image, _ = matching_scene(parse_prompt(DEFAULT_PROMPT), 0, 32)
    png = to_base64(encode_png(to_uint8(image)[0]))
    asked = []

    def stream(route):
        asked.append(route.request.url)
        half = [5] * 32 + [-1] * 32
        events = [("start", {"id": "r1", "family": "autoregressive", "total_steps": 2,
                             "token_grid": {"side": 8, "tokens": 64, "codebook_size": 64}}),
                  ("step", {"id": "r1", "family": "autoregressive", "index": 0, "total": 2, "forwards": 32,
                            "tokens_drawn": 32, "tokens_new": 32, "grid": half, "preview": png}),
                  ("step", {"id": "r1", "family": "autoregressive", "index": 1, "total": 2, "forwards": 64,
                            "tokens_drawn": 64, "tokens_new": 32, "grid": [5] * 64, "preview": png}),
                  ("result", {"id": "r1", "images": [{"png_base64": png, "seed": 7, "width": 32, "height": 32}],
                              "prompt_canonical": DEFAULT_PROMPT,
                              "timings": {"network_forwards": 64, "sampling_s": 0.25, "total_s": 0.5}})]
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=sse(events))

    page = model_probe.page
    page.route("**/api/v1/generate/stream?*family=autoregressive*", stream)
    page.goto(model_probe.base_url + f"{PATH}?seed=7&steps=2", wait_until="networkidle")
    wait_for(page, LOADED, timeout=180_000)
    page.click("#families-draw")
    wait_for(page, "document.getElementById('families-run-status').textContent.startsWith('Done')", timeout=120_000)
    wait_for(page, "document.getElementById('verdict-autoregressive').textContent !== '–'")
    assert "family=autoregressive" in asked[0] and "seed=7" in asked[0] and "previews=true" in asked[0]
    assert page.text_content("#forwards-autoregressive") == "64"
    assert page.text_content("#sampling-autoregressive") == "0.25 s"
    assert page.text_content("#progress-autoregressive-text") == "done"
    assert page.text_content("#judged-autoregressive") == "large red circle at top left"
    assert page.text_content("#verdict-autoregressive").startswith("yes")
    assert "seed 7" in page.get_attribute("#pic-autoregressive", "alt")
    page.select_option("#likelihood-source", "autoregressive")
    page.click("#likelihood-score")
    wait_for(page, "document.getElementById('lk-picture-caption').textContent.includes('own tokens')")
    assert page.evaluate("document.getElementById('likelihood-chart').data[0].text[0][0]").endswith("code 5")
