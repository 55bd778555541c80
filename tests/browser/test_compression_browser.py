"""The latent-vs-pixel page in headless Chromium: readouts, chart, deep links, presets, quizzes; the measured-here
panel's spreads, recorded benchmarks and Re-measure button on the tiny model."""

import json

import pytest

from app.web.state import state_of
from tests.helpers.browser import (
    PageProbe,
    answer_quiz,
    assert_current,
    assert_out_of_date,
    get_json,
    press_remeasure,
    wait_for,
    wait_text,
)
from tests.helpers.models import REPO_ROOT, model_settings
from tests.helpers.server import serve

pytestmark = pytest.mark.browser

PATH = "/instruments/latent-vs-pixel"



def latent_bar_values(page):
    return page.evaluate("document.getElementById('compression-bars').data[1].y")


def test_page_shows_the_chapter_numbers_cleanly(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-ratio", "48")
    assert page.text_content("#ro-pixel-values") == "786,432"
    assert page.text_content("#ro-latent-shape") == "64 × 64 × 4"
    assert page.text_content("#ro-grid") == "64"
    assert page.text_content("#ro-attn") == "1/4,096"
    assert latent_bar_values(page) == [16_384, 1024, 1024**2]
    assert page.locator("math").count() >= 1
    probe.assert_clean()


def test_slider_changes_readout_chart_and_url(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-ratio", "48")
    page.locator("#channels").press("ArrowRight")  # c_z 4 -> 5
    wait_text(page, "#ro-ratio", "38.4")
    wait_for(page, "document.getElementById('compression-bars').data[1].y[0] === 20480")
    assert "channels=5" in page.url
    probe.assert_clean()


def test_deep_link_restores_state(probe):
    page = probe.goto(PATH + "?height=1024&width=512&f=16&channels=8&patch=1")
    wait_text(page, "#ro-latent-shape", "64 × 32 × 8")
    assert page.input_value("#f") == "16" and page.input_value("#height") == "1024"
    assert page.text_content("#ro-ratio") == "96"
    assert page.text_content("#ro-tokens") == "2,048"
    probe.assert_clean()


def test_presets_come_from_the_api_and_work(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-ratio", "48")
    assert page.locator("#compression-presets button").count() == 3
    page.click("button[data-preset='sd3']")
    wait_text(page, "#ro-ratio", "12")
    assert page.input_value("#channels") == "16"
    assert page.get_attribute("button[data-preset='sd3']", "aria-pressed") == "true"
    page.click("button[data-preset='pixel']")
    wait_text(page, "#ro-ratio", "1")
    assert page.text_content("#ro-attn") == "the same"
    probe.assert_clean()


def test_impossible_combination_shows_the_servers_reason(probe):
    page = probe.goto(PATH + "?height=64&width=64&f=64&patch=2")
    wait_for(page, "document.getElementById('compression-error').textContent.includes('patch')")
    assert page.text_content("#compression-error") == "patch 2 must divide the latent grid 1 x 1"


def pressed(page) -> dict[str, str]:
    return page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('#compression-presets button'),"
                         " b => [b.dataset.preset, b.getAttribute('aria-pressed')]))")


def test_a_refused_setting_leaves_the_figures_marked_out_of_date_and_no_preset_on(probe):
    page = probe.goto(PATH + "?height=64&width=64&f=8&channels=4&patch=2")
    wait_text(page, "#ro-latent-shape", "8 × 8 × 4")
    assert_current(page, 1)
    assert pressed(page) == {"pixel": "false", "sd": "true", "sd3": "false"}
    bars = latent_bar_values(page)
    page.select_option("#patch", "16")  # a 16 x 16 patch cannot cut the 8 x 8 latent grid
    wait_for(page, "document.getElementById('compression-error').textContent !== ''")
    assert page.text_content("#compression-error") == "patch 16 must divide the latent grid 8 x 8"
    assert_out_of_date(page, 1)
    assert pressed(page) == {"pixel": "false", "sd": "false", "sd3": "false"}
    # the last answer stays to compare against, marked as such
    assert page.text_content("#ro-latent-shape") == "8 × 8 × 4" and latent_bar_values(page) == bars
    page.select_option("#patch", "4")
    wait_text(page, "#ro-tokens", "4")
    assert_current(page, 1)
    assert page.text_content("#compression-error") == "" and pressed(page)["sd"] == "true"


def test_quizzes(probe):
    page = probe.goto(PATH)
    latent = page.locator("form.quiz").nth(0)
    assert not answer_quiz(latent, "false").startswith("Right")
    assert answer_quiz(latent, "true").startswith("Right")
    sd3 = page.locator("form.quiz").nth(1)
    assert not answer_quiz(sd3, "48").startswith("Right")
    assert answer_quiz(sd3, "12").startswith("Right")
    for written in ("12x", "12 ×", "  12  ", "12X", "12,0"):  # the page's own way of writing a factor, too
        assert answer_quiz(sd3, written).startswith("Right"), written
    for wrong in ("48x", "12,5", "1,2", "12 apples", "x"):
        assert not answer_quiz(sd3, wrong).startswith("Right"), wrong
    probe.assert_clean()


# ------------------------------------------------------------------- measured here, on the tiny model

MEASURED = "/api/v1/instruments/compression/measured"


def figure(text: str) -> float:
    return float(text.replace(",", ""))


def assert_measured_shown(page, m):
    """The panel shows the server's figures: medians, spreads, estimates' basis, recorded figures, the verdicts."""
    rounds = m["conditions"]["rounds"]
    for short, f in (("latent", m["latent"]), *((f"p{p['patch']}", p) for p in m["pixel"])):
        assert figure(page.text_content(f"#me-{short}-ms")) == pytest.approx(f["median_ms"], abs=0.06)
        shown = page.text_content(f"#me-{short}-spread")
        assert shown.startswith("middle half ") and shown.endswith(f"over {rounds} rounds")
        low, high = shown.removeprefix("middle half ").split(" ms")[0].replace(",", "").split("–")
        assert (float(low), float(high)) == (pytest.approx(f["low_ms"], rel=0.01), pytest.approx(f["high_ms"], rel=0.01))
        tokens = page.text_content(f"#me-{short}-tokens")
        assert (f"estimated: {f['basis']}" in tokens) == f["estimated"]
        recorded = page.text_content(f"#me-{short}-recorded")
        if f["recorded"] is None:
            assert recorded == f"recorded benchmark: none for this figure ({f['recorded_note']})"
        else:
            r = f["recorded"]
            assert recorded.startswith(f"recorded benchmark: {r['median_ms']:.1f} ms ({r['file']}, "
                                       f"{r['recorded_at'][:10]}; {r['machine']}")
    for cmp, value in zip(m["savings"], ("#me-speedup", "#me-speedup-p1")):
        if cmp["resolved"]:
            digits = 1 if value == "#me-speedup" else 0
            assert figure(page.text_content(value)) == pytest.approx(cmp["ratio"], abs=0.6 * 10 ** -digits)
        else:
            assert page.text_content(value) == "not resolved"
    conditions = page.text_content("#measured-conditions")
    assert conditions.startswith("Noisy: ") == m["conditions"]["noisy"]
    assert f"{rounds} interleaved rounds" in conditions and f"on {m['conditions']['cores']} core" in conditions
    chart = page.evaluate("document.getElementById('measured-chart').data.map(t => [t.y, t.error_y && t.error_y.array])")
    rows = [m["latent"], *m["pixel"]]
    assert chart[0] == [[r["median_ms"] for r in rows], [pytest.approx(r["high_ms"] - r["median_ms"]) for r in rows]]
    assert chart[1][0] == [r["recorded"]["median_ms"] if r["recorded"] else None for r in rows]


def test_the_measured_panel_shows_spreads_and_re_measures_on_request(model_probe, model_live_server):
    page = model_probe.goto(PATH)
    wait_for(page, "!document.getElementById('measured-remeasure').disabled", timeout=60_000)
    before = get_json(model_live_server, MEASURED)
    assert before["cached"]
    assert_measured_shown(page, before)
    assert "another configuration" in page.text_content("#me-latent-recorded")  # the tiny model was never benchmarked
    press_remeasure(page, "measured-remeasure", "measured-status")
    after = get_json(model_live_server, MEASURED)
    assert after["cached"] and after["latent"]["runs_ms"] != before["latent"]["runs_ms"]
    assert_measured_shown(page, after)
    assert page.text_content("#measured-remeasure") == "Re-measure"
    model_probe.assert_clean()


def test_the_recorded_benchmark_of_the_same_forward_stands_beside_the_live_figure(browser, tiny_model_dir, tmp_path):
    """bench/results/scaling.json as recorded, relabelled with the tiny model's DiT configuration so its rows (16,
    64, 256 and 1,024 tokens) are the tiny model's latent and pixel forwards."""
    from app.main import create_app

    app = create_app(model_settings(tiny_model_dir, bench_results_dir=tmp_path))
    server = serve(app)
    base = next(server)
    context = browser.new_context()
    try:
        record = json.loads((REPO_ROOT / "bench" / "results" / "scaling.json").read_text())
        record["model"]["dit"] = state_of(app).model.pipeline.dit.config.to_dict()
        (tmp_path / "scaling.json").write_text(json.dumps(record))
        probe = PageProbe(context.new_page(), base)
        page = probe.goto(PATH)
        wait_for(page, "!document.getElementById('measured-remeasure').disabled", timeout=60_000)
        m = get_json(base, MEASURED)
        assert all(f["recorded"] for f in [m["latent"], *m["pixel"]])
        assert_measured_shown(page, m)
        probe.assert_clean()
    finally:
        context.close()
        next(server, None)
