"""axe-core on every page, after its charts have drawn: no serious or critical accessibility violation."""

from pathlib import Path

import pytest

from app.web.routes.pages import PAGES
from tests.helpers.browser import open_snippet, run_snippet, set_code, wait_for

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_page(browser, model_live_server):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing; `make test` installs it with npm from tests/browser/package.json")
    # The app's CSP refuses injected scripts; this context lets axe in and changes nothing else.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page, model_live_server
    context.close()


def violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("path", ["/"] + [p.path for p in PAGES] + ["/no-such-page"])
def test_page_has_no_serious_accessibility_violation(axe_page, path):
    page, base = axe_page
    page.goto(base + path, wait_until="networkidle")
    page.wait_for_timeout(300)  # charts draw after their JSON arrives
    assert violations(page) == []


def test_generate_page_after_a_run_and_a_refused_prompt(axe_page):
    """What only appears after use: the step previews, the results, the scrubber, an error message."""
    page, base = axe_page
    page.goto(base + "/generate?prompt=a+large+red+circle&steps=3&seed=1", wait_until="networkidle")
    page.click("#generate")
    page.wait_for_selector("#results figure img")
    assert violations(page) == []
    page.fill("#prompt", "a red star")
    page.click("#generate")
    wait_for(page, "document.getElementById('prompt-error').textContent.includes('unknown word: star')")
    assert violations(page) == []


def test_coherence_page_after_two_clips(axe_page):
    page, base = axe_page
    page.goto(base + "/instruments/coherence", wait_until="networkidle")
    for field, value in {"#video-prompt-input": "a large red circle moving right", "#video-steps": "3",
                         "#video-frames": "4"}.items():
        page.fill(field, value)
    page.click("#video-generate")
    wait_for(page, "document.getElementById('video-run-status').textContent.startsWith('Done')", timeout=60_000)
    assert violations(page) == []


def test_families_page_after_a_run(axe_page):
    """What only appears after use: the three columns' pictures and counters, the likelihood of a drawn picture."""
    page, base = axe_page
    page.goto(base + "/instruments/families?steps=2&seed=3", wait_until="networkidle")
    wait_for(page, "!document.getElementById('cost-remeasure').disabled", timeout=180_000)
    page.click("#families-draw")
    wait_for(page, "document.getElementById('families-run-status').textContent.startsWith('Done')", timeout=120_000)
    page.select_option("#likelihood-source", "diffusion")
    page.click("#likelihood-score")
    wait_for(page, "document.getElementById('lk-picture-caption').textContent.includes('diffusion model')")
    assert violations(page) == []


def test_generate_page_after_the_grid_and_the_guidance_anatomy(axe_page):
    page, base = axe_page
    page.goto(base + "/generate?prompt=a+blue+square&steps=3", wait_until="networkidle")
    page.fill("#grid-scales", "1, 4")
    page.fill("#grid-rows", "1")
    page.click("#grid-draw")
    wait_for(page, "!document.getElementById('grid-table').hidden")
    page.click("#anatomy-run")
    wait_for(page, "!document.getElementById('anatomy-result').hidden")
    assert violations(page) == []


def test_guidance_page_after_a_live_sweep(axe_page):
    page, base = axe_page
    page.goto(base + "/instruments/guidance", wait_until="networkidle")
    wait_for(page, "!document.getElementById('real-model-live').disabled")
    page.click("#real-model-live")
    wait_for(page, "document.getElementById('real-model-status').textContent.startsWith('Live:')", timeout=60_000)
    assert violations(page) == []


def test_snippet_editor_after_runs_with_a_chart_an_image_a_break_and_a_traceback(axe_page):
    """What only appears once the reader opens the editor: CodeMirror, the output, charts, images, the notes."""
    page, base = axe_page
    page.goto(base + "/instruments/guidance", wait_until="networkidle")
    open_snippet(page)
    run_snippet(page)
    assert violations(page) == []
    run_snippet(page, "button[data-failure='the off-by-one convention']")
    assert page.is_visible("#snippet-break-note")
    assert violations(page) == []
    set_code(page, "import numpy as np\nshow_image(np.eye(4))\nprint('x' * 500)\n1 / 0\n")
    run_snippet(page)
    assert page.is_visible("#snippet-figures canvas")
    assert violations(page) == []


def test_the_check_finds_a_planted_violation(axe_page):
    """The check can fail: a chart whose focusable control sits inside role="img" is what Plotly's mode bar was."""
    page, base = axe_page
    page.goto(base + "/", wait_until="networkidle")
    page.evaluate("""() => {
        const chart = document.createElement("div");
        chart.setAttribute("role", "img");
        chart.setAttribute("aria-label", "a chart");
        chart.append(Object.assign(document.createElement("button"), {textContent: "zoom"}));
        document.querySelector("main").append(chart);
    }""")
    assert [v["id"] for v in violations(page)] == ["nested-interactive"]


def test_generate_page_after_a_token_familys_run(axe_page):
    """The token family's settings, readouts and grid previews, shown in place of diffusion's."""
    page, base = axe_page
    page.goto(base + "/generate?prompt=a+blue+square&family=autoregressive&seed=2", wait_until="networkidle")
    page.click("#generate")
    page.wait_for_selector("#results figure img")
    page.fill("#scrub", "0")
    assert violations(page) == []
