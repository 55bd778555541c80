"""The OpenAI Images API, driven by the official `openai` package against a live server: the tiny random model for
the shapes, the refusals and the stream, the trained model for what the images show."""

import base64
import time

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI

from app.main import create_app
from app.service.imaging import decode_png, read_parameters
from app.web.middleware import MAX_BODY_BYTES
from app.web.state import state_of
from tests.helpers.models import COMMITTED_MODELS, model_settings, settings_for_tests
from tests.helpers.queue import full_queue
from tests.helpers.server import serve
from tests.helpers.streams import assert_closing_the_stream_cancels_the_job

KEY = "openai-dialect-key-0123"
PROMPT = "A Red Circle!"
FAST = {"seed": 7, "steps": 3}


pytestmark = pytest.mark.usefixtures("one_thread")


def sdk(server: str, api_key: str = "unused") -> OpenAI:
    """The official client pointed at this server, retrying nothing (a 429 must reach the test)."""
    return OpenAI(base_url=f"{server}/v1", api_key=api_key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def client(model_live_server) -> OpenAI:
    return sdk(model_live_server)


def png(b64: str) -> bytes:
    return base64.b64decode(b64)


def tokens_per_image(app) -> int:
    config = state_of(app).model.pipeline.dit.config
    return (config.latent_size // config.patch) ** 2


# ---------------------------------------------------------------------------------------------- images


def test_the_sdk_gets_the_pngs_of_api_v1_generate(client, model_live_server, model_live_app):
    before = time.time()
    answer = client.images.generate(model="diffusion-lab", prompt=PROMPT, n=2, size="32x32", response_format="b64_json",
                                    quality="hd", style="vivid", user="someone", extra_body=FAST)
    ours = httpx.post(f"{model_live_server}/api/v1/generate", json={"prompt": PROMPT, "batch_size": 2, **FAST},
                      timeout=60).json()
    assert [image.b64_json for image in answer.data] == [image["png_base64"] for image in ours["images"]]
    assert [image.revised_prompt for image in answer.data] == ["a red circle"] * 2
    assert before - 1 <= answer.created <= time.time() + 1
    assert (answer.size, answer.output_format, answer.background) == ("32x32", "png", "opaque")
    drawn = 2 * tokens_per_image(model_live_app)
    assert answer.usage.input_tokens == answer.usage.input_tokens_details.text_tokens == 3  # a red circle
    assert answer.usage.output_tokens == answer.usage.output_tokens_details.image_tokens == drawn
    assert answer.usage.total_tokens == 3 + drawn


def test_the_extensions_reach_the_sampler_and_the_png_says_so(client):
    answer = client.images.generate(prompt="a blue square", extra_body={
        **FAST, "negative_prompt": "a red circle", "guidance_scale": 2, "sampler": "ddim"})
    text = read_parameters(png(answer.data[0].b64_json))
    assert text.startswith("a blue square\nNegative prompt: a red circle\nSteps: 3, Sampler: DDIM, CFG scale: 2, ")
    assert "Seed: 7," in text
    default = client.images.generate(prompt="a blue square", extra_body=FAST)
    assert np.abs(decode_png(png(default.data[0].b64_json)).astype(int)
                  - decode_png(png(answer.data[0].b64_json))).mean() > 0.5


def test_the_guidance_method_extension_reaches_the_sampler(client):
    answer = client.images.generate(prompt="two red circles", extra_body={
        **FAST, "sampler": "ddim", "guidance_scale": 0.6, "guidance_method": "cfg++"})
    assert answer.data[0].revised_prompt == "two red circles"
    assert "Guidance method: cfg++" in read_parameters(png(answer.data[0].b64_json))
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(prompt="a red circle", extra_body={**FAST, "guidance_method": "cfg++"})
    assert err.value.body["param"] == "guidance_method" and "ddim" in err.value.body["message"]


@pytest.mark.parametrize("size", ["auto", "32x32", None])
def test_the_model_has_one_size_and_auto_means_it(client, size):
    chosen = {"size": size} if size else {}
    answer = client.images.generate(prompt="a red circle", **chosen, extra_body=FAST)
    assert decode_png(png(answer.data[0].b64_json)).shape == (32, 32, 3) and answer.size == "32x32"


def test_without_a_seed_each_answer_draws_its_own(client):
    first, second = (client.images.generate(prompt="a red circle", extra_body={"steps": 2}) for _ in range(2))
    assert first.data[0].b64_json != second.data[0].b64_json


# ---------------------------------------------------------------------------------------------- the stream


def stream_events(client, **kwargs) -> list:
    return list(client.images.generate(prompt="a red circle", stream=True, **kwargs))


def test_the_stream_sends_partial_images_at_evenly_spaced_steps_then_the_image(client, model_live_server):
    events = stream_events(client, partial_images=2, extra_body={"seed": 3, "steps": 6})
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    ours = httpx.get(f"{model_live_server}/api/v1/generate/stream", timeout=60,
                     params={"prompt": "a red circle", "seed": 3, "steps": 6}).text
    x0_hat = {}
    for block in ours.split("\n\n"):
        if block.startswith("event: step"):
            step = httpx.Response(200, content=block.split("data: ", 1)[1]).json()
            x0_hat[step["index"]] = step["previews"]["x0_hat"]
    # 2 partial images of 6 steps: after steps 2 and 4 (indices 1 and 3), the x̂0 previews of our own stream
    assert [e.b64_json for e in events[:2]] == [x0_hat[1], x0_hat[3]]
    done = events[-1]
    again = client.images.generate(prompt="a red circle", extra_body={"seed": 3, "steps": 6})
    assert done.b64_json == again.data[0].b64_json and done.size == "32x32" and done.output_format == "png"
    assert done.usage.input_tokens == 3 and done.usage.total_tokens == again.usage.total_tokens
    assert all(abs(e.created_at - time.time()) < 60 for e in events)


def test_no_partial_images_is_one_event_and_a_batch_is_one_completed_event_per_image(client):
    assert [e.type for e in stream_events(client, extra_body=FAST)] == ["image_generation.completed"]
    events = stream_events(client, n=2, partial_images=1, extra_body={**FAST, "steps": 4})
    assert [e.type for e in events] == ["image_generation.partial_image"] + ["image_generation.completed"] * 2
    assert events[1].b64_json != events[2].b64_json


def test_more_partial_images_than_steps_sends_what_fits(client):
    events = stream_events(client, partial_images=3, extra_body={**FAST, "steps": 2})
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.completed"]


def test_closing_the_stream_cancels_the_job(model_live_app, model_live_server, monkeypatch):
    assert_closing_the_stream_cancels_the_job(
        model_live_app, model_live_server, "/v1/images/generations",
        {"prompt": "a red circle", "stream": True, "partial_images": 1}, monkeypatch,
        method="POST", step_line=": step index")


def test_a_failure_after_the_start_is_the_official_error_event_which_the_sdk_raises(tiny_model_dir, monkeypatch):
    app = create_app(model_settings(tiny_model_dir, request_timeout_s=0.5))
    server = serve(app)
    url = next(server)
    dit = state_of(app).model.pipeline.dit
    forward = dit.forward

    def slow_forward(*args, **kwargs):
        time.sleep(0.02)  # 100 steps take over 2 s: the job, not the test, is slow
        return forward(*args, **kwargs)

    monkeypatch.setattr(dit, "forward", slow_forward)
    try:
        events = sdk(url).images.generate(prompt="a red circle", stream=True, extra_body={"steps": 100})
        with pytest.raises(openai.APIError) as caught:
            list(events)
        assert "time limit of 0.5 s" in caught.value.message
        assert caught.value.body["type"] == "server_error" and caught.value.body["code"] == "service_unavailable"
    finally:
        next(server, None)


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("request_", "param", "code", "says"), [
    ({"size": "64x64"}, "size", "size_unavailable", "this model draws only 32x32 images; ask for size '32x32'"),
    ({"size": "1024x1024"}, "size", "size_unavailable", "draws only 32x32"),
    ({"prompt": "a red dragon"}, "prompt", "prompt_unknown_words", "unknown word: dragon. The model knows: shapes"),
    ({"model": "dall-e-3"}, "model", "model_not_found", "'dall-e-3' does not exist: this server serves"),
    ({"response_format": "url"}, "response_format", "response_format_unavailable", "keeps no images"),
    ({"n": 5}, "n", "less_than_equal", "less than or equal to 4 (this server's DIFFUSION_LAB_MAX_BATCH)"),
    ({"n": 0}, "n", "greater_than_equal", "greater than or equal to 1"),
    ({"partial_images": 4, "stream": True}, "partial_images", "less_than_equal", "less than or equal to 3"),
    ({"extra_body": {"steps": 1001}}, "steps", "less_than_equal", "DIFFUSION_LAB_MAX_STEPS"),
    ({"extra_body": {"sampler": "euler"}}, "sampler", "literal_error", "'dpmpp_2m', 'ddim' or 'ddpm'"),
    ({"extra_body": {"seed": 2**31 - 1}, "n": 2}, "seed", "seed_range", "seed + n - 1 must be at most"),
    ({"extra_body": {"width": 64}}, "width", "extra_forbidden", "Unknown parameter: 'width'"),
])
def test_a_bad_request_raises_the_sdks_own_error_with_our_message(client, request_, param, code, says):
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(**{"prompt": "a red circle", **request_})
    err = caught.value
    assert err.status_code == 400 and (err.param, err.code, err.type) == (param, code, "invalid_request_error")
    assert says in err.body["message"] and says in err.message


def test_a_body_that_is_not_json_or_too_large_is_refused_in_the_official_shape(model_live_server):
    url = f"{model_live_server}/v1/images/generations"
    broken = httpx.post(url, content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "json_invalid"
    large = httpx.post(url, json={"prompt": "a" * (MAX_BODY_BYTES + 1)})
    assert large.status_code == 413
    assert large.json() == {"error": {"message": f"the request body is over {MAX_BODY_BYTES} bytes",
                                      "type": "invalid_request_error", "param": None, "code": "request_too_large"}}
    missing = httpx.get(f"{model_live_server}/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(url).status_code == 405 and httpx.get(url).json()["error"]["code"] == "method_not_allowed"


def test_a_full_queue_is_the_sdks_rate_limit_error_with_retry_after(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, worker_threads=1, queue_size=1, max_steps=1000))
    server = serve(app)
    url = next(server)
    try:
        with full_queue(app):
            for stream in (False, True):
                with pytest.raises(openai.RateLimitError) as caught:
                    sdk(url).images.generate(prompt="a red circle", stream=stream, extra_body=FAST)
                err = caught.value
                assert int(err.response.headers["retry-after"]) >= 1 and "busy" in err.body["message"]
                assert (err.type, err.code) == ("requests", "rate_limit_exceeded")
            ours = httpx.post(f"{url}/api/v1/generate", json={"prompt": "a red circle", **FAST})
            assert ours.status_code == 429 and ours.json()["detail"] == err.body["message"]  # one queue, one message
        assert sdk(url).images.generate(prompt="a red circle", extra_body=FAST).data
    finally:
        next(server, None)


def test_without_a_model_generation_is_a_503_and_no_model_is_listed():
    server = serve(create_app(settings_for_tests()))
    url = next(server)
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            sdk(url).images.generate(prompt="a red circle")
        assert caught.value.status_code == 503 and caught.value.code == "service_unavailable"
        assert "without the model" in caught.value.body["message"]
        assert sdk(url).models.list().data == []
    finally:
        next(server, None)


def test_the_api_key_is_the_sdks_api_key(tiny_model_dir):
    server = serve(create_app(model_settings(tiny_model_dir, api_key=KEY)))
    url = next(server)
    try:
        assert len(sdk(url, KEY).images.generate(prompt="a red circle", extra_body=FAST).data) == 1
        with pytest.raises(openai.AuthenticationError) as caught:
            sdk(url, KEY + "x").images.generate(prompt="a red circle", extra_body=FAST)
        assert (caught.value.status_code, caught.value.code) == (401, "invalid_api_key")
        assert "API key" in caught.value.body["message"]
        assert [m.id for m in sdk(url, "no key").models.list().data] == ["diffusion-lab"]  # listing runs nothing
    finally:
        next(server, None)


def test_the_model_is_listed(client):
    [model] = client.models.list().data
    assert (model.id, model.object, model.owned_by) == ("diffusion-lab", "model", "diffusion-lab")
    assert 0 < model.created <= time.time() + 1


# ---------------------------------------------------------------------------------------------- the trained model


@pytest.mark.weights
@pytest.mark.skipif(not (COMMITTED_MODELS / "denoiser.safetensors").is_file(), reason="no trained weights")
def test_the_judge_reads_the_sdks_images_right():
    from app.measure.judge import judge, matches
    from app.world.prompts import parse_prompt

    prompt = "a large red circle at the top left"
    server = serve(create_app(model_settings(COMMITTED_MODELS)))
    url = next(server)
    try:
        answer = sdk(url).images.generate(model="diffusion-lab", prompt=prompt, n=4, size="64x64",
                                          extra_body={"seed": 0})
    finally:
        next(server, None)
    images = np.stack([decode_png(png(image.b64_json)) for image in answer.data])
    assert images.shape == (4, 64, 64, 3)
    verdicts = [matches(v, parse_prompt(prompt)) for v in judge(images)]
    assert sum(v["all"] for v in verdicts) >= 3, verdicts
