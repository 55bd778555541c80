"""The frame-coherence page in headless Chromium: readouts, the frame strip, deep links, presets, quizzes."""

import pytest

from app.instruments.coherence import coherence_report
from tests.helpers.browser import answer_quiz, assert_current, assert_out_of_date, wait_for, wait_text

pytestmark = pytest.mark.browser

PATH = "/instruments/coherence"


def report(coherence=0.5, frames=8, seed=0, p_t=1, p_h=2, p_w=2, latent_height=32, latent_width=32):
    return coherence_report(coherence, frames, seed, p_t, p_h, p_w, latent_height, latent_width)



def strip_dots(page):
    return page.evaluate("document.getElementById('coherence-strip').data[1].x")


def test_page_loads_with_the_servers_numbers(probe):
    want = report()
    page = probe.goto(PATH)
    wait_text(page, "#ro-regime", want.regime)
    assert float(page.text_content("#ro-jump")) == pytest.approx(want.mean_jump, abs=5e-4)
    assert page.text_content("#ro-tokens") == "2,048"
    assert len(strip_dots(page)) == 8
    assert page.locator("math").count() >= 1
    probe.assert_clean()


def test_slider_changes_readout_and_chart(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-regime", report().regime)
    before_jump, before_dots = page.text_content("#ro-jump"), strip_dots(page)
    page.fill("#coherence", "1")
    want = report(coherence=1.0)
    wait_for(page,
        "(v) => Math.abs(Number(document.getElementById('ro-jump').textContent) - v) < 5e-4", arg=want.mean_jump
    )
    assert page.text_content("#ro-jump") != before_jump
    assert strip_dots(page) != before_dots
    assert page.text_content("#ro-regime") == want.regime
    assert "coherence=1" in page.url
    probe.assert_clean()


def test_deep_link_restores_state(probe):
    want = report(coherence=0.0, frames=16, seed=3, p_t=2)
    page = probe.goto(PATH + "?coherence=0&frames=16&seed=3&p_t=2")
    wait_text(page, "#ro-tokens", "2,048")
    assert page.input_value("#frames") == "16" and page.input_value("#p_t") == "2"
    assert page.text_content("#ro-regime") == want.regime
    assert float(page.text_content("#ro-jump")) == pytest.approx(want.mean_jump, abs=5e-4)
    assert len(strip_dots(page)) == 16
    probe.assert_clean()


def test_preset_and_frames_slider(probe):
    page = probe.goto(PATH + "?frames=8")
    wait_text(page, "#ro-tokens", "2,048")
    page.click("button[data-coherence='1']")
    wait_text(page, "#ro-regime", report(coherence=1.0).regime)
    assert page.input_value("#coherence") == "1"
    joint = page.text_content("#ro-joint")
    page.locator("#frames").press("ArrowRight")  # 8 -> 9 frames
    wait_text(page, "#ro-tokens", "2,304")
    assert page.text_content("#ro-joint") != joint
    probe.assert_clean()


def pressed(page) -> list[str]:
    return page.eval_on_selector_all("button[data-coherence]", "bs => bs.map(b => b.getAttribute('aria-pressed'))")


def test_a_refused_patch_leaves_the_figures_marked_out_of_date_and_no_preset_on(probe):
    page = probe.goto(PATH + "?coherence=1&latent_width=36")
    wait_text(page, "#ro-regime", report(coherence=1.0, latent_width=36).regime)
    assert pressed(page) == ["false", "false", "false", "true"]
    tokens = page.text_content("#ro-tokens")
    page.select_option("#p_w", "8")  # 8 does not divide 36 latent columns
    wait_for(page, "document.getElementById('coherence-error').textContent !== ''")
    assert page.text_content("#coherence-error").startswith("p_w = 8 must divide the latent width")
    assert_out_of_date(page, 1)
    assert pressed(page) == ["false"] * 4 and page.text_content("#ro-tokens") == tokens
    page.select_option("#p_w", "4")
    wait_for(page, "document.getElementById('coherence-error').textContent === ''")
    assert_current(page, 1)
    assert pressed(page) == ["false", "false", "false", "true"]


def test_link_values_the_controls_cannot_take_are_named_and_replaced(probe):
    page = probe.goto(PATH + "?p_t=3&frames=500&coherence=0.333&seed=2")
    note = page.text_content("#coherence-form-link-note")
    assert "p_t=3 is not one of 1, 2, 4, 8, so it is 1" in note
    assert "frames=500 is above the greatest value, 64, so it is 8" in note
    assert "coherence=0.333 falls between the slider's steps of 0.01, so it is 0.33" in note
    assert page.input_value("#p_t") == "1" and page.input_value("#frames") == "8"
    assert page.input_value("#seed") == "2"
    wait_text(page, "#ro-regime", report(coherence=0.33, seed=2).regime)
    assert "p_t=1" in page.url and "frames=8" in page.url
    probe.assert_clean()


def test_quizzes(probe):
    page = probe.goto(PATH)
    tokens = page.locator("form.quiz").nth(0)
    assert not answer_quiz(tokens, "4096").startswith("Right")
    assert answer_quiz(tokens, "2048").startswith("Right")
    for written in ("2,048", " 2,048 ", "2 048"):  # as the page itself writes it
        assert answer_quiz(tokens, written).startswith("Right"), written
    assert not answer_quiz(tokens, "4,096").startswith("Right")
    doubling = page.locator("form.quiz").nth(1)
    assert not answer_quiz(doubling, "2").startswith("Right")
    assert answer_quiz(doubling, "4").startswith("Right")
    assert answer_quiz(doubling, "4x").startswith("Right") and answer_quiz(doubling, "4 ×").startswith("Right")
    assert not answer_quiz(doubling, "2x").startswith("Right")
    probe.assert_clean()
