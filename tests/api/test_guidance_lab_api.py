"""The guidance lab's endpoints through the tiny random model: grid, live sweep, one step taken apart, measured
latent-vs-pixel timing; their 422s, the 429 of a full queue and the 503 without a model."""

import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.diffusion.samplers import timesteps_for
from app.main import create_app
from app.measure.image import full_prompts, pairwise_rms
from app.pipelines.image import GenerationSettings
from app.service.imaging import decode_png, from_base64
from app.web.state import state_of
from tests.helpers.models import REPO_ROOT, model_settings

GRID, SWEEP, GUIDANCE = "/api/v1/generate/grid", "/api/v1/generate/sweep", "/api/v1/generate/guidance"
MEASURED, GENERATE = "/api/v1/instruments/compression/measured", "/api/v1/generate"


pytestmark = pytest.mark.usefixtures("one_thread")


def pixels(b64: str) -> np.ndarray:
    return decode_png(from_base64(b64))


# ---------------------------------------------------------------------------------------------- the grid


def test_the_grid_has_a_column_per_scale_and_a_row_per_seed(model_client):
    r = model_client.post(GRID, json={"prompt": "a red circle", "scales": [0, 1, 7.5], "seeds": [3, 11], "steps": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seeds"] == [3, 11] and body["prompt_canonical"] == "a red circle"
    assert [c["scale"] for c in body["columns"]] == [0, 1, 7.5]
    for column in body["columns"]:
        assert [im["seed"] for im in column["images"]] == [3, 11]
        assert set(column["adherence"]) == {"shape", "colour", "clean", "all"}  # what the prompt names, and more
        assert all(0 <= v <= 1 for v in column["adherence"].values())
        images = np.stack([pixels(im["png_base64"]) for im in column["images"]])
        assert images.shape == (2, 32, 32, 3)
        assert column["diversity_rms"] == pytest.approx(pairwise_rms(images), abs=1e-9)  # the card's measure
    t = body["timings"]
    assert t["network_forwards"] == 4 and t["batch_jobs"] >= 1 and t["total_s"] >= t["sampling_s"]


def test_a_grid_cell_is_the_image_post_generate_draws(model_client):
    grid = model_client.post(GRID, json={"prompt": "a blue square", "scales": [1, 5], "seeds": [7], "steps": 4})
    alone = model_client.post(GENERATE, json={"prompt": "a blue square", "guidance_scale": 5, "seed": 7, "steps": 4})
    cell = pixels(grid.json()["columns"][1]["images"][0]["png_base64"]).astype(int)
    assert np.abs(cell - pixels(alone.json()["images"][0]["png_base64"])).max() <= 2  # batched rounding only
    other = pixels(grid.json()["columns"][0]["images"][0]["png_base64"]).astype(int)
    assert np.abs(cell - other).mean() > 0.5  # the scale changed the picture


def test_a_seed_count_counts_up_from_seed(model_client):
    body = model_client.post(GRID, json={"prompt": "", "scales": [1], "seeds": 3, "seed": 40, "steps": 2}).json()
    assert body["seeds"] == [40, 41, 42]
    assert body["columns"][0]["adherence"] == {"clean": pytest.approx(body["columns"][0]["adherence"]["all"]),
                                               "all": body["columns"][0]["adherence"]["all"]}
    default = model_client.post(GRID, json={"prompt": "a square", "steps": 1}).json()
    assert [c["scale"] for c in default["columns"]] == [0, 1, 3, 5, 7.5, 10, 15] and len(default["seeds"]) == 4


@pytest.mark.parametrize("change,field", [
    ({"scales": [1] * 9}, "scales"),
    ({"scales": []}, "scales"),
    ({"scales": [20.5]}, "scales"),
    ({"scales": [-1]}, "scales"),
    ({"scales": ["x"]}, "scales"),
    ({"seeds": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, "seeds"),
    ({"seeds": [4, 4]}, "seeds"),
    ({"seeds": 0}, "seeds"),
    ({"seeds": [1, 2, 3, 4, 5], "scales": [0, 1, 2, 3, 4, 5, 6]}, "seeds"),  # 35 images
    ({"seeds": 8, "scales": [1, 2, 3, 4, 5]}, "seeds"),  # 40 images
    ({"seeds": 4, "seed": 2**31 - 2}, "seed"),
    ({"steps": 51}, "steps"),  # the test server's DIFFUSION_LAB_MAX_STEPS is 50
    ({"steps": 0}, "steps"),
    ({"sampler": "euler"}, "sampler"),
    ({"prompt": "a red star"}, "prompt"),
    ({"negative_prompt": "a red star"}, "negative_prompt"),
    ({"colour": "red"}, "colour"),
])
def test_bad_grid_fields_are_422_naming_the_field(model_client, change, field):
    r = model_client.post(GRID, json={"prompt": "a red circle", "steps": 2, **change})
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"][0]["loc"], r.json()


def test_non_finite_scales_are_422_not_500(model_client):
    r = model_client.post(GRID, content=b'{"prompt": "a red circle", "scales": [NaN]}',
                          headers={"content-type": "application/json"})
    assert r.status_code == 422 and "scales" in r.json()["detail"][0]["loc"]


# ---------------------------------------------------------------------------------------------- the live sweep


def test_the_live_sweep_uses_the_cards_prompts_and_seeds(model_client):
    r = model_client.post(SWEEP, json={"prompts": 2, "seeds": 2, "scales": [0, 3], "steps": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["live"] is True and body["prompts"] == [p.canonical for p in full_prompts(2)]
    assert [p["scale"] for p in body["points"]] == [0, 3] and all(p["images"] == 4 for p in body["points"])
    for point in body["points"]:
        assert set(point["adherence"]) == {"shape", "colour", "size", "position", "clean", "all"}
        assert point["diversity_rms"] > 0


@pytest.mark.parametrize("change,field", [
    ({"prompts": 8, "seeds": 4}, "scales"),  # 96 images with the default 3 scales
    ({"prompts": 0}, "prompts"), ({"seeds": 1}, "seeds"), ({"scales": [1, 2, 3, 4, 5]}, "scales"),
    ({"steps": 51}, "steps"), ({"extra": 1}, "extra"),
])
def test_bad_sweep_fields_are_422(model_client, change, field):
    r = model_client.post(SWEEP, json={"steps": 2, **change})
    assert r.status_code == 422 and field in r.json()["detail"][0]["loc"], r.text


# ---------------------------------------------------------------------------------------------- one step, taken apart


def test_a_step_taken_apart_and_five_variants_on_one_seed(model_client, model_app):
    body = {"prompt": "a green triangle", "seed": 2, "steps": 6, "guidance_scale": 4, "at_step": 3,
            "variant": "cfg", "rescale": 0.7, "interval": {"start": 0.25, "end": 0.75}}
    r = model_client.post(GUIDANCE, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    step = out["step"]
    schedule = state_of(model_app).model.pipeline.schedule
    ts = timesteps_for(schedule, 6)
    assert (step["index"], step["total"], step["t"], step["guided"]) == (3, 6, ts[3], True)
    assert [m["name"] for m in step["maps"]] == ["eps_uncond", "eps_cond", "difference", "guided"]
    maps = {m["name"]: m for m in step["maps"]}
    assert maps["difference"]["x0_png_base64"] is None and maps["guided"]["x0_png_base64"] is not None
    assert maps["eps_uncond"]["display_scale"] == maps["guided"]["display_scale"]  # one shared scale
    assert all(m["norm"] > 0 and m["rms"] == pytest.approx(m["norm"] / np.sqrt(4 * 4 * 4)) for m in step["maps"])
    assert pixels(maps["guided"]["png_base64"]).shape == (130, 130, 3)  # 2 x 2 tiles of 4 cells x 16 px, 2 px gap
    assert "s = 1 is plain conditional" in out["convention"] and "±" in out["display"]
    variants = {v["variant"]: v for v in out["variants"]}
    assert list(variants) == ["cfg", "cfg_rescale", "cfg_interval", "apg", "cfg++"]
    assert (variants["cfg++"]["sampler"], variants["cfg++"]["guidance_scale"]) == ("ddim", 0.6)
    assert variants["apg"]["guidance_method"] == "apg" and "Sadat" in variants["apg"]["source"]
    assert np.abs(pixels(variants["apg"]["png_base64"]).astype(int) - pixels(variants["cfg"]["png_base64"])).mean() > 0
    lo, hi = variants["cfg_interval"]["interval_timesteps"]
    assert (lo, hi) == (round(0.25 * 999), round(0.75 * 999))
    assert variants["cfg"]["guided_steps"] == 6 and variants["cfg_interval"]["guided_steps"] == sum(
        lo <= t <= hi for t in ts)
    assert variants["cfg_rescale"]["rescale"] == 0.7 and "σ" in variants["cfg_rescale"]["formula"]
    assert variants["cfg"]["formula"].startswith("ε̃ = ε(∅) + s·")
    alone = model_client.post(GENERATE, json={"prompt": "a green triangle", "seed": 2, "steps": 6,
                                              "guidance_scale": 4})
    cfg = pixels(variants["cfg"]["png_base64"]).astype(int)
    assert np.abs(cfg - pixels(alone.json()["images"][0]["png_base64"])).max() <= 2


def test_the_step_of_apg_and_cfg_plus_plus_can_be_taken_apart(model_client):
    for variant in ("apg", "cfg++"):
        r = model_client.post(GUIDANCE, json={"prompt": "a red circle", "steps": 4, "at_step": 1, "variant": variant})
        assert r.status_code == 200, r.text
        assert r.json()["variant"] == variant and r.json()["step"]["index"] == 1


def test_two_shape_prompts_are_judged_shape_by_shape_in_the_grid_and_the_anatomy(model_client):
    r = model_client.post(GRID, json={"prompt": "a red circle left of a blue square", "scales": [1, 5], "seeds": 2,
                                      "steps": 3})
    assert r.status_code == 200, r.text
    column = r.json()["columns"][0]
    assert set(column["adherence"]) == {"count", "binding", "relation", "all"}
    assert all(image["objects"] is not None for image in column["images"])
    anatomy = model_client.post(GUIDANCE, json={"prompt": "two red circles", "steps": 3}).json()
    assert all("count" in v["matches"] and v["objects"] is not None for v in anatomy["variants"])


def test_the_live_sweep_measures_a_two_shape_category_on_the_card_s_prompts(model_client):
    from app.measure.pairs import category_prompts

    r = model_client.post(SWEEP, json={"prompts": 2, "seeds": 2, "scales": [1, 5], "steps": 3,
                                       "category": "relation"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["category"] == "relation"
    assert out["prompts"] == [p.canonical for p in category_prompts("relation", 2)]
    assert all(set(p["adherence"]) == {"count", "binding", "relation", "all"} and p["images"] == 4
               for p in out["points"])
    bad = model_client.post(SWEEP, json={"category": "texture binding"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "category"]


def test_a_grid_with_cfg_plus_plus_needs_ddim_and_scales_up_to_one(model_client):
    ok = model_client.post(GRID, json={"prompt": "a red circle", "scales": [0.2, 1], "seeds": 1, "steps": 3,
                                       "sampler": "ddim", "guidance_method": "cfg++"})
    assert ok.status_code == 200, ok.text
    bad = model_client.post(GRID, json={"prompt": "a red circle", "scales": [0.2, 5], "seeds": 1, "steps": 3,
                                        "sampler": "ddim", "guidance_method": "cfg++"})
    [detail] = bad.json()["detail"]
    assert bad.status_code == 422 and detail["type"] == "guidance_method_needs"


def test_outside_the_interval_the_guided_estimate_is_the_conditional_one(model_client):
    r = model_client.post(GUIDANCE, json={"prompt": "a red circle", "steps": 4, "at_step": 0,
                                          "variant": "cfg_interval", "guidance_scale": 6})
    step = r.json()["step"]
    maps = {m["name"]: m for m in step["maps"]}
    assert step["t"] == 999 and step["guided"] is False  # the default interval ends at t = 799
    assert maps["guided"]["norm"] == pytest.approx(maps["eps_cond"]["norm"], rel=1e-5)
    assert maps["eps_uncond"]["norm"] > 0  # computed for the picture even though the run skipped it


@pytest.mark.parametrize("change,field", [
    ({"at_step": 4}, "at_step"), ({"variant": "cfg_pp"}, "variant"), ({"rescale": 1.5}, "rescale"),
    ({"interval": {"start": 0.9, "end": 0.1}}, "interval"), ({"interval": {"start": -0.1}}, "interval"),
    ({"guidance_scale": 21}, "guidance_scale"), ({"steps": 51}, "steps"), ({"seed": -1}, "seed"),
    ({"prompt": "a red star"}, "prompt"), ({"scale": 3}, "scale"),
])
def test_bad_guidance_fields_are_422(model_client, change, field):
    r = model_client.post(GUIDANCE, json={"prompt": "a red circle", "steps": 4, **change})
    assert r.status_code == 422 and field in r.json()["detail"][0]["loc"], r.text


# ---------------------------------------------------------------------------------------------- measured compression


def test_the_measured_forward_times_the_real_latent_against_pixels(model_client):
    first = model_client.get(MEASURED, params={"remeasure": "true"})  # whatever this process measured before
    assert first.status_code == 200, first.text
    m = first.json()
    assert (m["resolution"], m["f"], m["latent_channels"], m["ratio"], m["batch"]) == (32, 8, 4, 48.0, 2)  # 3 f^2/c_z
    assert (m["latent"]["grid"], m["latent"]["tokens"], m["latent"]["weights"]) == ([4, 4, 4], 16, "trained")
    assert [(p["patch"], p["tokens"], p["weights"]) for p in m["pixel"]] == [(2, 256, "random"), (1, 1024, "random")]
    rounds = m["conditions"]["rounds"]
    for f in [m["latent"], *m["pixel"]]:
        assert f["attention_pairs"] == f["tokens"] ** 2 and len(f["runs_ms"]) == rounds
        assert 0 < f["min_ms"] <= f["low_ms"] <= f["median_ms"] <= f["high_ms"] <= f["max_ms"]
        assert f["relative_spread"] == pytest.approx((f["high_ms"] - f["low_ms"]) / f["median_ms"])
        assert f["recorded"] is None and "another configuration" in f["recorded_note"]  # the tiny model's DiT
    assert [(s["slower"], s["faster"]) for s in m["savings"]] == [("pixels, patch 2", "latent"),
                                                                   ("pixels, patch 1", "latent")]
    assert m["savings"][1]["ratio"] == pytest.approx(m["pixel"][1]["median_ms"] / m["latent"]["median_ms"])
    conditions = m["conditions"]
    assert conditions["noisy"] == bool(conditions["noisy_reasons"]) and conditions["load_start"] >= 0
    assert m["psnr_source"] != "not measured" or m["psnr_db"] is None
    again = model_client.get(MEASURED).json()
    assert m["cached"] is False and again["cached"] is True
    assert again["latent"]["runs_ms"] == m["latent"]["runs_ms"] and again["measured_at"] == m["measured_at"]
    fresh = model_client.get(MEASURED, params={"remeasure": "true"}).json()
    assert fresh["cached"] is False and fresh["latent"]["runs_ms"] != m["latent"]["runs_ms"]
    after = model_client.get(MEASURED, params={"remeasure": "false"}).json()
    assert after["cached"] is True and after["latent"]["runs_ms"] == fresh["latent"]["runs_ms"]


@pytest.mark.parametrize("value", ["1", "yes", "True", "on", ""])
def test_remeasure_takes_only_true_or_false(model_client, value):
    r = model_client.get(MEASURED, params={"remeasure": value})
    assert r.status_code == 422
    assert [(e["loc"], e["msg"]) for e in r.json()["detail"]] == [(["query", "remeasure"],
                                                                   "Input should be a boolean, true or false")]
    assert model_client.get(MEASURED, params={"again": "true"}).status_code == 422


def test_a_record_of_the_same_forward_is_shown_beside_the_live_figure(tiny_model_dir, tmp_path):
    """bench/results/scaling.json as recorded, but for the tiny model's DiT configuration (its rows are at 16, 64,
    256 and 1,024 tokens: the tiny model's latent, and its pixels at patch 2 and 1)."""
    record = json.loads((REPO_ROOT / "bench" / "results" / "scaling.json").read_text())
    with TestClient(create_app(model_settings(tiny_model_dir, bench_results_dir=tmp_path))) as c:
        record["model"]["dit"] = state_of(c.app).model.pipeline.dit.config.to_dict()
        (tmp_path / "scaling.json").write_text(json.dumps(record))
        m = c.get(MEASURED).json()
    rows = {r["tokens"]: r for r in record["resolution"]["rows"]}
    for f in [m["latent"], *m["pixel"]]:
        assert f["recorded"]["median_ms"] == rows[f["tokens"]]["dit_median_ms"], f["label"]
        assert f["recorded"]["recorded_at"] == record["recorded_at"] and f["recorded_note"] == f["recorded"]["basis"]


# ---------------------------------------------------------------------------------------------- serving


def test_without_a_model_every_endpoint_is_503_with_retry_after(client):
    for method, path, body in (("post", GRID, {"prompt": ""}), ("post", SWEEP, {}), ("post", GUIDANCE, {"prompt": ""}),
                               ("get", MEASURED, None)):
        r = getattr(client, method)(path, **({"json": body} if body is not None else {}))
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, (path, r.text)


def test_a_full_queue_answers_the_grid_with_429(tiny_model_dir, monkeypatch):
    app = create_app(model_settings(tiny_model_dir, queue_size=1, worker_threads=1))
    with TestClient(app) as c:
        release = threading.Event()
        original = state_of(app).model.pipeline.generate_batch

        def gated(jobs, callback=None):
            assert release.wait(10)
            return original(jobs, callback)

        monkeypatch.setattr(state_of(app).model.pipeline, "generate_batch", gated)
        service = state_of(app).sampler
        held = [service.submit(GenerationSettings(prompt="", steps=1)) for _ in range(service.capacity)]
        try:
            r = c.post(GRID, json={"prompt": "a red circle", "steps": 2})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]
            for timed in (MEASURED, "/api/v1/instruments/coherence/attention?frames=2&repeats=3"):
                r = c.get(timed)  # live timings run the networks too: they wait their turn, or are refused
                assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, (timed, r.text)
        finally:
            release.set()
        for job in held:
            job.future.result(10)
        assert c.post(GRID, json={"prompt": "a red circle", "steps": 1, "scales": [1], "seeds": 1}).status_code == 200


def test_a_timing_beside_a_running_job_is_flagged_noisy(tiny_model_dir, monkeypatch):
    """With two sampler threads a generation can run while the forwards are timed: the result says so."""
    app = create_app(model_settings(tiny_model_dir, worker_threads=2))
    with TestClient(app) as c:
        started, release = threading.Event(), threading.Event()
        original = state_of(app).model.pipeline.generate_batch

        def held(jobs, callback=None):
            started.set()
            assert release.wait(30)
            return original(jobs, callback)

        monkeypatch.setattr(state_of(app).model.pipeline, "generate_batch", held)
        job = state_of(app).sampler.submit(GenerationSettings(prompt="", steps=1))
        try:
            assert started.wait(10)
            m = c.get(MEASURED, params={"remeasure": "true"}).json()
        finally:
            release.set()
        job.future.result(10)
    assert m["conditions"]["jobs_beside"] == 1 and m["conditions"]["noisy"]
    assert "1 other job(s) ran on the server at the same time" in m["conditions"]["noisy_reasons"]


def test_the_client_header_picks_the_fair_queue_line(model_client, model_app, monkeypatch):
    service, seen = state_of(model_app).sampler, []
    submit_many = service.submit_many

    def spy(parts, on_step=None, client="", generator=None):
        seen.append(client)
        return submit_many(parts, on_step, client, generator)

    monkeypatch.setattr(service, "submit_many", spy)
    body = {"prompt": "", "scales": [1], "seeds": 1, "steps": 1}
    model_client.post(GRID, json=body, headers={"X-Client-Id": "lab-42"})
    model_client.post(GRID, json=body)
    assert seen == ["id:lab-42", "ip:testclient"]


def test_judging_and_timing_run_on_the_sampler_thread(model_client, monkeypatch):
    import app.lab.guidance as lab

    threads, measure = [], lab.measure_grid

    def spy(*args):
        threads.append(threading.current_thread().name)
        return measure(*args)

    monkeypatch.setattr(lab, "measure_grid", spy)
    assert model_client.post(GRID, json={"prompt": "", "scales": [1], "seeds": 1, "steps": 1}).status_code == 200
    assert len(threads) == 1 and threads[0].startswith("sampler")  # not the event loop: one OpenMP pool only
