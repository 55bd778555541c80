"""The latent-vs-pixel page in headless Chromium: readouts, chart, deep links, presets, quizzes."""

import pytest

from tests.helpers.browser import answer_quiz, wait_for, wait_text

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


def test_quizzes(probe):
    page = probe.goto(PATH)
    latent = page.locator("form.quiz").nth(0)
    assert not answer_quiz(latent, "false").startswith("Right")
    assert answer_quiz(latent, "true").startswith("Right")
    sd3 = page.locator("form.quiz").nth(1)
    assert not answer_quiz(sd3, "48").startswith("Right")
    assert answer_quiz(sd3, "12").startswith("Right")
    probe.assert_clean()
