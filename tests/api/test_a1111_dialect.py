"""AUTOMATIC1111's web UI API, driven by the `webuiapi` package against a live server (the tiny random model; the
trained one for what the images show), its PNGs read back by sd-parsers, an independent reader of A1111's chunk."""

import base64
import io
import json
import threading
import time

import httpx
import numpy as np
import pytest
import webuiapi
from PIL import Image

from app.main import create_app
from app.service.imaging import decode_png, encode_png, read_parameters
from app.web.state import state_of
from tests.helpers.metadata import TRAINED_ALGORITHMIC_MEDIA, sd_parsers_read
from tests.helpers.models import COMMITTED_MODELS, model_settings, settings_for_tests
from tests.helpers.queue import full_queue
from tests.helpers.server import serve

KEY = "a1111-dialect-key-0123"
SMALL = {"width": 32, "height": 32}  # the tiny model's one size
FAST = {"seed": 7, "steps": 3, **SMALL}


pytestmark = pytest.mark.usefixtures("one_thread")


def webui(server: str, client_id: str | None = None, **kwargs) -> webuiapi.WebUIApi:
    """The client pointed at this server, sampling with DPM++ 2M (its own default, Euler a, is not served)."""
    api = webuiapi.WebUIApi(baseurl=f"{server}/sdapi/v1", **{"sampler": "DPM++ 2M", **kwargs})
    if client_id is not None:
        api.session.headers["X-Client-Id"] = client_id
    return api


@pytest.fixture(scope="module")
def api(model_live_server) -> webuiapi.WebUIApi:
    return webui(model_live_server)


def pngs(result) -> list[bytes]:
    return [base64.b64decode(image) for image in result.json["images"]]


def refusal(call) -> tuple[int, dict]:
    """webuiapi raises RuntimeError(status, body text) for anything but a 200."""
    with pytest.raises(RuntimeError) as caught:
        call()
    status, text = caught.value.args
    return status, json.loads(text)


# ---------------------------------------------------------------------------------------------- txt2img


def test_txt2img_gets_the_pngs_of_api_v1_generate(api, model_live_server, model_live_app):
    result = api.txt2img(prompt="A Red Circle!", negative_prompt="a blue square", cfg_scale=3, sampler_name="DDIM",
                         eta=0.5, batch_size=2, n_iter=2, **FAST)
    ours = httpx.post(f"{model_live_server}/api/v1/generate", timeout=60, json={
        "prompt": "A Red Circle!", "negative_prompt": "a blue square", "guidance_scale": 3, "sampler": "ddim",
        "eta": 0.5, "batch_size": 4, "seed": 7, "steps": 3}).json()
    assert result.json["images"] == [image["png_base64"] for image in ours["images"]]
    assert [image.size for image in result.images] == [(32, 32)] * 4
    info = result.info
    assert (info["seed"], info["all_seeds"], info["batch_size"], info["n_iter"]) == (7, [7, 8, 9, 10], 2, 2)
    assert info["all_prompts"] == ["A Red Circle!"] * 4 and info["negative_prompt"] == "a blue square"
    assert (info["sampler_name"], info["cfg_scale"], info["steps"], info["width"], info["height"]) == (
        "DDIM", 3, 3, 32, 32)
    assert (info["sd_model_name"], info["sd_model_hash"]) == ("diffusion-lab", state_of(model_live_app).model.model_id)
    assert info["infotexts"] == [read_parameters(png) for png in pngs(result)]
    assert info["infotexts"][1].startswith("A Red Circle!\nNegative prompt: a blue square\nSteps: 3, Sampler: DDIM, "
                                           "CFG scale: 3, Eta: 0.5, Seed: 8, Size: 32x32")
    assert result.parameters["sampler_name"] == "DDIM" and result.parameters["seed"] == 7


def test_sd_parsers_reads_the_png_as_automatic1111s(api):
    result = api.txt2img(prompt="a small green triangle", cfg_scale=4, **FAST)
    read = sd_parsers_read(pngs(result)[0])
    assert read.generator.name == "AUTOMATIC1111"
    [sampler] = read.samplers
    assert sampler.name == "DPM++ 2M" and sampler.parameters == {"cfg_scale": "4", "seed": "7", "steps": "3"}
    assert sampler.model.name == "diffusion-lab" and [p.value for p in sampler.prompts] == ["a small green triangle"]


def test_seed_minus_one_draws_one_that_redraws_the_picture(api):
    first, second = (api.txt2img(prompt="a red circle", seed=-1, steps=2, **SMALL) for _ in range(2))
    assert first.info["seed"] != second.info["seed"] and 0 <= first.info["seed"] < 2**31
    again = api.txt2img(prompt="a red circle", seed=first.info["seed"], steps=2, **SMALL)
    assert pngs(again) == pngs(first)


