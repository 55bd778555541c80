"""The guidance page in headless Chromium: live readouts, charts, deep links, presets and quizzes."""

import pytest

from tests.helpers.browser import (
    answer_quiz,
    assert_current,
    assert_out_of_date,
    assert_right_axis_readable,
    get_json,
    wait_for,
    wait_text,
)

pytestmark = pytest.mark.browser

PATH = "/instruments/guidance"
GUIDED_X = "document.getElementById('guidance-scatter').data[1].x"


def api(live_server, **params):
    return get_json(live_server, "/api/v1/instruments/guidance", **params)


def test_loads_with_readouts_charts_and_no_errors(probe, live_server):
    page = probe.goto(PATH)
    expected = api(live_server, scale=7.5, seed=0)
    wait_text(page, "#ro-regime", expected["regime"])
    assert page.text_content("#ro-guided") == "2.45"
    assert page.evaluate(f"{GUIDED_X}.length") == 256
    assert page.locator("#snippet-rows tr").count() == 5
    assert page.evaluate("document.getElementById('guidance-curve').data[0].x.length") == 11
    probe.assert_clean()


def test_slider_changes_the_samples_and_the_readouts(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-regime", "sweet spot")
    before = page.evaluate(GUIDED_X)
    page.fill("#scale", "1")
    wait_text(page, "#ro-regime", "conditional")
    assert page.evaluate(GUIDED_X) != before
    assert "scale=1" in page.url
    page.locator("#scale").press("ArrowLeft")  # 1 -> 0.5: a scale off the slider's start, sampled fresh
    wait_text(page, "output[for=scale]", "0.5")
    wait_text(page, "#ro-regime", "ignores the prompt")
    assert page.locator("#snippet-rows tr").count() == 6  # the snippet's five scales plus yours
    probe.assert_clean()


def test_deep_link_restores_state_and_computed_readouts(probe, live_server):
    page = probe.goto(f"{PATH}?scale=20&seed=3&prompt_class=blue&samples=128&eps_uncond=0.1&eps_cond=0.3")
    expected = api(live_server, scale=20, seed=3, prompt_class="blue", samples=128, eps_uncond=0.1, eps_cond=0.3)
    wait_text(page, "#ro-regime", "over-saturated")
    assert page.input_value("#scale") == "20" and page.input_value("#prompt_class") == "blue"
    assert page.text_content("#ro-adherence") == f"{100 * expected['adherence']:.1f}".rstrip("0").rstrip(".")
    assert page.text_content("#ro-guided") == "4.1"  # 0.1 + 20 * (0.3 - 0.1)
    assert page.evaluate(f"{GUIDED_X}.length") == 128
    probe.assert_clean()


def test_preset_button_and_error_message(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-regime", "sweet spot")
    page.click("button[data-scale='0']")
    wait_text(page, "#ro-regime", "ignores the prompt")
    assert page.input_value("#scale") == "0" and "scale=0" in page.url
    probe.assert_clean()
    assert_current(page, 2)
    page.fill("#seed", "-4")
    wait_for(page, "document.getElementById('guidance-error').textContent !== ''")
    assert page.text_content("#guidance-error") == "seed: Input should be greater than or equal to 0"
    assert_out_of_date(page, 2)  # the readouts and charts, and the snippet's table
    assert page.text_content("#ro-regime") == "ignores the prompt"
    page.fill("#seed", "4")
    wait_for(page, "document.getElementById('guidance-error').textContent === ''")
    assert_current(page, 2)
    assert all("422" in e for e in probe.console_errors)  # Chromium logs the refused request itself, nothing else


def test_the_right_axis_has_round_ticks_clear_of_its_title(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-regime", "sweet spot")
    assert_right_axis_readable(page, "guidance-curve")
    probe.assert_clean()


def test_quizzes(probe):
    page = probe.goto(PATH)
    guided, tradeoff = page.locator("form.quiz").nth(0), page.locator("form.quiz").nth(1)
    assert not answer_quiz(guided, "2.25").startswith("Right")
    assert answer_quiz(guided, "2.45").startswith("Right")
    assert not answer_quiz(tradeoff, "false").startswith("Right")
    assert answer_quiz(tradeoff, "true").startswith("Right")
    probe.assert_clean()
