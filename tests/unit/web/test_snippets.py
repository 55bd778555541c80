"""The pages' runnable snippets, run as the browser runs them (tests/helpers/snippets.py): the chapter's figures, the
server's numbers for the same parameters, and the failure each suggested break shows."""

import math

import numpy as np
import pytest

from app.config import Settings
from app.instruments import denoising as dn
from app.instruments import guidance as g
from app.web.snippets import CFG_NORMS, DENOISING_WALK, Snippet
from tests.helpers.snippets import run_code
from tests.unit.instruments import test_denoising_instrument, test_guidance_instrument

STATIC = Settings().static_dir
SNIPPETS = (DENOISING_WALK, CFG_NORMS)
CHAPTER_CODE = {DENOISING_WALK: test_denoising_instrument.SNIPPET, CFG_NORMS: test_guidance_instrument.SNIPPET}


def run(snippet: Snippet, code: str | None = None):
    return run_code(snippet.code(STATIC) if code is None else code, snippet.file, snippet.report)


def edited(snippet: Snippet, find: str, replace: str) -> str:
    code = snippet.code(STATIC)
    assert code.count(find) == 1, f"{find!r} is not once in {snippet.file}"
    return code.replace(find, replace)


def broken(snippet: Snippet, label: str):
    (change,) = [b for b in snippet.breaks if b.label == label]
    return run(snippet, edited(snippet, change.find, change.replace)), change


# ---------------------------------------------------------------- our code, the chapter's figures


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.file)
def test_our_code_shares_no_line_with_the_chapters_but_the_import(snippet):
    ours = {line.strip() for line in snippet.code(STATIC).splitlines() if line.strip()}
    chapters = {line.strip() for line in CHAPTER_CODE[snippet].splitlines() if line.strip()}
    assert ours & chapters == {"import numpy as np"}


def test_the_denoising_walk_prints_the_chapters_figures():
    ran = run(DENOISING_WALK)
    assert ran.ok and ran.stream("stderr") == ""
    lines = ran.stream("stdout").splitlines()
    assert len(lines) == 4
    assert lines[0].endswith(": [ 1.5 -0.8]") and lines[1].endswith(": [ 1.5 -0.8]")  # target, where the walk ended
    assert lines[2].endswith(": 0.0")  # L2 error
    assert "0.189" in lines[3] and lines[3].endswith("0.999")  # alpha_bar where the walk starts, at its last step


@pytest.mark.parametrize(("target", "T", "beta", "seed"), [
    ((1.5, -0.8), 40, (0.001, 0.08), 0), ((-2.0, 1.0), 4, (0.2, 0.5), 3), ((0.3, 2.9), 1000, (1e-4, 0.02), 11),
])
def test_the_denoising_walk_is_the_servers_walk_number_for_number(target, T, beta, seed):
    code = (edited(DENOISING_WALK, "seed = 0", f"seed = {seed}")
            .replace("np.array([1.5, -0.8])", f"np.array([{target[0]}, {target[1]}])")
            .replace("T = 40", f"T = {T}")
            .replace("np.linspace(0.001, 0.08, T)", f"np.linspace({beta[0]}, {beta[1]}, T)"))
    values = run(DENOISING_WALK, code).values
    walk = dn.denoising_walk(target, T, beta[0], beta[1], seed)
    assert values["x"] == walk.recovered.tolist()  # the same operations in the same order: equal to the last bit
    assert values["alpha_bar"] == walk.abar.tolist()
    assert (values["T"], values["seed"], values["target"]) == (T, seed, list(target))


def test_the_cfg_table_prints_the_chapters_figures_and_plots_its_norms():
    ran = run(CFG_NORMS)
    assert ran.ok
    rows = [line.split() for line in ran.stream("stdout").splitlines()[1:6]]
    assert [row[0] for row in rows] == ["0.0", "1.0", "3.0", "7.5", "15.0"]
    assert [row[-1] for row in rows] == ["0.229", "0.585", "1.556", "3.797", "7.543"]
    assert " ".join(rows[3][1:-1]) == "[2.45 2.9 0.05]"
    (plot,) = ran.posted("plot")
    assert plot["xs"] == [0.0, 1.0, 3.0, 7.5, 15.0]
    assert plot["ys"] == [row["norm"] for row in g.cfg_table(g.SNIPPET_EPS_UNCOND, g.SNIPPET_EPS_COND, plot["xs"])]
    assert ran.values["norms"] == plot["ys"]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.file)
def test_every_value_the_page_compares_is_defined_by_our_code(snippet):
    values = run(snippet).values
    assert set(values) == set(snippet.report) and None not in values.values()


# ---------------------------------------------------------------- break it on purpose


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.file)
def test_every_break_edits_our_code_in_one_place_and_names_its_failure(snippet):
    assert len(snippet.breaks) >= 2
    for change in snippet.breaks:
        assert snippet.code(STATIC).count(change.find) == 1, change.label
        assert change.failure and change.explain and change.failure not in change.label


def test_an_alpha_bar_of_zero_turns_the_walk_into_nan():
    ran, _ = broken(DENOISING_WALK, "End the schedule at ᾱ = 0")
    assert ran.ok  # (CPython's numpy warns of the 0/0; in the browser WebAssembly has no floating-point flags to see)
    assert ran.values["alpha_bar"][-1] == 0.0 and ran.values["x"] == ["nan", "nan"]
    assert "[nan nan]" in ran.stream("stdout")


def test_a_denoiser_that_sees_no_noise_ends_far_from_the_target():
    ran, _ = broken(DENOISING_WALK, "Give the oracle a wrong ε")
    assert ran.ok
    assert math.dist(ran.values["x"], ran.values["target"]) > 8


def test_a_gentle_schedule_starts_near_the_data_yet_the_oracle_still_lands():
    ran, _ = broken(DENOISING_WALK, "Make the schedule too gentle")
    assert round(ran.values["alpha_bar"][-1], 3) == 0.959
    assert ran.values["x"] == dn.denoising_walk((1.5, -0.8), 40, 1e-4, 2e-3, 0).recovered.tolist()


def test_s_30_adds_a_row_fifteen_long():
    ran, _ = broken(CFG_NORMS, "Use s = 30")
    assert ran.stream("stdout").splitlines()[6].split()[-1] == "15.042"
    assert ran.values["norms"][-1] == g.cfg_table(g.SNIPPET_EPS_UNCOND, g.SNIPPET_EPS_COND, [30.0])[0]["norm"]


def test_a_caption_that_changes_nothing_flattens_every_row():
    ran, _ = broken(CFG_NORMS, "Let the caption change nothing")
    assert len(set(ran.values["norms"])) == 1


def test_starting_from_the_conditional_estimate_is_one_step_off():
    ran, _ = broken(CFG_NORMS, "Start from ε_c instead of ε_∅")
    server = [row["norm"] for row in g.cfg_table(g.SNIPPET_EPS_UNCOND, g.SNIPPET_EPS_COND, np.add(g.SNIPPET_SCALES, 1))]
    np.testing.assert_allclose(ran.values["norms"], server, rtol=1e-12)  # s really computes what s + 1 should
    assert ran.values["norms"][0] != pytest.approx(0.229, abs=1e-3)