def test_every_listed_sampler_and_alias_is_taken_and_written_by_its_name(api):
    listed = api.get_samplers()
    assert [s["name"] for s in listed] == ["DPM++ 2M", "DDIM", "DDPM"]
    for sampler in listed:
        for name in (sampler["name"], *sampler["aliases"]):
            result = api.txt2img(prompt="a red circle", sampler_name=name, **{**FAST, "steps": 1})
            assert f"Sampler: {sampler['name']}," in result.info["infotexts"][0], name


def test_sampler_index_is_read_only_without_sampler_name(model_live_server):
    url = f"{model_live_server}/sdapi/v1/txt2img"
    old = httpx.post(url, json={"prompt": "a red circle", "sampler_index": "DDIM", "steps": 1, **SMALL}, timeout=60)
    assert old.status_code == 200 and "Sampler: DDIM," in json.loads(old.json()["info"])["infotexts"][0]
    both = httpx.post(url, json={"prompt": "", "sampler_name": "DDPM", "sampler_index": "Euler a", "steps": 1,
                                 **SMALL}, timeout=60)
    assert both.status_code == 200 and "Sampler: DDPM," in json.loads(both.json()["info"])["infotexts"][0]


def test_fields_it_does_not_know_are_ignored_as_a1111_ignores_them(model_live_server):
    r = httpx.post(f"{model_live_server}/sdapi/v1/txt2img", timeout=60, json={
        "prompt": "a red circle", "styles": ["x"], "restore_faces": False, "alwayson_scripts": {}, "clip_skip": 2,
        **FAST})
    assert r.status_code == 200 and len(r.json()["images"]) == 1


def test_send_images_false_answers_the_info_only(api):
    result = api.txt2img(prompt="a red circle", send_images=False, **FAST)
    assert result.images == [] and result.info["all_seeds"] == [7] and len(result.info["infotexts"]) == 1


@pytest.mark.parametrize(("request_", "field", "kind", "says"), [
    ({"sampler_name": "Euler a"}, "sampler_name", "sampler_unknown", "this model samples with DPM++ 2M, DDIM or DDPM"),
    ({"sampler_name": "DPM++ 2M Karras"}, "sampler_name", "sampler_unknown", "'DPM++ 2M Karras' is not served"),
    ({"width": 512, "height": 512}, "width", "size_unavailable", "draws only 32x32 images; set width and height"),
    ({"height": 64}, "height", "size_unavailable", "draws only 32x32"),
    ({"scheduler": "Karras"}, "scheduler", "scheduler_unknown", "the schedule it was trained with"),
    ({"enable_hr": True}, "enable_hr", "hires_unavailable", "there is no hires fix"),
    ({"batch_size": 3, "n_iter": 2}, "n_iter", "images_per_request", "6 images; this server's DIFFUSION_LAB_MAX_BATCH"),
    ({"batch_size": 5}, "batch_size", "less_than_equal", "less than or equal to 4"),
    ({"steps": 1001}, "steps", "less_than_equal", "DIFFUSION_LAB_MAX_STEPS"),
    ({"cfg_scale": 21}, "cfg_scale", "less_than_equal", "less than or equal to 20"),
    ({"seed": -2}, "seed", "greater_than_equal", "greater than or equal to -1"),
    ({"seed": 2**31 - 1, "batch_size": 2}, "seed", "seed_range", "seed + batch_size x n_iter - 1 must be at most"),
    ({"prompt": "a red dragon"}, "prompt", "prompt_unknown_words", "unknown word: dragon. The model knows"),
])
def test_what_the_model_cannot_honour_is_a_422_naming_the_field(api, request_, field, kind, says):
    status, body = refusal(lambda: api.txt2img(**{"prompt": "a red circle", **FAST, **request_}))
    assert status == 422
    [error] = [e for e in body["detail"] if e["loc"] == ["body", field]]
    assert error["type"] == kind and says in error["msg"], error


def test_webuiapis_own_defaults_get_clear_refusals(model_live_server):
    """Its default sampler (Euler a), then its default size (512 x 512), each named."""
    status, body = refusal(lambda: webui(model_live_server, sampler="Euler a").txt2img(prompt="a red circle"))
    assert status == 422 and [(e["loc"], e["type"]) for e in body["detail"]] == [
        (["body", "sampler_name"], "sampler_unknown")]
    status, body = refusal(lambda: webui(model_live_server).txt2img(prompt="a red circle"))
    assert status == 422 and [(e["loc"], e["type"]) for e in body["detail"]] == [
        (["body", "width"], "size_unavailable"), (["body", "height"], "size_unavailable")]


# ---------------------------------------------------------------------------------------------- progress and interrupt


