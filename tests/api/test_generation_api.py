"""POST /api/v1/generate and GET /api/v1/model through a tiny random model (and once through the trained one)."""

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import REPO_ROOT
from app.main import create_app
from app.service.imaging import decode_png, from_base64, parse_parameters, read_parameters
from app.service.models import fingerprint
from app.web.state import state_of
from app.world.scenes import COLOUR_NAMES, SHAPES
from tests.helpers.models import model_settings, settings_for_tests

GENERATE, MODEL = "/api/v1/generate", "/api/v1/model"
BODY = {"prompt": "a red circle", "seed": 7, "steps": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def pngs(response) -> list[bytes]:
    return [from_base64(image["png_base64"]) for image in response.json()["images"]]


# ---------------------------------------------------------------------------------------------- success


def test_defaults_shapes_and_the_echoed_parameters(model_client, tiny_model_dir):
    r = model_client.post(GENERATE, json={"prompt": "A Red Circle!", "seed": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parameters"] == {"prompt": "A Red Circle!", "negative_prompt": "", "family": "diffusion",
                                  "steps": 20, "guidance_scale": 5.0,
                                  "guidance_rescale": 0.0, "sampler": "dpmpp_2m", "eta": 0.0, "guidance_method": "cfg",
                                  "batch_size": 1, "seed": 5}
    assert body["prompt_canonical"] == "a red circle" and body["negative_prompt_canonical"] == ""
    assert body["model_id"] == fingerprint(tiny_model_dir) and re.fullmatch(r"[0-9a-f]{12}", body["model_id"])
    assert body["device"] == "cpu"
    [image] = body["images"]
    assert (image["seed"], image["width"], image["height"]) == (5, 32, 32)
    png = from_base64(image["png_base64"])
    assert decode_png(png).shape == (32, 32, 3)
    assert read_parameters(png) == (f"A Red Circle!\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 5, Seed: 5, "
                                    f"Size: 32x32, Model hash: {body['model_id']}, Model: diffusion-lab")
    t = body["timings"]
    assert t["network_forwards"] == 20
    assert all(t[k] >= 0 for k in ("queue_s", "sampling_s", "decode_s", "encode_s"))
    assert t["total_s"] >= t["sampling_s"] + t["decode_s"] + t["encode_s"]


def test_a_batch_has_consecutive_seeds_and_different_images(model_client):
    r = model_client.post(GENERATE, json={**BODY, "batch_size": 3, "seed": 10})
    assert [im["seed"] for im in r.json()["images"]] == [10, 11, 12]
    pixels = [decode_png(p).astype(int) for p in pngs(r)]
    assert np.abs(pixels[0] - pixels[1]).mean() > 1 and np.abs(pixels[1] - pixels[2]).mean() > 1
    assert [f"Seed: {s}," in read_parameters(p) for p, s in zip(pngs(r), (10, 11, 12))] == [True] * 3


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "ddim", "ddpm"])
def test_same_seed_and_parameters_give_identical_png_bytes(model_client, sampler):
    body = {**BODY, "sampler": sampler, "eta": 0.5, "batch_size": 2}
    first, again = model_client.post(GENERATE, json=body), model_client.post(GENERATE, json=body)
    other = model_client.post(GENERATE, json={**body, "seed": 8})
    assert pngs(first) == pngs(again)
    assert pngs(first)[0] != pngs(other)[0]


def test_prompt_and_guidance_change_the_picture(model_client):
    base = decode_png(pngs(model_client.post(GENERATE, json=BODY))[0]).astype(int)
    for change in ({"prompt": "a blue square"}, {"guidance_scale": 1.0}, {"negative_prompt": "a red circle"}):
        other = decode_png(pngs(model_client.post(GENERATE, json={**BODY, **change}))[0])
        assert np.abs(base - other).mean() > 0.5, change


def test_an_absent_seed_is_drawn_and_returned_so_the_image_can_be_repeated(model_client):
    body = {"prompt": "a small square", "steps": 3}
    first, second = model_client.post(GENERATE, json=body).json(), model_client.post(GENERATE, json=body).json()
    seeds = [first["parameters"]["seed"], second["parameters"]["seed"]]
    assert seeds[0] != seeds[1] and all(0 <= s < 2**31 for s in seeds)
    again = model_client.post(GENERATE, json={**body, "seed": seeds[0]}).json()
    assert again["images"][0]["png_base64"] == first["images"][0]["png_base64"]


def test_the_caps_themselves_are_accepted(model_client):
    r = model_client.post(GENERATE, json={**BODY, "steps": 50, "batch_size": 4, "guidance_scale": 20,
                                          "guidance_rescale": 1, "seed": 2**31 - 4, "sampler": "ddim", "eta": 1})
    assert r.status_code == 200, r.text
    assert [im["seed"] for im in r.json()["images"]] == [2**31 - 4 + i for i in range(4)]


