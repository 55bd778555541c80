"""GET /api/v1/benchmarks/scaling serves bench/results/scaling.json as recorded; the fits bench/scaling.py reports.

Every test writes its own small record (tests/scaling_data.py) in a temporary folder: nothing here depends on the
real measurement, and nothing is timed.
"""

import json
import math

import pytest
from fastapi.testclient import TestClient

from app.config import REPO_ROOT, Settings
from app.main import create_app
from app.measure.fits import linear_fit, local_exponents, loglog_fit, loglog_slope
from app.web.benchmarks import SCALING_FILE, ScalingUnavailable, read_scaling
from app.web.schemas import ScalingResult
from bench.scaling import parse_args
from tests.helpers import scaling_data as data
from tests.helpers.models import settings_for_tests

URL = "/api/v1/benchmarks/scaling"


def client_for(results_dir):
    return TestClient(create_app(settings_for_tests(bench_results_dir=results_dir)))


# ---------------------------------------------------------------- the fits, on exact data


@pytest.mark.parametrize("k, c", [(1.0, 1.0), (1.5, 3.0), (2.0, 0.25), (0.5, 7.0), (-1.0, 2.0)])
def test_loglog_slope_recovers_the_exponent_of_an_exact_power_law(k, c):
    xs = [16, 64, 256, 1024]
    ys = [c * x**k for x in xs]
    assert loglog_slope(xs, ys) == pytest.approx(k, abs=1e-12)
    assert loglog_fit(xs, ys) == pytest.approx((k, c), rel=1e-12)
    assert local_exponents(xs, ys)[0] is None
    assert local_exponents(xs, ys)[1:] == pytest.approx([k] * 3, abs=1e-12)


def test_loglog_slope_of_two_points_and_of_a_quadratic():
    assert loglog_slope([10, 100], [2.0, 200.0]) == pytest.approx(2.0, abs=1e-12)
    assert loglog_slope([1, 2, 4, 8], [1, 4, 16, 64]) == pytest.approx(2.0, abs=1e-12)


@pytest.mark.parametrize("xs, ys", [([1, 1], [1, 2]), ([1], [1]), ([1, 2], [1, 0]), ([0, 2], [1, 2]),
                                    ([1, 2], [1, -2]), ([1, 2], [1, math.inf]), ([1, 2, 3], [1, 2])])
def test_loglog_fit_refuses_what_has_no_slope(xs, ys):
    with pytest.raises(ValueError):
        loglog_fit(xs, ys)


def test_linear_fit_recovers_a_fixed_cost_and_a_cost_per_step():
    xs = [5, 10, 20, 50]
    assert linear_fit(xs, [0.03 + 0.009 * x for x in xs]) == pytest.approx((0.03, 0.009), abs=1e-12)


def test_the_benchmarks_sections_report_the_laws_of_exact_timings():
    rec = ScalingResult.model_validate(data.scaling_record())
    assert [r.steps for r in rec.steps.rows] == data.STEPS and rec.steps.batch == 1
    assert (rec.steps.fit.fixed_s, rec.steps.fit.per_unit_s) == pytest.approx((data.STEP_FIXED_S, data.STEP_S))
    assert (rec.batch.fit.fixed_s, rec.batch.fit.per_unit_s) == pytest.approx((data.BATCH_FIXED_S, data.IMAGE_S))
    assert [r.median_s_per_batch for r in rec.batch.rows] == pytest.approx([0.12 + 0.08 * b for b in data.BATCHES])
    per_batch = [r.median_s_per_batch for r in rec.batch.rows]
    assert [r.median_s_per_image * r.batch for r in rec.batch.rows] == pytest.approx(per_batch)
    assert rec.batch.rows[0].speedup == 1 and rec.batch.rows[-1].speedup == pytest.approx(0.2 / ((0.12 + 1.28) / 16))
    res = rec.resolution
    assert [r.resolution for r in res.rows] == data.RESOLUTIONS
    assert [r.latent_size for r in res.rows] == [4, 8, 16, 32] and [r.tokens for r in res.rows] == [16, 64, 256, 1024]
    assert res.reference_resolution == 64 and res.dit_batch == 2 and res.dit_weights == "random"
    assert res.dit_power.exponent == pytest.approx(data.DIT_K) and res.dit_power.prefactor == pytest.approx(data.DIT_C)
    assert res.vae_power.exponent == pytest.approx(data.VAE_K) and res.vae_power.prefactor == pytest.approx(data.VAE_C)
    assert [r.dit_ratio for r in res.rows] == pytest.approx([(n / 64) ** data.DIT_K for n in (16, 64, 256, 1024)])
    assert [r.vae_ratio for r in res.rows] == pytest.approx([0.25, 1, 4, 16])
    assert res.rows[0].dit_local_exponent is None
    assert [r.dit_local_exponent for r in res.rows[1:]] == pytest.approx([data.DIT_K] * 3)


