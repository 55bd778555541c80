"""bench/gpu_check.py runs to completion without a GPU (CUDA checks skipped with their reason) and its record holds."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from app.pipelines.image import Pipeline
from app.world.scenes import render, sample_scenes, to_uint8
from bench.gpu_check import Budget, check_sampling, compare, run_check
from tests.helpers.models import REPO_ROOT

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def record(tiny_model_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu-check") / "gpu_check.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "--device", "cpu", "--quick", "--model-dir",
                           str(tiny_model_dir), "--json", str(out)], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_the_cpu_run_records_every_check_and_skips_the_cuda_ones_with_a_reason(record):
    checks = record["checks"]
    assert set(checks) == {"sampling", "compiled", "autocast", "cpu_vs_cuda"}
    assert record["machine"]["device"] == "cpu"
    for name in ("compiled", "cpu_vs_cuda"):
        assert checks[name]["status"] == "skipped"
        assert "needs CUDA" in checks[name]["reason"]
    assert checks["autocast"]["dtypes"]["float16"]["status"] == "skipped"
    assert record["settings"] | {"steps": 3, "batches": [1, 2], "prompts": 4} == record["settings"]
    assert record["started_utc"] <= record["finished_utc"]


def test_sampling_is_timed_per_batch_for_images_and_clips(record):
    families = record["checks"]["sampling"]["families"]
    assert set(families) == {"image", "video"}
    for family in families.values():
        cells = family["cells"]
        assert [c["batch"] for c in cells] == [1, 2]
        for c in cells:
            assert 0 < c["best_s"] <= c["median_s"]
            assert c["per_second"] == pytest.approx(c["batch"] / c["median_s"])
            assert c["s_per_item"] == pytest.approx(c["median_s"] / c["batch"])


def test_bf16_autocast_is_compared_with_fp32_on_the_evaluation_prompts(record):
    bf16 = record["checks"]["autocast"]["dtypes"]["bfloat16"]
    assert bf16["images"] == 4
    assert 0 <= bf16["mean_abs_pixel_diff"] <= bf16["p99_abs_pixel_diff"] <= bf16["max_abs_pixel_diff"] <= 255
    assert bf16["verdicts_identical"] == (bf16["verdicts_changed"] == 0)
    assert bf16["status"] == ("ok" if bf16["verdicts_identical"] else "verdicts changed")
    assert len(bf16["adherence_all"]) == 2 and all(0 <= a <= 1 for a in bf16["adherence_all"])


def scenes_as_uint8(seed: int) -> np.ndarray:
    return to_uint8(render(sample_scenes(6, np.random.default_rng(seed))))


def test_compare_reads_the_pixels_and_the_judges_verdicts():
    a, b = scenes_as_uint8(0), scenes_as_uint8(1)
    same = compare(a, a.copy())
    assert (same["max_abs_pixel_diff"], same["verdicts_changed"], same["verdicts_identical"]) == (0, 0, True)
    mixed = np.concatenate([a[:3], b[3:]])  # the last three pictures are other scenes
    other = compare(a, mixed)
    assert other["max_abs_pixel_diff"] > 40
    assert other["verdicts_changed"] >= 1 and set(other["changed_images"]) <= {3, 4, 5}
    assert not other["verdicts_identical"]


def test_a_spent_budget_skips_the_cells_instead_of_running_them(tiny_model_dir):
    image = Pipeline.load(tiny_model_dir, "cpu")
    out = check_sampling(image, None, [1, 8], steps=2, repeats=1, budget=Budget(0))
    cells = out["families"]["image"]["cells"]
    assert [(c["batch"], c["status"], c["reason"]) for c in cells] == [(1, "skipped", "time budget spent"),
                                                                         (8, "skipped", "time budget spent")]
    assert out["video"]["status"] == "skipped"


def test_a_check_that_raises_is_recorded_as_an_error_and_the_rest_go_on():
    record = {"checks": {}}
    run_check("broken", lambda: {"status": "ok", "value": 1 / 0}, record)
    run_check("fine", lambda: {"status": "ok"}, record)
    assert record["checks"]["broken"]["status"] == "error"
    assert record["checks"]["broken"]["error"].startswith("ZeroDivisionError")
    assert record["checks"]["fine"]["status"] == "ok"