# ---------------------------------------------------------------------------------------------- 422


@pytest.mark.parametrize("change,field", [
    ({"steps": 0}, "steps"),
    ({"steps": 51}, "steps"),  # above this server's max_steps (50), below the schema's 1000
    ({"steps": 1001}, "steps"),
    ({"batch_size": 5}, "batch_size"),  # above max_batch (4)
    ({"batch_size": 0}, "batch_size"),
    ({"guidance_scale": 21}, "guidance_scale"),
    ({"guidance_scale": -0.1}, "guidance_scale"),
    ({"guidance_rescale": 1.5}, "guidance_rescale"),
    ({"eta": 2}, "eta"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**31}, "seed"),
    ({"seed": 2**31 - 2, "batch_size": 4}, "seed"),  # image seeds would pass 2^31 - 1
    ({"sampler": "euler"}, "sampler"),
    ({"steps": "many"}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"prompt": 5}, "prompt"),
    ({"prompt": "a red circle " * 16}, "prompt"),  # 208 characters
    ({"negative_prompt": "a hexagon"}, "negative_prompt"),
    ({"colour": "red"}, "colour"),  # unknown field
])
def test_bad_fields_are_422_naming_the_field(model_client, change, field):
    r = model_client.post(GENERATE, json={**BODY, **change})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", field]]


def test_the_server_caps_say_which_setting_limits_them(model_client):
    [detail] = model_client.post(GENERATE, json={**BODY, "steps": 51}).json()["detail"]
    assert detail["type"] == "less_than_equal" and detail["ctx"] == {"le": 50}
    assert "DIFFUSION_LAB_MAX_STEPS" in detail["msg"]
    details = model_client.post(GENERATE, json={**BODY, "steps": 99, "batch_size": 9}).json()["detail"]
    assert [d["loc"][-1] for d in details] == ["steps", "batch_size"]


def test_a_missing_prompt_and_a_non_object_body_are_422(model_client):
    assert model_client.post(GENERATE, json={"seed": 1}).json()["detail"][0]["loc"] == ["body", "prompt"]
    assert model_client.post(GENERATE, json=["a red circle"]).status_code == 422
    assert model_client.post(GENERATE, content=b"{not json", headers={"content-type": "application/json"}
                             ).status_code == 422


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"1e400"])
def test_non_finite_numbers_are_422_not_500(model_client, raw):
    r = model_client.post(GENERATE, content=b'{"prompt": "", "guidance_scale": ' + raw + b"}",
                          headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "guidance_scale"]


def test_an_unknown_word_is_422_listing_the_vocabulary(model_client):
    r = model_client.post(GENERATE, json={**BODY, "prompt": "a red hexagon, glowing"})
    [detail] = r.json()["detail"]
    assert detail["loc"] == ["body", "prompt"] and detail["type"] == "prompt_unknown_words"
    assert detail["ctx"]["unknown_words"] == ["hexagon", "glowing"]
    assert {*SHAPES, *COLOUR_NAMES, "top", "left"} <= set(detail["ctx"]["vocabulary"])
    assert detail["msg"].startswith("unknown words: hexagon, glowing")
    assert all(word in detail["msg"] for word in (*SHAPES, *COLOUR_NAMES))


def test_other_prompt_errors_are_422_too(model_client):
    [detail] = model_client.post(GENERATE, json={**BODY, "prompt": "a red blue circle"}).json()["detail"]
    assert detail["type"] == "prompt_invalid" and "one colour" in detail["msg"] and detail["ctx"]["unknown_words"] == []


def test_two_shape_prompts_are_drawn_and_read_back_canonically(model_client):
    r = model_client.post(GENERATE, json={**BODY, "prompt": "A red circle, to the left of a big blue box"})
    assert r.status_code == 200, r.text
    assert r.json()["prompt_canonical"] == "a red circle left of a large blue square"
    counted = model_client.post(GENERATE, json={**BODY, "prompt": "2 small triangles"}).json()
    assert counted["prompt_canonical"] == "two small triangles"
    [detail] = model_client.post(GENERATE, json={**BODY, "prompt": "two circles and a square"}).json()["detail"]
    assert detail["type"] == "prompt_invalid" and "two identical shapes" in detail["msg"]


