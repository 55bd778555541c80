"""The denoising-walk page in headless Chromium: the walk, the schedule, the probe slider, presets and the quiz."""

import pytest

from tests.helpers.browser import answer_quiz, assert_current, assert_out_of_date, get_json, wait_for, wait_text

pytestmark = pytest.mark.browser

PATH = "/instruments/denoising"
WALK_LEN = "document.getElementById('denoising-path').data[1].x.length"


def api(live_server, **params):
    return get_json(live_server, "/api/v1/instruments/denoising", **params)


def test_loads_with_the_snippets_printout_and_no_errors(probe, live_server):
    page = probe.goto(PATH)
    expected = api(live_server)
    wait_text(page, "#printout", "\n".join(expected["printout"]))
    assert page.evaluate(WALK_LEN) == 41
    assert page.text_content("#ro-abar") == "0.189 → 0.999"
    assert page.text_content("#ro-signal") == "0.6" and page.text_content("#ro-noise") == "0.8"
    probe.assert_clean()


def test_signal_fraction_slider_moves_the_coefficients_and_the_cloud(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-signal", "0.6")
    cloud = "document.getElementById('denoising-path').data[0].x"
    before = page.evaluate(cloud)
    page.fill("#signal_fraction", "0.64")
    wait_text(page, "#ro-signal", "0.8")
    assert page.text_content("#ro-noise") == "0.6"
    assert page.evaluate(cloud) != before
    assert "signal_fraction=0.64" in page.url
    probe.assert_clean()


def test_deep_link_restores_state_and_computed_readouts(probe, live_server):
    query = {"target_x": -2, "target_y": 1, "steps": 4, "beta_start": 0.2, "beta_end": 0.5, "seed": 3, "eps_error": 0.3}
    page = probe.goto(PATH + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
    expected = api(live_server, **query)
    wait_text(page, "#printout", "\n".join(expected["printout"]))
    assert page.evaluate(WALK_LEN) == 5
    assert page.input_value("#steps") == "4" and page.input_value("#eps_error") == "0.3"
    assert page.text_content("#ro-l2") == f"{expected['l2_error']:.4f}".rstrip("0").rstrip(".")
    probe.assert_clean()


def test_presets_and_a_refused_schedule(probe):
    page = probe.goto(PATH)
    wait_text(page, "#ro-signal", "0.6")
    page.click("button[data-preset='ddpm']")
    wait_for(page, f"{WALK_LEN} === 1001")
    assert page.input_value("#steps") == "1000" and "steps=1000" in page.url
    page.click("button[data-preset='snippet']")
    wait_for(page, f"{WALK_LEN} === 41")
    probe.assert_clean()
    assert_current(page, 2)
    printout = page.text_content("#printout")
    page.fill("#beta_start", "0.1")
    wait_for(page, "document.getElementById('denoising-error').textContent !== ''")
    assert page.text_content("#denoising-error") == "beta_end must be larger than beta_start (0.1)"
    assert_out_of_date(page, 2)  # the readouts and charts, and the printout below them
    assert page.text_content("#printout") == printout
    page.fill("#beta_start", "0.001")
    wait_for(page, "document.getElementById('denoising-error').textContent === ''")
    assert_current(page, 2)
    assert all("422" in e for e in probe.console_errors)  # Chromium logs the refused request itself, nothing else


def test_quiz(probe):
    page = probe.goto(PATH)
    quiz = page.locator("form.quiz")
    assert not answer_quiz(quiz, "0.8").startswith("Right")
    assert answer_quiz(quiz, "0.6").startswith("Right")
    assert answer_quiz(quiz, " 0,6 ").startswith("Right")  # a decimal comma
    assert not answer_quiz(quiz, "0,8").startswith("Right")
    probe.assert_clean()
