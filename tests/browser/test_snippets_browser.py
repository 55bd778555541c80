"""The chapter's snippets edited and run in headless Chromium, offline: Python (Pyodide) in a worker, the server's
result for the same parameters beside each run, Stop, the time limit, tracebacks, the suggested breaks."""

import time
from urllib.parse import parse_qs, urlparse

import pytest

from tests.helpers.browser import (
    SNIPPET,
    edit_code,
    editor_code,
    finish_run,
    get_json,
    open_snippet,
    run_snippet,
    set_code,
    start_run,
    wait_for,
    wait_text,
)
from tests.helpers.models import REPO_ROOT

pytestmark = pytest.mark.browser

DENOISING, GUIDANCE = "/instruments/denoising", "/instruments/guidance"
OURS = {DENOISING: "denoising_walk.py", GUIDANCE: "cfg_norms.py"}
LOADED_LATER = ("/vendor/pyodide/", "/vendor/editor/", "/static/js/snippet_worker.js", "/static/py/")
ENDLESS = "print('spinning')\nwhile True:\n    pass\n"


@pytest.fixture
def offline(probe):
    """The probe's page with every request to another host refused, as on a machine with no network at all (the
    probe still records any attempt)."""
    probe.page.context.route(lambda url: urlparse(url).hostname != "127.0.0.1", lambda route: route.abort())
    return probe


def requested(probe) -> list[str]:
    return [urlparse(r).path for r in probe.requests]


@pytest.fixture
def probe(probe):
    probe.requests = []
    probe.page.on("request", lambda r: probe.requests.append(r.url))
    return probe


def verdict(page) -> tuple[str, str]:
    return page.evaluate(f"{SNIPPET}.dataset.verdict"), page.text_content("#snippet-verdict")


# ---------------------------------------------------------------- light until opened, then everything from here


def test_python_loads_only_when_the_editor_opens_all_from_this_server_gzipped(offline):
    page = offline.goto(DENOISING)
    assert page.text_content("#snippet-original") == (REPO_ROOT / "static/snippets/denoising_walk.py").read_text()
    assert not [p for p in requested(offline) if p.startswith(LOADED_LATER)]
    sizes = {}
    page.on("requestfinished", lambda r: sizes.update({urlparse(r.url).path: (r.sizes()["responseBodySize"],
                                                                                r.response().headers)}))
    started = time.monotonic()
    open_snippet(page)
    cold_start_s = time.monotonic() - started
    wasm_sent, wasm_headers = sizes["/vendor/pyodide/0.27.7/pyodide.asm.wasm"]
    assert wasm_headers["content-encoding"] == "gzip" and wasm_headers["content-type"] == "application/wasm"
    assert wasm_sent < 3.5e6  # 10.1 MB of WebAssembly, gzipped
    sent = sum(size for path, (size, _) in sizes.items() if path.startswith(LOADED_LATER))
    assert 8e6 < sent < 10e6
    print(f"\ncold start {cold_start_s:.1f} s (Python ready in the worker after "
          f"{page.evaluate(f'{SNIPPET}.dataset.loadSeconds')} s); {sent / 1e6:.2f} MB sent for it")
    offline.assert_clean()


# ---------------------------------------------------------------- edit a number, run, compare with the server


def test_denoising_edit_T_run_and_the_server_agrees_with_the_same_parameters(offline, live_server):
    page = offline.goto(DENOISING)
    open_snippet(page)
    lines = run_snippet(page).splitlines()
    assert lines[1].endswith(": [ 1.5 -0.8]") and lines[2].endswith(": 0.0") and "0.189" in lines[3]
    assert verdict(page)[0] == "agree"

    edit_code(page, "T = 40", "40", "20")
    output = run_snippet(page)
    server = get_json(live_server, "/api/v1/instruments/denoising", steps=20)
    assert f"(t=T-1): {round(server['abar_start'], 3)} |" in output and "0.189" not in output
    kind, text = verdict(page)
    assert kind == "agree" and text.startswith("Browser and server agree: with T = 20, β from 0.001 to 0.08, seed 0")
    assert page.input_value("#steps") == "20"  # the instrument above now shows the server's walk for the run
    wait_text(page, "#printout", "\n".join(server["printout"]))
    assert "T = 20" in parse_qs(urlparse(page.url).query)["code"][0]
    offline.assert_clean()

    linked = page.context.new_page()
    linked.goto(page.url, wait_until="networkidle")
    wait_for(linked, "document.querySelector('#snippet-editor .cm-line') !== null")
    assert "T = 20" in editor_code(linked) and "T = 40" not in editor_code(linked)
    assert "This link carries edited code, not ours" in linked.text_content("#snippet-status")
    linked.click("#snippet-reset")
    assert "T = 40" in editor_code(linked)
    wait_for(linked, "!new URLSearchParams(location.search).has('code')")