def test_weights_from_before_the_two_shape_words_refuse_them_with_a_422(tmp_path):
    from app.world.scenes import TOKEN_ID
    from tests.helpers.models import write_tiny_model

    old = write_tiny_model(tmp_path / "old", vocab_size=TOKEN_ID["of"])  # the one-shape vocabulary only
    with TestClient(create_app(model_settings(old, max_steps=50))) as client:
        assert client.post(GENERATE, json={**BODY, "prompt": "a red circle at the top"}).status_code == 200
        r = client.post(GENERATE, json={**BODY, "prompt": "a red circle left of a blue square"})
        assert r.status_code == 422, r.text
        [detail] = r.json()["detail"]
        assert detail["type"] == "prompt_not_learned" and detail["loc"] == ["body", "prompt"]
        assert detail["ctx"]["words"] == ["of"] and "trained before the word of" in detail["msg"]
        stream = client.get("/api/v1/generate/stream", params={"prompt": "a red circle", "steps": 2,
                                                              "negative_prompt": "two squares"})
        assert stream.status_code == 422
        assert stream.json()["detail"][0]["loc"] == ["query", "negative_prompt"]


@pytest.mark.parametrize("method", ["apg", "cfg++"])
def test_each_guidance_method_draws_its_own_picture_and_says_so_in_the_png(model_client, method):
    body = {**BODY, "sampler": "ddim", "guidance_scale": 0.8}
    cfg = decode_png(pngs(model_client.post(GENERATE, json=body))[0]).astype(int)
    r = model_client.post(GENERATE, json={**body, "guidance_method": method})
    assert r.status_code == 200, r.text
    assert r.json()["parameters"]["guidance_method"] == method
    png = pngs(r)[0]
    assert np.abs(cfg - decode_png(png)).mean() > 0.1
    assert parse_parameters(read_parameters(png))["Guidance method"] == method


@pytest.mark.parametrize("change", [{"sampler": "dpmpp_2m", "guidance_scale": 0.5},
                                    {"sampler": "ddim", "guidance_scale": 3.0}])
def test_cfg_plus_plus_outside_its_ddim_and_lambda_range_is_a_422_naming_the_rule(model_client, change):
    r = model_client.post(GENERATE, json={**BODY, **change, "guidance_method": "cfg++"})
    assert r.status_code == 422
    [detail] = r.json()["detail"]
    assert detail["loc"] == ["body", "guidance_method"] and detail["type"] == "guidance_method_needs"
    assert "ddim" in detail["msg"] and "at most 1" in detail["msg"]


def test_braces_in_a_prompt_are_not_template_fields(model_client):
    [detail] = model_client.post(GENERATE, json={**BODY, "prompt": "{vocabulary} {message}"}).json()["detail"]
    assert detail["msg"].startswith("unknown words: {vocabulary}, {message}")


# ---------------------------------------------------------------------------------------------- load state


def test_without_the_model_generate_is_503_with_retry_after(client):
    r = client.post(GENERATE, json=BODY)
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    assert "LOAD_MODEL" in r.json()["detail"]


def test_readyz_is_503_until_the_model_is_loaded_and_warmed_up(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir))
    cold = TestClient(app)  # not entered: the lifespan (loading) has not run
    assert cold.get("/readyz").status_code == 503
    r = cold.post(GENERATE, json=BODY)
    assert r.status_code == 503 and "still loading" in r.json()["detail"] and "retry-after" in r.headers
    assert cold.get(MODEL).json()["live"]["loaded"] is False
    with TestClient(app) as warm:
        assert warm.get("/readyz").status_code == 200
        assert state_of(app).model.warm_up_s > 0 and state_of(app).model.load_s > 0
        assert warm.post(GENERATE, json=BODY).status_code == 200
    assert state_of(app).ready is False  # after shutdown


def test_missing_weights_leave_the_app_up_but_not_ready(tmp_path):
    with TestClient(create_app(model_settings(tmp_path))) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "vae.safetensors" in ready.json()["reason"]
        assert c.get("/healthz").status_code == 200
        r = c.post(GENERATE, json=BODY)
        assert r.status_code == 503 and "vae.safetensors" in r.json()["detail"]
        live = c.get(MODEL).json()["live"]
        assert live["loaded"] is False and "vae.safetensors" in live["load_error"]


# ---------------------------------------------------------------------------------------------- model card


def test_model_endpoint_with_the_model_and_without_a_card(model_client, tiny_model_dir):
    r = model_client.get(MODEL)
    assert r.status_code == 200
    body = r.json()
    assert body["card_found"] is False and body["card"] is None and "evaluate" in body["card_error"]
    live = body["live"]
    assert live["loaded"] is True and live["device"] == "cpu" and live["resolution"] == 32
    assert live["model_id"] == fingerprint(tiny_model_dir)
    counts = live["parameters"]
    assert counts["total"] == counts["vae"] + counts["text_encoder"] + counts["denoiser"] > 0
    assert live["samplers"] == ["ddim", "ddpm", "dpmpp_2m"]
    assert live["limits"]["max_steps"] == 50 and live["limits"]["max_batch"] == 4
    assert live["queue"] == {"running": 0, "waiting": 0, "capacity": 1 + 16}


