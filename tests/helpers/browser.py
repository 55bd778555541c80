"""Driving the pages in headless Chromium: the browser's flags, a page probe, and polling helpers."""

import json
import math
import os
import time
import urllib.parse
import urllib.request
from urllib.parse import urlparse

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


def figures(page) -> list[dict]:
    """Each view of an instrument's figures ([data-figures]): marked out of date or not, its note, its content's
    opacity."""
    return page.evaluate("""Array.from(document.querySelectorAll('[data-figures]')).map(v => ({
        stale: v.classList.contains('stale'),
        note: (v.querySelector(':scope > .stale-note') || {textContent: ''}).textContent,
        opacity: Number(getComputedStyle(v.querySelector(':scope > :not(.stale-note)')).opacity),
    }))""")


def assert_out_of_date(page, count: int) -> None:
    """The page's `count` figure views are dimmed and say they are out of date (a refused request)."""
    views = figures(page)
    assert len(views) == count and all(v["stale"] and v["opacity"] < 0.5 for v in views), views
    assert all(v["note"].startswith("Out of date: these figures are for the last settings") for v in views), views


def assert_current(page, count: int) -> None:
    """The page's `count` figure views are the answer to the settings on show: no mark, no note, full opacity."""
    assert figures(page) == [{"stale": False, "note": "", "opacity": 1}] * count


def assert_right_axis_readable(page, chart_id: str) -> None:
    """A chart's right y axis: round tick labels (a 1, 2 or 5 times a power of ten step, as Plotly picks its own),
    and its title to the right of every tick label, inside the chart."""
    axis = page.evaluate("""id => {
      const chart = document.getElementById(id);
      const ticks = Array.from(chart.querySelectorAll('.y2tick text'));
      return {labels: ticks.map(t => t.textContent), right: Math.max(...ticks.map(t => t.getBoundingClientRect().right)),
              title: chart.querySelector('.g-y2title text').getBoundingClientRect().left,
              width: chart.getBoundingClientRect().right};
    }""", chart_id)
    values = [float(label) for label in axis["labels"]]
    steps = {round(b - a, 12) for a, b in zip(values, values[1:])}
    assert len(values) >= 3 and len(steps) == 1, axis
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5)), axis
    assert axis["right"] < axis["title"] < axis["width"], axis


def press_remeasure(page, button: str, status: str) -> None:
    """Press a Re-measure button with the keyboard; wait until it was disabled while busy, is enabled again, and
    the status says the figures were measured just now."""
    page.evaluate("""(id) => { window.busyStates = [];
      new MutationObserver(() => window.busyStates.push(document.getElementById(id).disabled))
        .observe(document.getElementById(id), { attributes: true }); }""", button)
    page.focus(f"#{button}")
    page.keyboard.press("Enter")  # keyboard: a plain button
    wait_for(page, "(id) => window.busyStates.includes(true) && !document.getElementById(id).disabled", arg=button,
             timeout=60_000)
    wait_for(page, "(id) => document.getElementById(id).textContent.includes('measured just now')", arg=status)


# ---------------------------------------------------------------- a page's runnable snippet (static/js/snippet.js)

SNIPPET = "document.getElementById('snippet')"
PYTHON_START_MS = 120_000  # Pyodide's first start: about 5 s on an idle laptop core, far more beside a training run


def open_snippet(page) -> None:
    """Open the snippet's editor and wait until Python has started in its worker."""
    page.click("#snippet-open")
    wait_for(page, f"{SNIPPET}.dataset.loadSeconds !== undefined", timeout=PYTHON_START_MS)


def set_code(page, code: str) -> None:
    """Replace the editor's code as a paste would (no auto-indent)."""
    page.click("#snippet-editor .cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)


def edit_code(page, line_with: str, old: str, new: str) -> None:
    """Type `new` over `old` on the editor's line that contains `line_with`, with the keyboard."""
    line = page.locator("#snippet-editor .cm-line", has_text=line_with)
    column = line.text_content().index(old)
    line.click()
    page.keyboard.press("Home")
    page.keyboard.press("Home")  # the first stops after any indentation
    for _ in range(column):
        page.keyboard.press("ArrowRight")
    for _ in range(len(old)):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.type(new)


def editor_code(page) -> str:
    return page.evaluate("Array.from(document.querySelectorAll('#snippet-editor .cm-line'), l => l.textContent)"
                         ".join('\\n')")


def start_run(page, how: str = "#snippet-run") -> None:
    page.evaluate(f"delete {SNIPPET}.dataset.lastRun; delete {SNIPPET}.dataset.verdict")
    page.click(how)


def finish_run(page, timeout: int = PYTHON_START_MS) -> str:
    """Wait until the run ends and, when it ran to the end, the server's answer is in; the run's output."""
    wait_for(page, f"{SNIPPET}.dataset.lastRun !== undefined", timeout=timeout)
    if page.evaluate(f"{SNIPPET}.dataset.lastRun") == "ok":
        wait_for(page, f"{SNIPPET}.dataset.verdict !== undefined")
    return page.text_content("#snippet-output")


def run_snippet(page, how: str = "#snippet-run") -> str:
    """Press Run (or `how`, a suggested break) and wait for the run: its output."""
    start_run(page, how)
    return finish_run(page)
