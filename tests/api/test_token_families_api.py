"""Chapter §3.4's token families through POST /api/v1/generate, its stream and its check, on the tiny random models:
the family's own knobs, EQ MM3.5's N sequential forwards against MaskGIT's rounds, one event vocabulary, the PNG."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.pipelines.tokens import FAMILY_FILES, TOKENIZER_FILE
from app.service.imaging import decode_png, from_base64, read_parameters
from app.service.models import fingerprint
from app.web.schemas.families import KNOB_FAMILIES
from app.web.state import state_of
from tests.api.test_stream_api import parse_sse, png_array
from tests.helpers.models import model_settings, write_tiny_model

GENERATE, STREAM, VALIDATE = "/api/v1/generate", "/api/v1/generate/stream", "/api/v1/generate/validate"
BODY = {"prompt": "a red circle", "seed": 7}
TOKENS, SIDE, CODEBOOK = 64, 8, 64  # the tiny models: 32 px images, f = 4 tokens, K = 64

pytestmark = pytest.mark.usefixtures("one_thread")


def pngs(body: dict) -> list[bytes]:
    return [from_base64(image["png_base64"]) for image in body["images"]]


def stream(client, **params) -> list[tuple[str, dict]]:
    with client.stream("GET", STREAM, params=params) as response:
        assert response.status_code == 200, response.read()
        return parse_sse(response.iter_lines())


# ---------------------------------------------------------------------------------------------- POST /generate


@pytest.mark.parametrize(("family", "knobs", "forwards"), [
    ("autoregressive", {}, TOKENS),  # EQ MM3.5: one forward per token, one after another
    ("masked", {"rounds": 5}, 5),  # MaskGIT: one per round
])
def test_each_token_family_draws_through_post_generate(model_client, tiny_model_dir, family, knobs, forwards):
    r = model_client.post(GENERATE, json={**BODY, "family": family, "batch_size": 2, **knobs})
    assert r.status_code == 200, r.text
    body = r.json()
    used = {"prompt": "a red circle", "negative_prompt": "", "family": family, "guidance_scale": 3.0,
            "temperature": 1.0, "top_k": 0, "batch_size": 2, "seed": 7}
    assert body["parameters"] == {**used, **({"rounds": 5} if family == "masked" else {})}
    assert body["model_id"] == fingerprint(tiny_model_dir, (TOKENIZER_FILE, FAMILY_FILES[family]))
    assert body["device"] == "cpu" and body["prompt_canonical"] == "a red circle"
    assert [(im["seed"], im["width"], im["height"]) for im in body["images"]] == [(7, 32, 32), (8, 32, 32)]
    first, second = (decode_png(png) for png in pngs(body))
    assert first.shape == (32, 32, 3) and np.abs(first.astype(int) - second).mean() > 1  # two seeds, two images
    t = body["timings"]
    assert t["network_forwards"] == forwards
    assert all(t[k] >= 0 for k in ("queue_s", "sampling_s", "decode_s", "encode_s"))
    assert t["total_s"] >= t["sampling_s"] + t["decode_s"] + t["encode_s"]


@pytest.mark.parametrize("family", ["autoregressive", "masked"])
def test_same_seed_same_png_bytes_and_the_parameters_sent_back_draw_them_again(model_client, family):
    body = {**BODY, "family": family, "temperature": 0.7, "top_k": 20, "guidance_scale": 1.5}
    first, again = model_client.post(GENERATE, json=body).json(), model_client.post(GENERATE, json=body).json()
    assert pngs(first) == pngs(again)
    assert pngs(model_client.post(GENERATE, json={**body, "seed": 8}).json()) != pngs(first)
    assert first["parameters"]["guidance_scale"] == 1.5 and first["parameters"]["top_k"] == 20
    echoed = model_client.post(GENERATE, json=first["parameters"])  # what was run is a request that runs again
    assert echoed.status_code == 200, echoed.text
    assert pngs(echoed.json()) == pngs(first)


def test_the_diffusion_parameters_sent_back_draw_the_same_image_too(model_client):
    first = model_client.post(GENERATE, json={**BODY, "steps": 3}).json()
    assert first["parameters"]["family"] == "diffusion" and "temperature" not in first["parameters"]
    assert pngs(model_client.post(GENERATE, json=first["parameters"]).json()) == pngs(first)


def test_temperature_zero_takes_the_most_likely_token_so_the_seed_no_longer_matters(model_client):
    """Autoregressive: every token is the argmax given the ones before, whatever the noise; top_k = 1 is the same."""
    def pixels(**change) -> np.ndarray:
        body = {**BODY, "family": "autoregressive", **change}
        return decode_png(pngs(model_client.post(GENERATE, json=body).json())[0])

    greedy = pixels(temperature=0)
    assert np.array_equal(pixels(temperature=0, seed=1234), greedy)
    assert np.array_equal(pixels(top_k=1, seed=99), greedy)
    assert not np.array_equal(pixels(temperature=1.0), greedy)


@pytest.mark.parametrize(("family", "expected"), [
    ("autoregressive", "a red circle\nFamily: autoregressive, Temperature: 0.5, Top k: 9, CFG scale: 3, Seed: 7, "),
    ("masked", "a red circle\nFamily: masked, Rounds: 8, Temperature: 0.5, Top k: 9, CFG scale: 3, Seed: 7, "),
])
def test_the_png_chunk_names_the_family_and_its_own_knobs_only(model_client, family, expected):
    body = model_client.post(GENERATE, json={**BODY, "family": family, "temperature": 0.5, "top_k": 9}).json()
    text = read_parameters(pngs(body)[0])
    assert text == expected + f"Size: 32x32, Model hash: {body['model_id']}, Model: diffusion-lab"


def test_a_two_shape_prompt_the_family_was_not_trained_on_is_a_422(tmp_path):
    from app.world.scenes import TOKEN_ID

    old = write_tiny_model(tmp_path / "old", vocab_size=TOKEN_ID["of"])  # the one-shape vocabulary only
    with TestClient(create_app(model_settings(old))) as client:
        prompt = "a red circle left of a blue square"
        r = client.post(GENERATE, json={"prompt": prompt, "family": "masked", "rounds": 1})
        assert r.status_code == 422, r.text
        [detail] = r.json()["detail"]
        assert detail["type"] == "prompt_not_learned" and detail["loc"] == ["body", "prompt"]
        s = client.get(STREAM, params={"prompt": "a red circle", "negative_prompt": prompt, "family": "autoregressive"})
        assert s.status_code == 422 and s.json()["detail"][0]["loc"] == ["query", "negative_prompt"]


# ---------------------------------------------------------------------------------------------- the stream


def test_the_autoregressive_stream_sends_one_step_per_row_of_the_grid(model_client):
    events = stream(model_client, **BODY, family="autoregressive")
    names = [name for name, _ in events]
    assert names == ["start"] + ["step"] * SIDE + ["result"]
    start, steps, result = events[0][1], [d for _, d in events[1:-1]], events[-1][1]
    assert start["family"] == "autoregressive" and start["total_steps"] == SIDE and start["resolution"] == 32
    assert start["token_grid"] == {"side": SIDE, "tokens": TOKENS, "codebook_size": CODEBOOK, "downsample_factor": 4,
                                   "sequential_forwards": TOKENS, "preview": start["token_grid"]["preview"]}
    assert start["latent_shape"] is None and start["parameters"]["guidance_scale"] == 3.0
    assert {d["id"] for _, d in events} == {start["id"]}
    for i, step in enumerate(steps):
        row = list(range(i * SIDE, (i + 1) * SIDE))  # raster order: row i, left to right
        assert (step["index"], step["total"], step["family"]) == (i, SIDE, "autoregressive")
        assert step["forwards"] == step["tokens_drawn"] == (i + 1) * SIDE and step["tokens_new"] == SIDE
        assert step["new_positions"] == row
        assert all(0 <= code < CODEBOOK for code in step["grid"][:(i + 1) * SIDE])
        assert step["grid"][(i + 1) * SIDE:] == [-1] * (TOKENS - (i + 1) * SIDE)
        assert png_array(step["preview"]).shape == (32, 32, 3) and step["remaining_s"] >= 0
    assert [s["grid"][:SIDE] for s in steps] == [steps[0]["grid"][:SIDE]] * SIDE  # a drawn token stays
    # The last preview decodes the whole grid: the result's image, pixel for pixel.
    assert np.array_equal(png_array(steps[-1]["preview"]), decode_png(pngs(result)[0]))
    assert result["timings"]["network_forwards"] == TOKENS


def test_the_masked_stream_sends_one_step_per_round_and_matches_post(model_client):
    events = stream(model_client, **BODY, family="masked", rounds=4, batch_size=2)
    assert [name for name, _ in events] == ["start"] + ["step"] * 4 + ["result"]
    start, steps, result = events[0][1], [d for _, d in events[1:-1]], events[-1][1]
    assert start["total_steps"] == 4 and start["token_grid"]["sequential_forwards"] == 4
    assert [s["forwards"] for s in steps] == [1, 2, 3, 4] and [s["index"] for s in steps] == [0, 1, 2, 3]
    drawn = [s["tokens_drawn"] for s in steps]
    assert drawn == sorted(drawn) and 0 < drawn[0] < TOKENS and drawn[-1] == TOKENS
    assert sum(s["tokens_new"] for s in steps) == TOKENS  # every token is kept exactly once
    for before, step in zip([None, *steps], steps):
        new = step["new_positions"]
        assert sorted(new) == new and len(new) == step["tokens_new"]
        assert all(step["grid"][p] != -1 for p in step["new_positions"])
        if before is not None:
            assert all(before["grid"][p] == -1 for p in step["new_positions"])  # newly drawn: hidden until now
            assert all(step["grid"][p] == code for p, code in enumerate(before["grid"]) if code != -1)
    posted = model_client.post(GENERATE, json={**BODY, "family": "masked", "rounds": 4, "batch_size": 2}).json()
    assert result["parameters"] == posted["parameters"] and pngs(result) == pngs(posted)
    assert result["timings"]["network_forwards"] == 4


def test_without_previews_the_token_steps_carry_numbers_only(model_client):
    events = stream(model_client, prompt="a green square", family="masked", rounds=2, previews="false")
    steps = [d for name, d in events if name == "step"]
    assert events[0][1]["previews"] is False and len(steps) == 2 and all(s["preview"] is None for s in steps)
    assert events[-1][0] == "result"


def test_the_diffusion_start_says_its_family_and_has_no_token_grid(model_client):
    start = stream(model_client, **BODY, steps=2, previews="false")[0][1]
    assert start["family"] == "diffusion" and start["token_grid"] is None and start["latent_shape"] == [4, 4, 4]


# ---------------------------------------------------------------------------------------------- refusals

# A knob sent with a family that does not take it: every knob at least once.
MISMATCHES = [("steps", "masked", 5), ("sampler", "autoregressive", "ddim"), ("eta", "masked", 0.5),
              ("guidance_rescale", "autoregressive", 0.5), ("guidance_method", "masked", "cfg"),
              ("temperature", "diffusion", 0.5), ("top_k", "diffusion", 3), ("rounds", "diffusion", 2),
              ("rounds", "autoregressive", 3)]


def test_every_knob_has_a_mismatch_case():
    assert {knob for knob, _, _ in MISMATCHES} == set(KNOB_FAMILIES)


@pytest.mark.parametrize(("knob", "family", "value"), MISMATCHES)
def test_a_knob_sent_with_another_family_is_a_422_saying_whose_it_is(model_client, knob, family, value):
    owners = KNOB_FAMILIES[knob]
    for method, where in (("POST", "body"), ("GET", "query")):
        request = {**BODY, "family": family, knob: value}
        r = model_client.post(GENERATE, json=request) if method == "POST" else model_client.get(STREAM, params=request)
        assert r.status_code == 422, (method, r.text)
        [detail] = r.json()["detail"]
        assert detail["loc"] == [where, knob] and detail["type"] == "knob_family"
        assert detail["msg"].startswith(f"{knob} belongs to the {' and '.join(owners)} famil")
        assert f"not to {family}" in detail["msg"]
    check = model_client.get(VALIDATE, params={**BODY, "family": family, knob: value}).json()
    assert not check["valid"] and [e["type"] for e in check["errors"]] == ["knob_family"]


@pytest.mark.parametrize(("change", "field"), [
    ({"family": "diffusionish"}, "family"),
    ({"family": "masked", "temperature": 2.5}, "temperature"),
    ({"family": "masked", "temperature": -0.1}, "temperature"),
    ({"family": "masked", "top_k": -1}, "top_k"),
    ({"family": "masked", "top_k": 4097}, "top_k"),  # the schema's bound
    ({"family": "autoregressive", "top_k": CODEBOOK + 1}, "top_k"),  # the loaded codebook's
    ({"family": "masked", "rounds": 0}, "rounds"),
    ({"family": "masked", "rounds": 65}, "rounds"),
    ({"family": "masked", "rounds": True}, "rounds"),
    ({"family": "masked", "batch_size": 5}, "batch_size"),  # the server's MAX_BATCH (4) holds for every family
])
def test_bad_token_knobs_are_422_naming_the_field(model_client, change, field):
    r = model_client.post(GENERATE, json={**BODY, **change})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", field]]


def test_top_k_above_the_loaded_codebook_says_so(model_client):
    [detail] = model_client.post(GENERATE, json={**BODY, "family": "masked", "top_k": 65}).json()["detail"]
    assert detail["type"] == "less_than_equal" and detail["ctx"] == {"le": CODEBOOK}
    assert "codebook size of the loaded masked model" in detail["msg"]
    assert model_client.post(GENERATE, json={**BODY, "family": "masked", "top_k": CODEBOOK}).status_code == 200


def test_the_diffusion_steps_cap_does_not_bind_a_token_family(tiny_model_dir):
    """DIFFUSION_LAB_MAX_STEPS below diffusion's default: a diffusion request must give steps, a token family's
    takes none."""
    with TestClient(create_app(model_settings(tiny_model_dir, max_steps=10))) as client:
        assert client.post(GENERATE, json=BODY).status_code == 422
        assert client.post(GENERATE, json={**BODY, "family": "masked", "rounds": 2}).status_code == 200


def test_a_family_whose_file_is_missing_answers_503_with_the_reason_and_the_others_draw(tmp_path):
    model_dir = write_tiny_model(tmp_path / "models")
    (model_dir / FAMILY_FILES["masked"]).unlink()
    with TestClient(create_app(model_settings(model_dir))) as client:
        for r in (client.post(GENERATE, json={**BODY, "family": "masked"}),
                  client.get(STREAM, params={**BODY, "family": "masked"}),
                  client.post("/api/v1/generate/grid", json={"prompt": "a red circle", "family": "masked",
                                                            "scales": [1], "seeds": 1})):
            assert r.status_code == 503 and r.headers["retry-after"] == "30", r.text
            assert r.json()["detail"] == f"masked model not loaded: file {FAMILY_FILES['masked']} missing in " \
                                         f"{model_dir}"
        assert client.post(GENERATE, json={**BODY, "family": "autoregressive"}).status_code == 200
        assert client.post(GENERATE, json={**BODY, "steps": 2}).status_code == 200
        families = client.get("/api/v1/model").json()["families"]
        assert families["autoregressive"]["loaded"] is True and families["masked"]["loaded"] is False
        assert FAMILY_FILES["masked"] in families["masked"]["load_error"] and families["masked"]["config"] is None
        spec = client.get("/openapi.json").json()  # the served limit comes from the family that is loaded
        assert spec["components"]["schemas"]["GenerateRequest"]["properties"]["top_k"]["maximum"] == CODEBOOK


# ---------------------------------------------------------------------------------------------- GET /model


def test_the_model_card_lists_each_token_family(model_client, model_app, tiny_model_dir):
    families = model_client.get("/api/v1/model").json()["families"]
    assert set(families) == {"autoregressive", "masked"}
    for family, section in families.items():
        loaded = state_of(model_app).token_families[family]
        assert section["loaded"] is True and section["load_error"] is None
        assert section["model_id"] == loaded.model_id == fingerprint(tiny_model_dir, (TOKENIZER_FILE,
                                                                                      FAMILY_FILES[family]))
        assert section["files"] == [TOKENIZER_FILE, FAMILY_FILES[family]]
        assert (section["grid"], section["tokens"], section["codebook_size"], section["resolution"]) == (
            SIDE, TOKENS, CODEBOOK, 32)
        assert section["config"]["causal"] is (family == "autoregressive")
        assert section["tokenizer_config"]["codebook_size"] == CODEBOOK
        counts = section["parameters"]
        assert counts["total"] == counts["tokenizer"] + counts["text_encoder"] + counts["transformer"] > 0
        assert counts["transformer"] == sum(p.numel() for p in loaded.generator.model.transformer.parameters())
        assert section["training"] == {"family": family}  # what the tiny model's file records


def test_without_the_model_the_families_say_why(client):
    families = client.get("/api/v1/model").json()["families"]
    assert {f: s["loaded"] for f, s in families.items()} == {"autoregressive": False, "masked": False}
    assert all("not loaded" in s["load_error"] for s in families.values())


# ---------------------------------------------------------------------------------------------- the document


def test_openapi_states_the_family_and_its_knobs_with_their_bounds(model_client, client):
    spec = model_client.get("/openapi.json").json()
    body = spec["components"]["schemas"]["GenerateRequest"]["properties"]
    assert body["family"]["enum"] == ["diffusion", "autoregressive", "masked"]
    assert body["family"]["default"] == "diffusion"
    assert (body["temperature"]["minimum"], body["temperature"]["maximum"], body["temperature"]["default"]) == (0, 2, 1)
    assert (body["top_k"]["minimum"], body["top_k"]["maximum"], body["top_k"]["default"]) == (0, CODEBOOK, 0)
    assert (body["rounds"]["minimum"], body["rounds"]["maximum"], body["rounds"]["default"]) == (1, 64, 8)
    for knob, owners in KNOB_FAMILIES.items():  # each knob's description says whose it is
        assert f"Only for the {' and '.join(owners)} famil" in body[knob]["description"], knob
    assert "3 for masked" in body["guidance_scale"]["description"]
    query = {p["name"]: p["schema"] for p in spec["paths"][STREAM]["get"]["parameters"]}
    assert {"family", "temperature", "top_k", "rounds"} <= set(query) and query["top_k"]["maximum"] == CODEBOOK
    for path, method in ((GENERATE, "post"), (STREAM, "get"), ("/api/v1/generate/grid", "post")):
        responses = spec["paths"][path][method]["responses"]
        assert "knob_family" in responses["422"]["x-cross-field-rules"] and {"429", "503"} <= set(responses)
    unloaded = client.get("/openapi.json").json()["components"]["schemas"]["GenerateRequest"]["properties"]
    assert unloaded["top_k"]["maximum"] == 4096  # no family loaded: the schema's own bound


# ---------------------------------------------------------------------------------------------- the guidance grid


@pytest.mark.parametrize(("family", "knobs", "forwards"), [("autoregressive", {"top_k": 16}, TOKENS),
                                                          ("masked", {"rounds": 3}, 3)])
def test_the_guidance_grid_runs_through_the_chosen_family(model_client, family, knobs, forwards):
    request = {"prompt": "a red circle", "family": family, "scales": [0, 3], "seeds": [5, 6], **knobs}
    r = model_client.post("/api/v1/generate/grid", json=request)
    assert r.status_code == 200, r.text
    grid = r.json()
    assert (grid["family"], grid["steps"], grid["sampler"], grid["seeds"]) == (family, None, None, [5, 6])
    assert [c["scale"] for c in grid["columns"]] == [0, 3] and grid["timings"]["network_forwards"] == forwards
    # A grid cell is the image POST /generate draws with the same family, knobs, scale and seed: the same tokens,
    # decoded in a batch of 4 rather than alone (float sums in another order: a level at most, here and there).
    posted = model_client.post(GENERATE, json={"prompt": "a red circle", "family": family, "seed": 6,
                                               "guidance_scale": 3, **knobs}).json()
    cell = decode_png(from_base64(grid["columns"][1]["images"][1]["png_base64"])).astype(int)
    other = decode_png(from_base64(grid["columns"][0]["images"][1]["png_base64"])).astype(int)
    alone = decode_png(pngs(posted)[0])
    assert np.abs(cell - alone).max() <= 2 and np.abs(other - alone).mean() > 4 * np.abs(cell - alone).mean()
    refused = model_client.post("/api/v1/generate/grid", json={**request, "steps": 4})
    assert refused.status_code == 422 and refused.json()["detail"][0]["type"] == "knob_family"