def test_model_endpoint_serves_the_card_file(tmp_path):
    card = {"name": "diffusion-lab", "architecture": {"denoiser": "DiT"}, "evaluation": {"fid": float("nan")},
            "vocabulary": ["circle"], "generated_at": "2026-11-26T00:00:00Z"}
    (tmp_path / "model-card.json").write_text(json.dumps(card))  # json writes NaN; it is served as null
    with TestClient(create_app(settings_for_tests(model_dir=tmp_path))) as c:
        body = c.get(MODEL).json()
        assert body["card_found"] is True and body["card_error"] is None
        assert body["card"] == {**card, "evaluation": {"fid": None}}
        assert body["live"]["loaded"] is False and body["live"]["queue"] is None
        for broken in ("{truncated", "[1, 2]"):
            (tmp_path / "model-card.json").write_text(broken)
            r = c.get(MODEL)
            assert r.status_code == 200 and r.json()["card_found"] is False and r.json()["card_error"]


def test_openapi_documents_the_generation_api(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"][GENERATE]["post"]
    assert {"422", "429", "503"} <= set(post["responses"])
    request = spec["components"]["schemas"]["GenerateRequest"]
    assert request["additionalProperties"] is False
    assert request["properties"]["steps"]["maximum"] == 100  # the served limit (DIFFUSION_LAB_MAX_STEPS' default)
    assert MODEL in spec["paths"]


# ---------------------------------------------------------------------------------------------- load limits


class Gate:
    """Blocks pipeline.generate_batch until released, so a job holds its worker as long as the test needs."""

    def __init__(self, app, monkeypatch):
        self.entered, self.release = threading.Event(), threading.Event()
        pipeline, original = state_of(app).model.pipeline, state_of(app).model.pipeline.generate_batch

        def gated(parts, callback=None):
            self.entered.set()
            assert self.release.wait(10)
            return original(parts, callback)

        monkeypatch.setattr(pipeline, "generate_batch", gated)


def test_a_full_queue_answers_429_with_retry_after(tiny_model_dir, monkeypatch):
    app = create_app(model_settings(tiny_model_dir, queue_size=1, worker_threads=1))
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        gate, service = Gate(app, monkeypatch), state_of(app).sampler
        queued = threading.Event()
        submit = service.submit

        def counting_submit(*args, **kwargs):
            job = submit(*args, **kwargs)
            if service.waiting == 1:
                queued.set()
            return job

        monkeypatch.setattr(service, "submit", counting_submit)
        try:
            running = pool.submit(c.post, GENERATE, json=BODY)
            assert gate.entered.wait(10)
            waiting = pool.submit(c.post, GENERATE, json=BODY)
            assert queued.wait(10)
            refused = c.post(GENERATE, json=BODY)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1 and "busy" in refused.json()["detail"]
            assert c.get(MODEL).json()["live"]["queue"] == {"running": 1, "waiting": 1, "capacity": 2}
        finally:
            gate.release.set()
        assert running.result(20).status_code == 200 and waiting.result(20).status_code == 200
        assert c.post(GENERATE, json=BODY).status_code == 200


def test_a_job_past_the_time_limit_is_503_and_stops_sampling(tiny_model_dir, monkeypatch):
    app = create_app(model_settings(tiny_model_dir, request_timeout_s=0.5))
    with TestClient(app) as c:
        dit, forward, calls = state_of(app).model.pipeline.dit, state_of(app).model.pipeline.dit.forward, []

        def slow_forward(*args, **kwargs):
            calls.append(1)
            time.sleep(0.02)  # makes 100 steps take over 2 s: the job, not the test, is slow
            return forward(*args, **kwargs)

        monkeypatch.setattr(dit, "forward", slow_forward)
        r = c.post(GENERATE, json={**BODY, "steps": 100})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "time limit of 0.5 s" in r.json()["detail"]
        monkeypatch.setattr(dit, "forward", forward)
        # one worker: this request runs only after the cancelled job has let go of it
        assert c.post(GENERATE, json={**BODY, "steps": 2}).status_code == 200
        assert len(calls) < 100


# ---------------------------------------------------------------------------------------------- trained weights


@pytest.mark.weights
@pytest.mark.skipif(not (REPO_ROOT / "models" / "denoiser.safetensors").is_file(), reason="no trained weights")
def test_the_trained_model_draws_what_it_is_asked():
    from app.measure.judge import judge, matches
    from app.world.prompts import parse_prompt

    prompt = "a large red circle at the top left"
    with TestClient(create_app(model_settings(REPO_ROOT / "models"))) as c:
        r = c.post(GENERATE, json={"prompt": prompt, "seed": 0, "batch_size": 4})
    assert r.status_code == 200, r.text
    images = np.stack([decode_png(p) for p in pngs(r)])
    assert images.shape == (4, 64, 64, 3)
    verdicts = [matches(v, parse_prompt(prompt)) for v in judge(images)]
    assert sum(v["all"] for v in verdicts) >= 3, verdicts