def wait_for(condition, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := condition()) is not None:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_progress_shows_the_callers_job_and_its_preview_and_interrupt_stops_it_alone(model_live_server,
                                                                                       model_live_app, monkeypatch):
    dit = state_of(model_live_app).model.pipeline.dit
    forward = dit.forward

    def slow_forward(*args, **kwargs):
        time.sleep(0.005)  # 1,000 steps take over 5 s however fast the machine: the job outlasts the test's polls
        return forward(*args, **kwargs)

    monkeypatch.setattr(dit, "forward", slow_forward)
    alice, bob = webui(model_live_server, "alice"), webui(model_live_server, "bob")
    assert alice.get_progress()["state"]["job_count"] == 0
    answered = {}
    long_job = threading.Thread(target=lambda: answered.setdefault("alice", alice.txt2img(
        prompt="a red circle", steps=1000, **SMALL)))
    long_job.start()
    try:
        now = wait_for(lambda: p if (p := alice.get_progress())["state"]["sampling_step"] > 0 else None)
        state = now["state"]
        assert (state["job"], state["job_count"], state["sampling_steps"], now["textinfo"]) == (
            "txt2img", 1, 1000, "sampling")
        assert now["progress"] == pytest.approx(state["sampling_step"] / 1000, abs=0.05) and now["eta_relative"] > 0
        preview = wait_for(lambda: alice.get_progress()["current_image"])  # asked, then decoded at a later step
        png = base64.b64decode(preview)
        assert decode_png(png).shape == (32, 32, 3) and TRAINED_ALGORITHMIC_MEDIA in png.decode("latin-1")
        skipped = alice.session.get(f"{alice.baseurl}/progress", params={"skip_current_image": "true"}).json()
        assert skipped["current_image"] is None and skipped["state"]["sampling_step"] > 0

        theirs = bob.get_progress()
        assert (theirs["progress"], theirs["state"]["job_count"], theirs["current_image"]) == (0, 0, None)
        assert bob.interrupt() == {"interrupted": 0}
        before = alice.get_progress()["state"]["sampling_step"]
        wait_for(lambda: True if alice.get_progress()["state"]["sampling_step"] > before else None)

        assert alice.interrupt() == {"interrupted": 1}
        long_job.join(20)
        stopped = answered["alice"]
        assert stopped.images == [] and stopped.info["interrupted"] is True and stopped.info["all_seeds"] == []
    finally:
        alice.interrupt()
        long_job.join(20)
    assert alice.get_progress()["state"]["job_count"] == 0
    assert wait_for(lambda: True if state_of(model_live_app).sampler.running == 0 else None)
    assert len(alice.txt2img(prompt="a red circle", **FAST).images) == 1


# ---------------------------------------------------------------------------------------------- png-info


def test_png_info_reads_the_parameters_back_as_a1111_does(api):
    result = api.txt2img(prompt="a large red circle", negative_prompt="a blue square", cfg_scale=2, **FAST)
    read = api.png_info(result.images[0])
    assert read.info == result.info["infotexts"][0]
    assert {k: read.json["parameters"][k] for k in ("Prompt", "Negative prompt", "Steps", "Sampler", "CFG scale",
                                                     "Seed", "Size-1", "Size-2", "Model")} == {
        "Prompt": "a large red circle", "Negative prompt": "a blue square", "Steps": "3", "Sampler": "DPM++ 2M",
        "CFG scale": "2", "Seed": "7", "Size-1": "32", "Size-2": "32", "Model": "diffusion-lab"}
    assert TRAINED_ALGORITHMIC_MEDIA in read.json["items"]["XML:com.adobe.xmp"]


def test_png_info_takes_a_data_url_and_a_png_without_parameters(model_live_server):
    url = f"{model_live_server}/sdapi/v1/png-info"
    bare = base64.b64encode(encode_png(np.zeros((4, 4, 3), np.uint8))).decode()
    r = httpx.post(url, json={"image": f"data:image/png;base64,{bare}"})
    assert r.status_code == 200 and (r.json()["info"], r.json()["parameters"]) == ("", {})


@pytest.mark.parametrize(("image", "kind"), [
    ("not base64!", "string_pattern_mismatch"), ("abc", "image_invalid"), ("", "image_invalid"),
    (base64.b64encode(b"GIF89a" + bytes(30)).decode(), "image_invalid")])
def test_png_info_refuses_what_is_not_a_base64_png(model_live_server, image, kind):
    r = httpx.post(f"{model_live_server}/sdapi/v1/png-info", json={"image": image})
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "image"] and error["type"] == kind


def test_a_jpeg_is_refused_too(model_live_server):
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="JPEG")
    r = httpx.post(f"{model_live_server}/sdapi/v1/png-info", json={"image": base64.b64encode(out.getvalue()).decode()})
    assert r.status_code == 422 and "not a PNG" in r.json()["detail"][0]["msg"]