def test_the_benchmark_command_line_quick_and_full():
    quick, full = parse_args(["--quick", "--json", "/tmp/x.json"]), parse_args(["--repeats", "3"])
    assert quick.quick and len(quick.resolutions) >= 2 and 64 in quick.resolutions and quick.repeats <= 2
    assert full.steps == [5, 10, 20, 50] and full.batches == [1, 2, 4, 8, 16] and full.batch_steps == 20
    assert full.resolutions == [32, 64, 128, 256] and full.repeats == 3
    assert full.json == REPO_ROOT / "bench" / "results" / SCALING_FILE
    assert parse_args(["--quick", "--steps", "3"]).steps == [3]  # an explicit value wins over the profile


# ---------------------------------------------------------------- the endpoint


def test_the_recorded_file_is_served_as_recorded(tmp_path):
    recorded = data.write_scaling(tmp_path)
    with client_for(tmp_path) as client:
        response = client.get(URL)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == recorded
    assert body["machine"]["cpu"] == "Fixture CPU @ 1.00GHz" and body["command"].startswith("python bench/scaling.py")
    assert [r["median_s_per_image"] for r in body["steps"]["rows"]] == \
        pytest.approx([0.03 + 0.009 * s for s in data.STEPS])
    assert body["resolution"]["dit_power"]["exponent"] == pytest.approx(1.25)


def test_an_absent_file_is_a_404_that_says_why_and_how_to_record_one(tmp_path):
    with client_for(tmp_path / "nothing-here") as client:
        response = client.get(URL)
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert "absent" in detail and "python bench/scaling.py" in detail and "DIFFUSION_LAB_BENCH_RESULTS_DIR" in detail
    assert str(tmp_path) not in detail  # the server's own paths stay private


@pytest.mark.parametrize("content, says", [
    ("{not json", "could not be read"),
    ("[]", "not a scaling record"),
    (json.dumps({"format": 1}), "not a scaling record"),
])
def test_an_unreadable_file_is_a_503_with_the_reason_not_a_500(tmp_path, content, says):
    (tmp_path / SCALING_FILE).write_text(content)
    with client_for(tmp_path) as client:
        response = client.get(URL)
    assert response.status_code == 503 and says in response.json()["detail"]


def test_a_record_of_another_shape_or_format_is_a_503(tmp_path):
    record = data.scaling_record()
    record["steps"]["rows"][0]["median_s_per_image"] = -1.0
    data.write_scaling(tmp_path, record)
    with client_for(tmp_path) as client:
        response = client.get(URL)
    assert response.status_code == 503 and "steps.rows.0.median_s_per_image" in response.json()["detail"]
    data.write_scaling(tmp_path, {**data.scaling_record(), "format": 99})
    with pytest.raises(ScalingUnavailable) as err:
        read_scaling(tmp_path)
    assert err.value.status == 503 and "format 99" in err.value.reason


def test_the_operation_is_documented_with_its_errors(client):
    op = client.get("/openapi.json").json()["paths"][URL]["get"]
    assert {"200", "404", "503"} <= set(op["responses"])
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScalingResult")


def test_the_results_folder_defaults_to_the_checkouts_bench_results():
    assert Settings(load_model=False).bench_results_dir == REPO_ROOT / "bench" / "results"


# ---------------------------------------------------------------- the page


def test_the_page_names_the_command_and_asks_only_when_there_is_a_record(tmp_path):
    data.write_scaling(tmp_path / "with")
    with client_for(tmp_path / "with") as client:
        page = client.get("/benchmarks")
        index = client.get("/")
    assert page.status_code == 200
    assert 'data-recorded="true"' in page.text and "python bench/scaling.py" in page.text
    assert "not live" in page.text and "/static/js/benchmarks.js" in page.text
    assert 'href="/benchmarks"' in index.text
    with client_for(tmp_path / "without") as client:
        page = client.get("/benchmarks")
    assert page.status_code == 200
    assert 'data-recorded="false"' in page.text and 'id="scaling-missing"' in page.text


def test_the_benchmark_runs_end_to_end_on_a_tiny_model_and_the_api_serves_its_file(tiny_model_dir, tmp_path):
    """A smoke run (tiny random model, one repeat, one thread): the file it writes is what the endpoint serves."""
    from bench.scaling import main

    out = tmp_path / "results" / SCALING_FILE
    assert main(["--model-dir", str(tiny_model_dir), "--steps", "1", "2", "--batches", "1", "2", "--batch-steps", "1",
                 "--resolutions", "16", "32", "--repeats", "1", "--budget", "1", "--threads", "1",
                 "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["command"].startswith("python bench/scaling.py --model-dir ")
    assert written["machine"]["threads"] == 1 and written["machine"]["cores"] >= 1
    assert [r["resolution"] for r in written["resolution"]["rows"]] == [16, 32]
    assert written["resolution"]["reference_resolution"] == 32  # the tiny model's own resolution
    assert [r["batch"] for r in written["batch"]["rows"]] == [1, 2]
    with client_for(out.parent) as client:
        assert client.get(URL).json() == written
