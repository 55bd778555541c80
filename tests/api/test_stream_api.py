"""GET /api/v1/generate/stream (Server-Sent Events) and GET /api/v1/generate/validate, through the tiny model."""

import json
import uuid

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.pipelines.image import GenerationSettings
from app.service.imaging import decode_png, from_base64, read_parameters
from app.service.previews import latent_to_rgb
from app.web.state import state_of
from tests.helpers.models import model_settings
from tests.helpers.streams import assert_closing_the_stream_cancels_the_job

STREAM, VALIDATE, GENERATE = "/api/v1/generate/stream", "/api/v1/generate/validate", "/api/v1/generate"
QUERY = {"prompt": "a red circle", "seed": 7, "steps": 5}


pytestmark = pytest.mark.usefixtures("one_thread")


def parse_sse(lines) -> list[tuple[str, dict]]:
    """(event name, JSON data) per event of a text/event-stream; keep-alive comments are skipped."""
    events, name, data = [], None, []
    for line in lines:
        if line == "":
            if data:
                events.append((name or "message", json.loads("\n".join(data))))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


def stream(client, **params) -> list[tuple[str, dict]]:
    with client.stream("GET", STREAM, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())


def png_array(b64: str) -> np.ndarray:
    return decode_png(from_base64(b64))


# ---------------------------------------------------------------------------------------------- the stream


def test_events_come_in_order_with_one_id_and_the_schedule_readouts(model_client, model_app):
    events = stream(model_client, **QUERY)
    assert [name for name, _ in events] == ["start"] + ["step"] * 5 + ["result"]
    ids = {data["id"] for _, data in events}
    assert len(ids) == 1 and uuid.UUID(ids.pop()).version == 4
    start, steps, result = events[0][1], [d for _, d in events[1:-1]], events[-1][1]
    assert start["parameters"]["seed"] == 7 and start["total_steps"] == 5 and start["previews"] is True
    assert start["prompt_canonical"] == "a red circle" and start["preview_seed"] == 7
    assert start["latent_shape"] == [4, 4, 4] and start["resolution"] == 32
    assert [s["index"] for s in steps] == [0, 1, 2, 3, 4] and {s["total"] for s in steps} == {5}
    ts = [s["t"] for s in steps]
    assert ts == sorted(ts, reverse=True) and len(set(ts)) == 5 and ts[0] == 999
    abar = state_of(model_app).model.pipeline.schedule.alphas_cumprod
    for s in steps:
        assert s["abar_t"] == pytest.approx(float(abar[s["t"]]), rel=1e-12)
        assert s["sqrt_abar_t"] ** 2 == pytest.approx(s["abar_t"])
        assert s["sqrt_one_minus_abar_t"] ** 2 == pytest.approx(1 - s["abar_t"])
        assert s["remaining_s"] >= 0
    assert steps[-1]["remaining_s"] == 0
    elapsed = [s["elapsed_s"] for s in steps]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    assert result["parameters"] == start["parameters"] and len(result["images"]) == 1


def test_previews_decode_as_png_and_step_0_shows_the_starting_noise(model_client, model_app):
    events = stream(model_client, **QUERY)
    steps = [d for name, d in events if name == "step"]
    for s in steps:
        assert png_array(s["previews"]["x_t"]).shape == (4, 4, 3)
        assert png_array(s["previews"]["eps_hat"]).shape == (4, 4, 3)
        assert png_array(s["previews"]["x0_hat"]).shape == (32, 32, 3)
    x_T = state_of(model_app).model.pipeline.initial_noise([torch.Generator().manual_seed(7)])
    assert np.array_equal(png_array(steps[0]["previews"]["x_t"]), latent_to_rgb(x_T[0]))
    assert not np.array_equal(png_array(steps[0]["previews"]["x0_hat"]), png_array(steps[-1]["previews"]["x0_hat"]))


def test_the_result_is_the_post_generate_payload(model_client):
    query = {**QUERY, "batch_size": 2, "guidance_scale": 3.5, "negative_prompt": "blue square"}
    result = stream(model_client, **query)[-1][1]
    posted = model_client.post(GENERATE, json=query).json()
    assert set(result) == set(posted) | {"id"}
    assert result["parameters"] == posted["parameters"]
    assert [i["png_base64"] for i in result["images"]] == [i["png_base64"] for i in posted["images"]]
    assert [i["seed"] for i in result["images"]] == [7, 8]
    assert result["negative_prompt_canonical"] == "a blue square"
    assert read_parameters(from_base64(result["images"][1]["png_base64"])).startswith("a red circle\n"
                                                                                      "Negative prompt: blue square\n")


def test_previews_false_sends_numbers_only_and_a_random_seed_is_reported(model_client):
    events = stream(model_client, prompt="a green square", steps=3, previews="false")
    start, steps, result = events[0][1], [d for n, d in events if n == "step"], events[-1][1]
    assert start["previews"] is False and all(s["previews"] is None for s in steps) and len(steps) == 3
    assert result["parameters"]["seed"] == start["parameters"]["seed"] == result["images"][0]["seed"]


def test_two_streams_have_different_ids(model_client):
    first, second = stream(model_client, **QUERY), stream(model_client, **QUERY)
    assert first[0][1]["id"] != second[0][1]["id"]
    assert [d["previews"] for n, d in first if n == "step"] == [d["previews"] for n, d in second if n == "step"]


