"""Chapter §3.4's endpoints through the tiny random models: what is loaded, the judge, EQ MM3.5's bits, the codebook
and the cost against N; their 422s naming the field, the 503 with the reason, the 429 of a full queue."""

import io
import math
import shutil
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.pipelines.image import GenerationSettings
from app.service.imaging import decode_png, encode_png, from_base64, to_base64
from app.web.state import state_of
from app.world.prompts import matching_scene, parse_prompt
from app.world.scenes import to_uint8
from tests.helpers.models import model_settings

API = "/api/v1/instruments/families"
JUDGE, LIKELIHOOD, CODEBOOK, COST = f"{API}/judge", f"{API}/likelihood", f"{API}/codebook", f"{API}/cost"

pytestmark = pytest.mark.usefixtures("one_thread")


def png_of(prompt: str, side: int = 32, seed: int = 0) -> str:
    image, _ = matching_scene(parse_prompt(prompt), seed, side)
    return to_base64(encode_png(to_uint8(image)[0]))


def refused(r) -> list[tuple]:
    assert r.status_code == 422, r.text
    return [(tuple(e["loc"]), e["type"]) for e in r.json()["detail"]]


# ---------------------------------------------------------------------------------------------- what is loaded


def test_the_three_families_their_sizes_and_forwards(model_client):
    body = model_client.get(API).json()
    states = {f["family"]: f for f in body["families"]}
    assert list(states) == ["autoregressive", "masked", "diffusion"] and (body["rounds"], body["steps"]) == (8, 20)
    assert all(f["loaded"] and f["reason"] is None and len(f["model_id"]) == 12 for f in states.values())
    ar, masked, dit = states["autoregressive"]["size"], states["masked"]["size"], states["diffusion"]["size"]
    assert (ar["grid"], ar["tokens"], ar["codebook_size"], ar["resolution"]) == (8, 64, 64, 32)
    assert ar["downsample_factor"] == 4
    assert states["autoregressive"]["sequential_forwards"] == 64 and states["masked"]["sequential_forwards"] == 8
    assert states["diffusion"]["sequential_forwards"] == 20 and dit["codebook_size"] is None
    assert dit["tokens"] == dit["grid"] ** 2 and masked["tokens"] == 64


def test_without_a_model_the_families_say_why(client):
    states = client.get(API).json()["families"]
    assert [f["loaded"] for f in states] == [False, False, False]
    assert all("runs without the model" in f["reason"] for f in states)


def test_a_missing_family_says_which_file_and_its_endpoints_answer_503(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "models")
    (tmp_path / "models" / "ar_transformer.safetensors").unlink()
    with TestClient(create_app(model_settings(tmp_path / "models"))) as c:
        states = {f["family"]: f for f in c.get(API).json()["families"]}
        assert not states["autoregressive"]["loaded"] and states["masked"]["loaded"]
        assert "ar_transformer.safetensors missing" in states["autoregressive"]["reason"]
        r = c.post(LIKELIHOOD, json={"prompt": "a red circle"})
        assert r.status_code == 503 and "ar_transformer.safetensors missing" in r.json()["detail"]
        assert int(r.headers["retry-after"]) > 0
        codebook = c.get(CODEBOOK)  # the masked family carries the same tokenizer
        assert codebook.status_code == 200 and codebook.json()["model_id"] == states["masked"]["model_id"]


# ---------------------------------------------------------------------------------------------- the judge


