"""Which recorded benchmark figure stands beside a live timing: only one that timed the same computation."""

import json

import pytest

from app.web.recorded_timings import SCALING_FILE, VIDEO_FILE, scaling_forward, video_forward
from tests.helpers.models import REPO_ROOT

COMMITTED = REPO_ROOT / "bench" / "results"
SCALING = json.loads((COMMITTED / SCALING_FILE).read_text())
VIDEO = json.loads((COMMITTED / VIDEO_FILE).read_text())
DIT = SCALING["model"]["dit"]  # the committed denoiser's configuration, which the record timed


def test_the_served_latent_forward_gets_the_row_at_its_token_count():
    figure, note = scaling_forward(COMMITTED, DIT, 2, 64, 4, 1)
    [row] = [r for r in SCALING["resolution"]["rows"] if r["tokens"] == 64]
    assert (figure.median_ms, figure.best_ms, figure.load_average) == (row["dit_median_ms"], row["dit_best_ms"],
                                                                        row["load_average"])
    assert (figure.file, figure.recorded_at, figure.command) == (SCALING_FILE, SCALING["recorded_at"],
                                                                 SCALING["command"])
    assert figure.threads == SCALING["machine"]["threads"] and SCALING["machine"]["cpu"] in figure.machine
    assert note == figure.basis and "64 tokens, 2 rows" in note and "only its first and last layer" not in note


def test_a_pixel_forward_says_where_it_differs_from_the_recorded_one():
    figure, note = scaling_forward(COMMITTED, DIT, 2, 1024, 3, 2)
    assert figure.median_ms == next(r["dit_median_ms"] for r in SCALING["resolution"]["rows"] if r["tokens"] == 1024)
    assert "3-channel patches of 2 × 2, so only its first and last layer differ" in note


@pytest.mark.parametrize("dit, batch, tokens, reason", [
    ({**DIT, "width": 32}, 2, 64, "another configuration (width differ"),
    (DIT, 1, 64, "timed batches of 2, not 1"),
    (DIT, 2, 4096, "has no row at 4,096 tokens (it has 16, 64, 256, 1,024)"),
])
def test_no_figure_is_shown_for_another_computation(dit, batch, tokens, reason):
    figure, note = scaling_forward(COMMITTED, dit, batch, tokens, 4, 1)
    assert figure is None and reason in note


def test_an_absent_or_quick_record_is_no_figure(tmp_path):
    figure, note = scaling_forward(tmp_path, DIT, 2, 64, 4, 1)
    assert figure is None and f"bench/results/{SCALING_FILE} is absent" in note
    (tmp_path / SCALING_FILE).write_text(json.dumps({**SCALING, "quick": True}))
    figure, note = scaling_forward(tmp_path, DIT, 2, 64, 4, 1)
    assert figure is None and "--quick smoke run" in note


def test_the_video_record_matches_frames_kind_tokens_and_parameters(tmp_path):
    [row] = [r for r in VIDEO["forward"] if (r["frames"], r["attention"]) == (8, "joint")]
    figure, note = video_forward(COMMITTED, "joint", 8, row["tokens"], row["parameters"])
    assert (figure.median_ms, figure.best_ms, figure.threads) == (row["median_ms"], row["best_ms"], VIDEO["threads"])
    assert figure.recorded_at is None and "CPU and cores not recorded in the file" in figure.machine
    assert "2 rows" in note and "8 frames" in note
    assert video_forward(COMMITTED, "joint", 6, row["tokens"], row["parameters"])[1].endswith(
        "has no joint row at 6 frames (it has 2, 4, 8)")
    figure, note = video_forward(COMMITTED, "joint", 8, row["tokens"], 1234)
    assert figure is None and "timed another network" in note
    (tmp_path / VIDEO_FILE).write_text("{not json")
    figure, note = video_forward(tmp_path, "joint", 8, row["tokens"], row["parameters"])
    assert figure is None and "could not be read" in note
