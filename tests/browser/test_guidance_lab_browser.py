"""The guidance lab in headless Chromium: the instruments' measured-on-the-model panels (with and without a model)
and the /generate page's guidance grid and guidance-made-visible partials, against the tiny random model."""

import pytest

from tests.helpers.browser import assert_right_axis_readable
from tests.helpers.browser import wait_for as poll

pytestmark = pytest.mark.browser

GUIDANCE, COMPRESSION, GENERATE = "/instruments/guidance", "/instruments/latent-vs-pixel", "/generate"


def wait_for(page, script: str, arg=None, timeout: int = 30_000):
    poll(page, script, arg=arg, timeout=timeout)


def test_without_a_model_the_panels_say_so_and_stay_clean(probe):
    page = probe.goto(GUIDANCE)
    wait_for(page, "document.getElementById('real-model-status').textContent.includes('not loaded')")
    assert page.locator("#real-model-live").is_disabled()
    card_rows = page.evaluate("fetch('/api/v1/model').then(r => r.json())"
                              ".then(m => (m.card && m.card.evaluation && m.card.evaluation.guidance_sweep || []).length)")
    assert page.locator("#real-model-table tbody tr").count() == card_rows
    assert page.evaluate("document.getElementById('real-model-chart').data.some(t => t.name.startsWith('toy'))")
    page = probe.goto(COMPRESSION)
    wait_for(page, "document.getElementById('measured-status').textContent.includes('not loaded')")
    assert page.text_content("#me-latent-ms") == "–"
    probe.assert_clean()


def test_the_guidance_page_re_measures_live(model_probe):
    page = model_probe.goto(GUIDANCE)
    wait_for(page, "!document.getElementById('real-model-live').disabled")
    assert "No measured sweep" in page.text_content("#real-model-status")  # the tiny model has no card
    page.click("#real-model-live")
    wait_for(page, "document.getElementById('real-model-status').textContent.startsWith('Live:')")
    rows = page.locator("#real-model-table tbody tr")
    assert rows.count() == 3 and rows.nth(1).locator("td").first.text_content() == "3"
    assert rows.nth(1).locator("td").nth(3).text_content().endswith("%")
    names = page.evaluate("document.getElementById('real-model-chart').data.map(t => t.name)")
    assert "live: adherence (%)" in names and "live: diversity (RMS)" in names
    model_probe.assert_clean()


def test_the_compression_page_times_the_real_forward(model_probe):
    page = model_probe.goto(COMPRESSION)
    wait_for(page, "document.getElementById('me-latent-ms').textContent !== '–'")
    assert page.text_content("#me-ratio") == "48"
    assert "16 tokens" in page.text_content("#me-latent-tokens")
    assert "1,024 tokens" in page.text_content("#me-p1-tokens") and "random weights" in page.text_content("#me-p2-tokens")
    assert page.evaluate("document.getElementById('measured-chart').data[0].y.length") == 3
    model_probe.assert_clean()


def test_the_grid_draws_the_forms_prompt_at_each_scale(model_probe):
    page = model_probe.goto(GENERATE)
    page.fill("#prompt", "a blue square")
    page.fill("#steps", "3")
    page.fill("#seed", "12")
    page.fill("#grid-scales", "1, 4, 9")
    page.fill("#grid-rows", "2")
    page.click("#grid-draw")
    wait_for(page, "!document.getElementById('grid-table').hidden")
    head = page.locator("#grid-table thead th").all_text_contents()
    assert head == ["seed", "s = 1", "s = 4", "s = 9"]
    assert page.locator("#grid-table tbody th").all_text_contents() == ["12", "13"]
    assert page.locator("#grid-table tbody img").count() == 6
    assert page.locator("#grid-table tfoot tr.grid-adherence td").count() == 3
    wait_for(page, "document.getElementById('grid-chart').data && document.getElementById('grid-chart').data[0].x.length === 3")
    assert_right_axis_readable(page, "grid-chart")
    assert "a blue square" in page.text_content("#grid-status")
    page.fill("#grid-scales", "1, x")
    page.click("#grid-draw")
    assert "not a number" in page.text_content("#grid-error")
    model_probe.assert_clean()


def test_guidance_made_visible_shows_the_step_and_five_variants(model_probe):
    page = model_probe.goto(GENERATE)
    page.fill("#steps", "4")
    page.select_option("#anatomy-variant", "cfg_interval")
    page.click("#anatomy-run")
    wait_for(page, "!document.getElementById('anatomy-result').hidden")
    assert page.locator("#anatomy-maps figure").count() == 4
    assert page.locator("#anatomy-x0 figure").count() == 3
    variants = page.locator("#anatomy-variants figure")
    assert variants.count() == 5 and variants.nth(2).get_attribute("data-variant") == "cfg_interval"
    assert "ε(c) elsewhere" in variants.nth(2).text_content()
    assert [variants.nth(i).get_attribute("data-variant") for i in (3, 4)] == ["apg", "cfg++"]
    assert "ddim, s = 0.6" in variants.nth(4).text_content()
    assert page.get_attribute("#anatomy-step", "max") == "3"
    # one step numbering on every page: "step k of N", k counting from 1, beside the t of that step
    assert page.text_content("#anatomy-step-out") == "step 4 of 4"
    t, step = page.text_content("#an-t").split(" ", 1)
    assert int(t) >= 0 and step == "(step 4 of 4)"
    assert "±" in page.text_content("#anatomy-display") and page.locator("#anatomy-panel math").count() == 3
    model_probe.assert_clean()


@pytest.mark.parametrize("path", [GUIDANCE, COMPRESSION])
def test_the_panels_fit_a_phone(browser, live_server, path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_server + path, wait_until="networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    context.close()
    assert overflow <= 0
