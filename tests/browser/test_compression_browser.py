"""The latent-vs-pixel page in headless Chromium: readouts, chart, deep links, presets, quizzes."""

import pytest

from tests.helpers.browser import answer_quiz, assert_current, assert_out_of_date, wait_for, wait_text

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
    assert page.text_content("#compression-error") == "patch: patch 2 must divide the latent grid 1 x 1"


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
    assert page.text_content("#compression-error") == "patch: patch 16 must divide the latent grid 8 x 8"
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