def test_the_stream_is_documented_as_event_stream(model_client):
    operation = model_client.get("/openapi.json").json()["paths"][STREAM]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {p["name"] for p in operation["parameters"]} >= {"prompt", "seed", "steps", "guidance_scale", "previews"}


# ------------------------------------------------------------------------------ refused before the stream


@pytest.mark.parametrize(("params", "field"), [
    ({"prompt": "a red blorb"}, "prompt"),
    ({"prompt": "a circle", "negative_prompt": "star"}, "negative_prompt"),
    ({"prompt": "a circle", "steps": 0}, "steps"),
    ({"prompt": "a circle", "steps": "many"}, "steps"),
    ({"prompt": "a circle", "steps": 51}, "steps"),  # the model app's DIFFUSION_LAB_MAX_STEPS is 50
    ({"prompt": "a circle", "batch_size": 5}, "batch_size"),  # ... and its MAX_BATCH is 4
    ({"prompt": "a circle", "guidance_scale": 21}, "guidance_scale"),
    ({"prompt": "a circle", "guidance_scale": "nan"}, "guidance_scale"),
    ({"prompt": "a circle", "sampler": "euler"}, "sampler"),
    ({"prompt": "a circle", "seed": -1}, "seed"),
    ({"prompt": "a circle", "seed": 2**31 - 1, "batch_size": 2}, "seed"),
    ({"prompt": "a circle", "previews": "maybe"}, "previews"),
    ({"prompt": "a circle", "colour": "red"}, "colour"),
    ({}, "prompt"),
])
def test_bad_parameters_are_a_plain_422_naming_the_field_and_the_check_says_the_same_in_a_200(model_client, params,
                                                                                             field):
    refused = model_client.get(STREAM, params=params)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/json"
    detail = refused.json()["detail"]
    assert ["query", field] in [d["loc"] for d in detail]
    check = model_client.get(VALIDATE, params=params)  # a page checks as the reader types: no failed request
    assert check.status_code == 200
    assert check.json() == {"valid": False, "prompt_canonical": None, "negative_prompt_canonical": None,
                            "errors": [{k: d[k] for k in ("loc", "msg", "type")} for d in detail]}


def test_an_unknown_word_names_it_and_lists_the_vocabulary(model_client):
    [detail] = model_client.get(STREAM, params={"prompt": "a red star"}).json()["detail"]
    assert detail["msg"].startswith("unknown word: star") and "circle" in detail["ctx"]["vocabulary"]


def test_validate_answers_the_captions_the_model_will_read(model_client, client):
    for c in (model_client, client):  # no model needed to check a request
        response = c.get(VALIDATE, params={"prompt": "Big RED disc, top left", "negative_prompt": "blue square"})
        assert response.status_code == 200
        assert response.json() == {"valid": True, "errors": [], "prompt_canonical": "a large red circle at the top left",
                                   "negative_prompt_canonical": "a blue square"}


@pytest.mark.parametrize("prompt", ["", "   ", " the "])
def test_an_empty_or_blank_prompt_is_the_unconditional_sample_everywhere(model_client, prompt):
    """One rule: the prompt must be sent, and empty or blank (or only filler words) asks for no caption."""
    check = model_client.get(VALIDATE, params={"prompt": prompt}).json()
    assert check["valid"] and check["prompt_canonical"] == ""
    [(name, start)] = stream(model_client, prompt=prompt, steps=1, previews="false")[:1]
    assert name == "start" and start["prompt_canonical"] == ""
    body = model_client.post(GENERATE, json={"prompt": prompt, "steps": 1, "seed": 3}).json()
    assert body["prompt_canonical"] == "" and body["parameters"]["prompt"] == prompt


def test_the_check_documents_no_422(model_client):
    responses = model_client.get("/openapi.json").json()["paths"][VALIDATE]["get"]["responses"]
    assert "422" not in responses and set(responses) == {"200", "4XX"}


def test_without_a_model_the_stream_is_503_with_retry_after(client):
    response = client.get(STREAM, params=QUERY)
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert "without the model" in response.json()["detail"]


def test_a_full_queue_is_429_before_the_stream(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, worker_threads=1, queue_size=1, max_steps=1000))
    with TestClient(app) as c:
        service = state_of(app).sampler
        held = [service.submit(GenerationSettings(prompt="", steps=1000)) for _ in range(service.capacity)]
        try:
            response = c.get(STREAM, params=QUERY)
            assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
            assert "busy" in response.json()["detail"]
        finally:
            for job in held:
                job.cancel()


# ---------------------------------------------------------------------------------------------- after the start


def test_a_job_past_the_time_limit_ends_the_stream_with_a_503_error_event(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, request_timeout_s=0.5, max_steps=1000))
    with TestClient(app) as c:
        events = stream(c, prompt="a circle", steps=1000)
    assert events[0][0] == "start" and events[-1][0] == "error"
    error = events[-1][1]
    assert error["id"] == events[0][1]["id"] and error["status"] == 503 and "time limit" in error["detail"]
    steps = [d["index"] for n, d in events if n == "step"]
    assert steps == list(range(len(steps))) and len(steps) < 1000


def test_closing_the_stream_cancels_the_job_within_a_step(model_live_app, model_live_server, monkeypatch):
    assert_closing_the_stream_cancels_the_job(model_live_app, model_live_server, STREAM, {"prompt": "a circle"}, monkeypatch)
