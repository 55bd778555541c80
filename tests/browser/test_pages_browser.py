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