def test_the_judge_reads_a_picture_against_its_prompt(model_client):
    r = model_client.post(JUDGE, json={"prompt": "a large red circle at the top left",
                                       "png_base64": png_of("a large red circle at the top left")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["judged"]["shape"] == "circle" and body["objects"] is None and body["adherence"]["all"] == 1.0
    pair = model_client.post(JUDGE, json={"prompt": "a blue square above a red circle",
                                          "png_base64": png_of("a blue square above a red circle", 64)}).json()
    assert len(pair["objects"]) == 2 and pair["adherence"]["relation"] == 1.0
    missed = model_client.post(JUDGE, json={"prompt": "a green triangle", "png_base64": png_of("a red circle")})
    assert missed.json()["adherence"] == {"shape": 0.0, "colour": 0.0, "clean": 1.0, "all": 0.0}


def big_png(side: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (side, 1)).save(buffer, "PNG")
    return to_base64(buffer.getvalue())


@pytest.mark.parametrize("png", ["not base64!", to_base64(b"GIF89a not a png"), big_png(2000)])
def test_a_picture_that_is_not_a_readable_png_is_a_422_naming_it(model_client, png):
    assert refused(model_client.post(JUDGE, json={"prompt": "a red circle", "png_base64": png})) == [
        (("body", "png_base64"), "png_invalid")]


def test_an_unknown_word_is_a_422_naming_the_prompt(model_client):
    r = model_client.post(JUDGE, json={"prompt": "a red star", "png_base64": png_of("a red circle")})
    assert refused(r) == [(("body", "prompt"), "prompt_unknown_words")]


# ---------------------------------------------------------------------------------------------- EQ MM3.5


def test_the_bits_of_a_scene_drawn_for_the_prompt(model_client):
    r = model_client.post(LIKELIHOOD, json={"prompt": "a large red circle at the top left", "scene_seed": 3})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["source"] == "scene" and b["scene_caption"] == "a large red circle at the top left"
    assert (b["grid"], b["codebook_size"]) == (8, 64) and np.array(b["tokens"]).shape == (8, 8)
    bits = -np.array(b["log2_probs"], dtype=np.float64)
    assert bits.shape == (8, 8) and np.all(bits >= 0)
    assert bits.sum() == pytest.approx(b["total_bits"], rel=1e-6) and b["bits_per_token"] * 64 == pytest.approx(
        b["total_bits"])
    assert b["uniform_bits"] == 64 * math.log2(64) and b["unconditional_bits"] > 0
    assert decode_png(from_base64(b["picture_png_base64"])).shape == (32, 32, 3)
    assert decode_png(from_base64(b["decoded_png_base64"])).shape == (32, 32, 3)


def test_an_image_and_its_tokens_score_alike(model_client):
    scene = model_client.post(LIKELIHOOD, json={"prompt": "two red circles", "scene_seed": 1}).json()
    image = model_client.post(LIKELIHOOD, json={"prompt": "two red circles", "source": "image",
                                                "png_base64": scene["picture_png_base64"]}).json()
    tokens = model_client.post(LIKELIHOOD, json={"prompt": "two red circles", "source": "tokens",
                                                 "tokens": np.array(scene["tokens"]).flatten().tolist()}).json()
    assert image["tokens"] == tokens["tokens"] == scene["tokens"] and image["scene_caption"] is None
    assert image["total_bits"] == pytest.approx(scene["total_bits"]) == pytest.approx(tokens["total_bits"])


@pytest.mark.parametrize(("body", "expected"), [
    ({"source": "image"}, [(("body", "png_base64"), "source_needs")]),
    ({"source": "tokens"}, [(("body", "tokens"), "source_needs")]),
    ({"png_base64": png_of("a red circle")}, [(("body", "png_base64"), "source_needs")]),
    ({"source": "image", "png_base64": png_of("a red circle"), "tokens": [0] * 64}, [(("body", "tokens"),
                                                                                     "source_needs")]),
    ({"source": "image", "png_base64": "###"}, [(("body", "png_base64"), "png_invalid")]),
    ({"source": "image", "png_base64": png_of("a red circle", 64)}, [(("body", "png_base64"), "image_size")]),
    ({"source": "tokens", "tokens": [0] * 63}, [(("body", "tokens"), "token_count")]),
    ({"source": "tokens", "tokens": [64] + [0] * 63}, [(("body", "tokens"), "token_range")]),
    ({"source": "tokens", "tokens": [-1] + [0] * 63}, [(("body", "tokens", 0), "greater_than_equal")]),
    ({"source": "scenes"}, [(("body", "source"), "literal_error")]),
    ({"prompt": "a red star"}, [(("body", "prompt"), "prompt_unknown_words")]),
    ({"scene_seed": True}, [(("body", "scene_seed"), "bool_not_number")]),
])
def test_what_the_model_cannot_take_is_a_422_naming_the_field(model_client, body, expected):
    assert refused(model_client.post(LIKELIHOOD, json={"prompt": "a red circle", **body})) == expected


# ---------------------------------------------------------------------------------------------- the codebook


def test_the_codebook_once_per_models_and_again_on_request(model_client):
    first = model_client.get(CODEBOOK).json()
    assert first["codebook_size"] == 64 and first["codes_used"] + first["dead_codes"] == 64
    assert first["usage"] == pytest.approx(first["codes_used"] / 64) and first["scenes"] == 64
    assert set(first["tokenizer"]) == set(first["vae"]) == {"psnr_db", "pair_psnr_db", "judge_all", "pair_judge_all"}
    assert (first["vae_downsample_factor"], first["vae_latent_channels"], first["vae_resolution"]) == (8, 4, 32)
    again = model_client.get(CODEBOOK).json()
    assert again["cached"] and again["measured_at"] == first["measured_at"]
    fresh = model_client.get(CODEBOOK, params={"remeasure": "true"}).json()
    assert not fresh["cached"] and fresh["codes_used"] == first["codes_used"]  # the same scenes, the same codes
    assert refused(model_client.get(CODEBOOK, params={"remeasure": "1"})) == [(("query", "remeasure"), "bool_type")]


# ---------------------------------------------------------------------------------------------- the cost against N


def test_the_cost_against_n_for_the_three_families(model_client):
    r = model_client.get(COST)
    assert r.status_code == 200, r.text
    m = r.json()
    assert [c["family"] for c in m["curves"]] == ["autoregressive", "masked", "diffusion"]
    for curve in m["curves"]:
        assert [p["tokens"] for p in curve["points"]] == [16, 64, 256, 1024]
        assert all(p["low_ms"] <= p["median_ms"] <= p["high_ms"] and len(p["runs_ms"]) == m["conditions"]["rounds"]
                   for p in curve["points"])
        assert curve["architecture"]["served"]
    forwards = [[p["forwards"] for p in c["points"]] for c in m["curves"]]
    assert forwards == [[16, 64, 256, 1024], [8, 8, 8, 8], [20, 20, 20, 20]]
    assert [c["forwards_exponent"] for c in m["curves"]] == [pytest.approx(1.0), pytest.approx(0.0),
                                                             pytest.approx(0.0)]
    assert [p["estimated"] for p in m["curves"][2]["points"]] == [False, False, False, True]
    growth = m["autoregressive"]
    assert growth["exponent"] == pytest.approx(m["curves"][0]["exponent"])
    low, high = growth["band"]
    expected = ("roughly linear" if low <= growth["exponent"] <= high
                else "faster than linear" if growth["exponent"] > high else "slower than linear")
    assert growth["verdict"] == expected and growth["text"].startswith(expected)
    assert (m["rounds"], m["steps"], m["sampler"], m["repeats"]) == (8, 20, "dpmpp_2m", 3)
    assert model_client.get(COST).json()["cached"]


@pytest.mark.parametrize(("query", "field", "kind"), [({"repeats": 2}, "repeats", "greater_than_equal"),
                                                      ({"repeats": 8}, "repeats", "less_than_equal"),
                                                      ({"remeasure": "yes"}, "remeasure", "bool_type")])
def test_the_cost_query_is_bounded(model_client, query, field, kind):
    assert refused(model_client.get(COST, params=query)) == [(("query", field), kind)]


# ---------------------------------------------------------------------------------------------- serving


def test_without_a_model_the_network_endpoints_answer_503(client):
    for method, path, body in (("post", JUDGE, {"prompt": "", "png_base64": png_of("a red circle")}),
                               ("post", LIKELIHOOD, {"prompt": ""}), ("get", CODEBOOK, None), ("get", COST, None)):
        r = getattr(client, method)(path, **({"json": body} if body is not None else {}))
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, (path, r.text)


def test_a_full_queue_refuses_the_measurements_with_429(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, queue_size=1, worker_threads=1))
    with TestClient(app) as c:
        release = threading.Event()
        pipeline = state_of(app).model.pipeline
        original = pipeline.generate_batch

        def gated(jobs, callback=None):
            assert release.wait(10)
            return original(jobs, callback)

        pipeline.generate_batch = gated
        service = state_of(app).sampler
        held = [service.submit(GenerationSettings(prompt="", steps=1)) for _ in range(service.capacity)]
        try:
            for method, path, body in (("post", LIKELIHOOD, {"prompt": "a red circle"}), ("get", CODEBOOK, None),
                                       ("get", COST, None)):
                r = getattr(c, method)(path, **({"json": body} if body is not None else {}))
                assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, (path, r.text)
        finally:
            release.set()
        for job in held:
            job.future.result(10)