# ---------------------------------------------------------------------------------------- what clients read at connect


def test_the_model_options_and_schedulers_are_listed(api, model_live_app):
    model_id = state_of(model_live_app).model.model_id
    [model] = api.get_sd_models()
    assert model == {"title": f"diffusion-lab [{model_id}]", "model_name": "diffusion-lab", "hash": model_id,
                     "sha256": None, "filename": "denoiser.safetensors", "config": None}
    assert api.util_get_model_names() == [model["title"]]
    options = api.get_options()
    assert options["sd_model_checkpoint"] == model["title"] and options["samples_format"] == "png"
    assert [s["name"] for s in api.session.get(f"{api.baseurl}/schedulers").json()] == ["automatic"]


def test_options_are_read_only_and_refusals_have_a1111s_shape(model_live_server):
    r = httpx.post(f"{model_live_server}/sdapi/v1/options", json={"sd_model_checkpoint": "other"})
    assert r.status_code == 405
    assert r.json() == {"error": "HTTPException", "detail": "Method Not Allowed", "body": "",
                        "errors": "Method Not Allowed"}
    assert httpx.get(f"{model_live_server}/sdapi/v1/nothing").json()["detail"] == "Not Found"


def test_a_full_queue_is_a_429_with_retry_after_in_a1111s_shape(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, worker_threads=1, queue_size=1, max_steps=1000))
    server = serve(app)
    url = next(server)
    try:
        with full_queue(app):
            status, body = refusal(lambda: webui(url).txt2img(prompt="a red circle", **FAST))
            assert status == 429 and body["error"] == "HTTPException" and "busy" in body["detail"]
            assert body["errors"] == body["detail"]
            raw = httpx.post(f"{url}/sdapi/v1/txt2img", json={"prompt": "a red circle", **FAST})
            assert raw.status_code == 429 and int(raw.headers["retry-after"]) >= 1
            ours = httpx.post(f"{url}/api/v1/generate", json={"prompt": "a red circle", "seed": 7, "steps": 3})
            assert ours.status_code == 429 and ours.json()["detail"] == body["detail"]  # one queue, one message
        assert len(webui(url).txt2img(prompt="a red circle", **FAST).images) == 1
    finally:
        next(server, None)


def test_without_a_model_txt2img_is_a_503_and_nothing_is_listed():
    server = serve(create_app(settings_for_tests()))
    url = next(server)
    try:
        status, body = refusal(lambda: webui(url).txt2img(prompt="a red circle", **FAST))
        assert status == 503 and "without the model" in body["detail"]
        assert webui(url).get_sd_models() == [] and webui(url).get_options()["sd_model_checkpoint"] is None
    finally:
        next(server, None)


def test_the_api_key_is_taken_as_the_password_a1111_clients_send(tiny_model_dir):
    server = serve(create_app(model_settings(tiny_model_dir, api_key=KEY)))
    url = next(server)
    try:
        keyed = webui(url, username="anyone", password=KEY)
        assert len(keyed.txt2img(prompt="a red circle", **FAST).images) == 1
        assert keyed.get_progress()["state"]["job_count"] == 0
        for client in (webui(url), webui(url, username="anyone", password=KEY + "x")):
            status, body = refusal(lambda: client.txt2img(prompt="a red circle", **FAST))
            assert status == 401 and "API key" in body["detail"] and body["error"] == "HTTPException"
            assert client.session.get(f"{url}/sdapi/v1/progress").status_code == 401
            assert client.session.post(f"{url}/sdapi/v1/interrupt").status_code == 401
        assert len(webui(url).get_sd_models()) == 1  # listing runs nothing
    finally:
        next(server, None)


# ---------------------------------------------------------------------------------------------- the trained model


@pytest.mark.weights
@pytest.mark.skipif(not (COMMITTED_MODELS / "denoiser.safetensors").is_file(), reason="no trained weights")
def test_the_judge_reads_webuiapis_images_right():
    from app.measure.judge import judge, matches
    from app.world.prompts import parse_prompt

    prompt = "a small blue square at the bottom right"
    server = serve(create_app(model_settings(COMMITTED_MODELS)))
    url = next(server)
    try:
        result = webui(url).txt2img(prompt=prompt, seed=0, batch_size=2, n_iter=2, width=64, height=64)
    finally:
        next(server, None)
    images = np.stack([decode_png(png) for png in pngs(result)])
    assert images.shape == (4, 64, 64, 3)
    verdicts = [matches(v, parse_prompt(prompt)) for v in judge(images)]
    assert sum(v["all"] for v in verdicts) >= 3, verdicts