def test_guidance_edit_a_number_plot_it_and_break_the_convention(offline):
    page = offline.goto(GUIDANCE)
    open_snippet(page)
    edit_code(page, "eps_cond = np.array", "0.50", "0.60")
    output = run_snippet(page)
    assert "  1.0   [0.6  0.3  0.05]           0.673" in output
    kind, text = verdict(page)
    assert kind == "agree" and "(0.229, 0.673, 1.781, 4.319, 8.559)" in text
    plotted = page.evaluate("document.querySelector('#snippet-figures .chart').data[0]")
    assert plotted["x"] == [0, 1, 3, 7.5, 15] and [round(y, 3) for y in plotted["y"]] == [
        0.229, 0.673, 1.781, 4.319, 8.559]
    assert "[0.6, 0.3, 0.05]0.673" in page.text_content("#snippet-rows")  # the server's table, for the run's vectors

    run_snippet(page, "button[data-failure='the off-by-one convention']")
    assert "What broke: the off-by-one convention." in page.text_content("#snippet-break-note")
    kind, text = verdict(page)
    assert kind == "differ" and text.startswith(
        "Your edit changed the result: ‖ε̃‖ at s = 0: yours 0.5852, the server's 0.2291;")
    assert "return eps_cond + s * (eps_cond - eps_uncond)" in editor_code(page)
    offline.assert_clean()


def test_a_break_the_server_refuses_shows_its_failure_and_says_why_it_cannot_check(offline):
    page = offline.goto(DENOISING)
    open_snippet(page)
    output = run_snippet(page, "button[data-failure='zero terminal SNR']")
    assert "walk ended at       : [nan nan]\ndistance to x0 (L2) : nan\n" in output
    assert "What broke: zero terminal SNR." in page.text_content("#snippet-break-note")
    kind, text = verdict(page)
    assert kind == "unchecked" and "beta_end" in text and "0.5" in text


# ---------------------------------------------------------------- Stop, the time limit, errors


def test_an_endless_loop_is_stopped_and_the_page_stays_responsive(offline):
    page = offline.goto(DENOISING)
    open_snippet(page)
    set_code(page, ENDLESS)
    start_run(page)
    wait_for(page, "document.getElementById('snippet-output').textContent.includes('spinning')")
    assert page.is_enabled("#snippet-stop") and not page.is_enabled("#snippet-run")
    page.fill("#steps", "7")  # the instrument still answers while Python spins in its worker
    wait_for(page, "document.getElementById('denoising-path').data[1].x.length === 8")
    page.click("#snippet-stop")
    output = finish_run(page)
    assert page.evaluate(f"{SNIPPET}.dataset.lastRun") == "stopped"
    assert output.startswith("spinning\n\n[stopped by you after ")
    assert page.text_content("#snippet-status").startswith("Stopped by you after")
    set_code(page, "print(6 * 7)")
    assert run_snippet(page) == "42\n"  # a fresh Python took the stopped one's place
    offline.assert_clean()


def test_a_run_past_the_time_limit_is_stopped(offline):
    page = offline.goto(GUIDANCE)
    open_snippet(page)
    page.evaluate(f"{SNIPPET}.dataset.timeLimitS = '2'")
    set_code(page, ENDLESS)
    started = time.monotonic()
    output = run_snippet(page)
    assert "[stopped by the 2 s time limit after 2." in output
    assert 2 <= time.monotonic() - started < 30


def test_errors_show_their_traceback_as_a_terminal_would(offline):
    page = offline.goto(DENOISING)
    open_snippet(page)
    set_code(page, "import numpy as np\nx = np.array([1.0,\nprint(x)\n")
    output = run_snippet(page)
    assert output == ('  File "denoising_walk.py", line 2\n    x = np.array([1.0,\n                 ^\n'
                      "SyntaxError: '[' was never closed\n")
    assert page.evaluate(f"{SNIPPET}.dataset.lastRun") == "error"
    assert page.text_content("#snippet-status") == "The run stopped at an error: the traceback is in the output."

    set_code(page, "def walk(t):\n    return alpha_bar[t]\n\nwalk(3)\n")
    assert run_snippet(page) == (
        "Traceback (most recent call last):\n"
        '  File "denoising_walk.py", line 4, in <module>\n    walk(3)\n'
        '  File "denoising_walk.py", line 2, in walk\n    return alpha_bar[t]\n           ^^^^^^^^^\n'
        "NameError: name 'alpha_bar' is not defined\n")
    offline.assert_clean()


def test_show_image_draws_the_array_and_ctrl_enter_runs(offline):
    page = offline.goto(GUIDANCE)
    open_snippet(page)
    set_code(page, "import numpy as np\nshow_image(np.linspace(0, 1, 64).reshape(8, 8), title='ramp')\n")
    start_run(page, "#snippet-editor .cm-content")  # a click into the editor, then the keyboard
    page.keyboard.press("Control+Enter")
    finish_run(page)
    image = page.evaluate("""(() => { const c = document.querySelector('#snippet-figures canvas');
        const px = c.getContext('2d').getImageData(7, 7, 1, 1).data;
        return {w: c.width, h: c.height, label: c.getAttribute('aria-label'), last: Array.from(px),
                caption: c.parentElement.querySelector('figcaption').textContent}; })()""")
    assert image == {"w": 8, "h": 8, "label": "show_image: 8 × 8 pixels", "last": [255, 255, 255, 255],
                     "caption": "ramp"}
