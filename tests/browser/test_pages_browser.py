"""Every page in headless Chromium: loads cleanly, offline, and the navigation works."""

import pytest

from app.web.routes.pages import PAGES

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/"] + [p.path for p in PAGES])
def test_page_loads_without_errors_or_foreign_requests(probe, path):
    page = probe.goto(path)
    assert "Diffusion Lab" in page.title()
    probe.assert_clean()


def test_index_links_to_every_instrument(probe):
    page = probe.goto("/")
    hrefs = page.eval_on_selector_all("a.card", "els => els.map(e => e.getAttribute('href'))")
    assert hrefs == [p.path for p in PAGES]


def test_phone_width_has_no_horizontal_scroll(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_server + "/", wait_until="networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    context.close()
    assert overflow <= 0


# Lab.parseNumber, the quizzes' reader, run in the page: (typed, the number it reads; None = not a number).
NUMBERS = [
    ("2,048", 2048), (" 2,048 ", 2048), ("2 048", 2048), ("1,234,567", 1234567), ("1,234.5", 1234.5),
    ("1.234,5", 1234.5), ("0,6", 0.6), ("0.6", 0.6), (".5", 0.5), ("12x", 12), ("12 ×", 12), ("12X", 12),
    ("-0.5", -0.5), ("\u22120.5", -0.5), ("1e-3", 0.001), ("48", 48),
    ("", None), ("  ", None), ("abc", None), ("12 apples", None), ("0x10", None), ("1,2,3", None),
    ("12,34,567", None), ("1.2.3", None), ("x", None), ("4 x 4", None), ("2,04", 2.04),
]


def test_the_quiz_reader_takes_the_pages_own_number_formats_and_nothing_else(probe):
    page = probe.goto("/instruments/latent-vs-pixel")
    read = page.evaluate("typed => typed.map(t => { const x = Lab.parseNumber(t); return Number.isNaN(x) ? null : x; })",
                         [typed for typed, _ in NUMBERS])
    assert dict(zip([t for t, _ in NUMBERS], read)) == dict(NUMBERS)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_quiz_inputs_wear_the_theme(probe, scheme):
    """The lab has one, dark, theme: a reader's light preference must not leave white boxes on it."""
    probe.page.emulate_media(color_scheme=scheme)
    page = probe.goto("/instruments/denoising")
    quiz, field = page.evaluate("""[document.querySelector('form.quiz input'), document.querySelector('.control input[type=number]')]
        .map(e => { const s = getComputedStyle(e); return [s.backgroundColor, s.color, s.borderTopColor]; })""")
    assert quiz == field == ["rgb(30, 39, 49)", "rgb(230, 237, 243)", "rgb(42, 52, 64)"]
    probe.assert_clean()
