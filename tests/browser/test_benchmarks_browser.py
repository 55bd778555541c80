"""The scaling benchmarks page in headless Chromium: three charts drawn from the recorded file, or a clear notice.

The servers here read a small record written by the test (tests/scaling_data.py), never the real measurement.
"""

import pytest

from app.main import create_app
from tests.helpers import scaling_data as data
from tests.helpers.browser import PageProbe, get_json, wait_for
from tests.helpers.models import settings_for_tests
from tests.helpers.server import serve

pytestmark = pytest.mark.browser

PATH = "/benchmarks"
API = "/api/v1/benchmarks/scaling"
CHARTS = ("scaling-steps-chart", "scaling-batch-chart", "scaling-resolution-chart")


@pytest.fixture(scope="module")
def recorded_server(tmp_path_factory):
    results = tmp_path_factory.mktemp("bench-results")
    data.write_scaling(results)
    yield from serve(create_app(settings_for_tests(bench_results_dir=results)))


@pytest.fixture(scope="module")
def unrecorded_server(tmp_path_factory):
    yield from serve(create_app(settings_for_tests(bench_results_dir=tmp_path_factory.mktemp("no-results"))))


def _probe(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, PageProbe(page, url)


@pytest.fixture
def recorded(browser, recorded_server):
    context, probe = _probe(browser, recorded_server)
    yield probe
    context.close()


@pytest.fixture
def unrecorded(browser, unrecorded_server):
    context, probe = _probe(browser, unrecorded_server)
    yield probe
    context.close()


def traces(page, chart: str) -> list[dict]:
    return page.evaluate("(id) => document.getElementById(id).data.map((t) => ({name: t.name, x: t.x, y: t.y}))",
                         chart)


def test_three_charts_draw_exactly_the_recorded_numbers(recorded):
    api_requests = []
    recorded.page.on("request", lambda r: API in r.url and api_requests.append(r.url))
    page = recorded.goto(PATH)
    wait_for(page, "document.body.dataset.scalingDrawn === 'true'")
    rec = get_json(recorded.base_url, API)
    assert api_requests, "the page reads the endpoint"

    steps = traces(page, "scaling-steps-chart")
    xs = [r["steps"] for r in rec["steps"]["rows"]]
    assert steps[0]["x"] == xs and steps[0]["y"] == [r["median_s_per_image"] for r in rec["steps"]["rows"]]
    assert steps[1]["x"] == xs and steps[1]["y"] == [r["best_s_per_image"] for r in rec["steps"]["rows"]]
    fit = rec["steps"]["fit"]
    assert steps[2]["y"] == pytest.approx([fit["fixed_s"] + fit["per_unit_s"] * s for s in xs])

    batch = traces(page, "scaling-batch-chart")
    xs = [r["batch"] for r in rec["batch"]["rows"]]
    assert batch[0]["x"] == xs and batch[0]["y"] == [r["median_s_per_image"] for r in rec["batch"]["rows"]]
    assert batch[1]["x"] == xs and batch[1]["y"] == [r["median_s_per_batch"] for r in rec["batch"]["rows"]]

    res = traces(page, "scaling-resolution-chart")
    rows = rec["resolution"]["rows"]
    xs = [r["tokens"] for r in rows]
    assert res[0]["x"] == xs and res[0]["y"] == [r["dit_median_ms"] for r in rows]
    assert res[1]["x"] == xs and res[1]["y"] == [r["vae_median_ms"] for r in rows]
    power = rec["resolution"]["dit_power"]
    assert res[2]["y"] == pytest.approx([power["prefactor"] * n ** power["exponent"] for n in xs])
    assert xs == [16, 64, 256, 1024]

    for chart in CHARTS:  # log-log where it makes sense: all three
        axes = page.evaluate("(id) => { const l = document.getElementById(id).layout; "
                             "return [l.xaxis.type, l.yaxis.type]; }", chart)
        assert axes == ["log", "log"], chart
    recorded.assert_clean()


def test_the_page_says_where_when_and_how_the_numbers_were_recorded(recorded):
    page = recorded.goto(PATH)
    wait_for(page, "document.body.dataset.scalingDrawn === 'true'")
    assert page.text_content("#pv-cpu") == "Fixture CPU @ 1.00GHz"
    assert page.text_content("#pv-torch") == "2.13.0+cpu"
    assert "2 intra-op thread(s)" in page.text_content("#pv-threads")
    assert page.text_content("#pv-date") == "2026-01-02 03:04:05"
    assert page.text_content("#pv-load") == "0.42 → 0.77"
    assert page.text_content("#pv-command") == "python bench/scaling.py --json fixture.json"
    assert page.is_hidden("#pv-quick")
    summary = page.text_content("#resolution-summary")
    assert "grows like N^1.25" in summary and "decode like N^1 (" in summary
    assert "9 ms per step" in page.text_content("#steps-summary")
    assert page.locator("#resolution-table tbody tr").count() == 4
    assert page.text_content("#resolution-table tbody tr.current td") == "64 px"  # the ratios' reference
    lede = page.text_content(".lede")
    assert "not live" in lede and "python bench/scaling.py" in lede
    recorded.assert_clean()


def test_without_a_record_the_page_says_so_and_asks_nothing(unrecorded):
    api_requests = []
    unrecorded.page.on("request", lambda r: API in r.url and api_requests.append(r.url))
    page = unrecorded.goto(PATH)
    assert page.is_visible("#scaling-missing")
    assert "python bench/scaling.py" in page.text_content("#scaling-missing")
    assert page.is_hidden("#scaling-results")
    assert api_requests == []
    for chart in CHARTS:
        assert page.evaluate("(id) => document.getElementById(id).data === undefined", chart)
    unrecorded.assert_clean()


def test_the_index_and_the_navigation_link_the_page(unrecorded):
    page = unrecorded.goto("/")
    assert page.locator(f"a.card[href='{PATH}']").count() == 1
    assert page.locator(f".site-header nav a[href='{PATH}']").count() == 1
    unrecorded.assert_clean()
