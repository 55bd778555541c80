"""Text to video over HTTP through the tiny random models: POST /generate/video, its stream, the attention timing,
the video section of GET /model, the app without (or with broken) video weights, and the animation files."""

import io
import json
import shutil
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.diffusion.samplers import SamplingCancelled
from app.main import create_app
from app.measure.video import ClipMetrics
from app.pipelines.image import WEIGHT_FILES, GenerationSettings
from app.pipelines.video import VIDEO_WEIGHT_FILES, ClipSettings
from app.service.imaging import animation_frame_ms, decode_animation, decode_png, encode_animation, from_base64
from app.service.jobs import QueueFull
from app.service.sampling import SamplingService
from app.web.state import state_of
from tests.api.test_stream_api import parse_sse
from tests.api.test_stream_api import stream as image_stream
from tests.helpers.models import model_settings
from tests.helpers.streams import assert_closing_the_stream_cancels_the_job

VIDEO, STREAM = "/api/v1/generate/video", "/api/v1/generate/video/stream"
ATTENTION, MODEL = "/api/v1/instruments/coherence/attention", "/api/v1/model"
BODY = {"prompt": "a red circle moving right", "seed": 7, "steps": 3}
METRIC_KEYS = set(ClipMetrics.__dataclass_fields__)


pytestmark = pytest.mark.usefixtures("one_thread")


def frames_of(clip: dict) -> np.ndarray:
    return np.stack([decode_png(from_base64(f)) for f in clip["frames"]])


def stream(client, **params) -> list[tuple[str, dict]]:
    with client.stream("GET", STREAM, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())


@pytest.fixture
def image_only_dir(tiny_model_dir, tmp_path):
    """The tiny image model's files without the video ones."""
    for name in WEIGHT_FILES.values():
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    return tmp_path


# ---------------------------------------------------------------------------------------------- POST, happy path


def test_a_clip_has_its_frames_animation_metrics_and_parameters(model_client, model_app):
    r = model_client.post(VIDEO, json=BODY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prompt"] == "a red circle moving right" and body["seed"] == 7
    assert body["parsed"] == {"shape": "circle", "colour": "red", "size": None, "direction": "right", "start": None}
    assert body["parameters"] == {**BODY, "negative_prompt": "", "guidance_scale": 5.0, "guidance_rescale": 0.0,
                                  "sampler": "dpmpp_2m", "eta": 0.0, "frames": 8, "compare": False, "format": "apng",
                                  "include_frames": True}
    assert body["model_id"] == state_of(model_app).video.model_id and body["baseline"] is None
    clip = body["video"]
    assert clip["method"] == "video" and clip["caption"] == "a red circle moving right"
    frames = frames_of(clip)
    assert frames.shape == (8, 32, 32, 3)
    assert clip["animation"]["mime"] == "image/apng" and clip["animation"]["frame_ms"] == 125
    shown, durations = decode_animation(from_base64(clip["animation"]["base64"]))
    assert sum(durations) == 8 * 125 and np.array_equal(shown[0], frames[0])
    assert set(clip["metrics"]) == METRIC_KEYS and clip["metrics"]["frames"] == 8
    assert set(clip["metrics"]["adherence"]) >= {"shape", "colour", "direction", "all"}
    assert clip["timings"]["network_forwards"] == 3 and clip["timings"]["sampling_s"] > 0
    timings = body["timings"]  # sampling and measuring are separate spans of the request, both inside total_s
    assert timings["total_s"] >= timings["run_s"] + timings["metrics_s"] and timings["queue_s"] >= 0
    assert timings["run_s"] >= clip["timings"]["sampling_s"] and timings["metrics_s"] > 0
    assert timings["network_forwards"] == clip["timings"]["network_forwards"]


def test_same_seed_same_frames_and_another_seed_other_frames(model_client):
    first, again = (frames_of(model_client.post(VIDEO, json=BODY).json()["video"]) for _ in range(2))
    other = frames_of(model_client.post(VIDEO, json={**BODY, "seed": 8}).json()["video"])
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_compare_adds_the_per_frame_baseline_from_the_image_model(model_client, model_app):
    body = model_client.post(VIDEO, json={**BODY, "compare": True, "frames": 4, "prompt": "a red circle moving "
                                                                                          "right from the left"}).json()
    video, baseline = body["video"], body["baseline"]
    assert video["caption"] == "a red circle moving right from the left"
    assert baseline["method"] == "per_frame" and baseline["caption"] == "a red circle at the left"
    assert frames_of(video).shape == frames_of(baseline).shape == (4, 32, 32, 3)
    assert set(baseline["metrics"]) == METRIC_KEYS
    # frame k of the baseline is the image model's picture from seed 7 + k
    image = state_of(model_app).model.pipeline.generate(GenerationSettings(prompt="a red circle at the left", seed=9, steps=3))
    difference = np.abs(frames_of(baseline)[2].astype(int) - image.images[0])  # a batch of 4 vs 1: rounding only
    assert difference.max() <= 2


def test_gif_and_no_frames(model_client):
    clip = model_client.post(VIDEO, json={**BODY, "format": "gif", "include_frames": False}).json()["video"]
    assert clip["frames"] == [] and clip["animation"]["mime"] == "image/gif" and clip["animation"]["frame_ms"] == 120
    with Image.open(io.BytesIO(from_base64(clip["animation"]["base64"]))) as gif:
        assert gif.format == "GIF" and gif.size == (32, 32)


@pytest.mark.parametrize("prompt", ["", "   "])
def test_an_empty_or_blank_prompt_is_an_unconditional_clip_as_for_images(model_client, prompt):
    body = model_client.post(VIDEO, json={"prompt": prompt, "steps": 1, "frames": 2, "seed": 1}).json()
    assert body["prompt"] == "" and body["video"]["caption"] == ""
    assert body["parsed"] == {"shape": None, "colour": None, "size": None, "direction": None, "start": None}


def test_an_absent_seed_is_drawn_and_reported(model_client):
    body = model_client.post(VIDEO, json={"prompt": "a circle", "steps": 1, "frames": 2}).json()
    assert 0 <= body["seed"] == body["parameters"]["seed"] <= 2**31 - 2


# ---------------------------------------------------------------------------------------------- refused


@pytest.mark.parametrize(("change", "field"), [
    ({"prompt": "a red circle moving sideways"}, "prompt"),
    ({"prompt": "a circle moving up and down"}, "prompt"),
    ({"prompt": "x" * 201}, "prompt"),
    ({"negative_prompt": "a star"}, "negative_prompt"),
    ({"frames": 9}, "frames"),  # the tiny video model knows 8 frames
    ({"frames": 1}, "frames"),
    ({"frames": 10**6}, "frames"),
    ({"steps": 0}, "steps"),
    ({"steps": 51}, "steps"),  # the model app's DIFFUSION_LAB_MAX_STEPS is 50
    ({"steps": 10**9}, "steps"),
    ({"guidance_scale": 20.5}, "guidance_scale"),
    ({"guidance_rescale": -0.1}, "guidance_rescale"),
    ({"eta": 2}, "eta"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**31}, "seed"),
    ({"seed": 2**31 - 3}, "seed"),  # seed + frames - 1 must fit
    ({"sampler": "euler"}, "sampler"),
    ({"format": "webm"}, "format"),
    ({"compare": "perhaps"}, "compare"),
    ({"colour": "red"}, "colour"),
])
def test_bad_fields_are_422_naming_the_field(model_client, change, field):
    r = model_client.post(VIDEO, json={**BODY, **change, "include_frames": False})
    assert r.status_code == 422, r.text[:300]
    assert ["body", field] in [d["loc"] for d in r.json()["detail"]]


@pytest.mark.parametrize("raw", ["Infinity", "NaN", "-Infinity", "1e999"])
def test_non_finite_numbers_are_422_not_500(model_client, raw):
    r = model_client.post(VIDEO, content=f'{{"prompt": "a circle", "guidance_scale": {raw}}}',
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "guidance_scale"]


def test_an_unknown_word_names_it_and_lists_the_vocabulary(model_client):
    [detail] = model_client.post(VIDEO, json={**BODY, "prompt": "a red star moving up"}).json()["detail"]
    assert detail["msg"].startswith("unknown word: star") and detail["ctx"]["unknown_words"] == ["star"]
    assert {"circle", "moving", "from"} <= set(detail["ctx"]["vocabulary"])


def test_the_frame_cap_says_where_it_comes_from(model_client):
    [detail] = model_client.post(VIDEO, json={**BODY, "frames": 9}).json()["detail"]
    assert detail["ctx"] == {"le": 8} and "video model" in detail["msg"]


def test_without_any_model_video_is_503_with_retry_after(client):
    for r in (client.post(VIDEO, json=BODY), client.get(STREAM, params=BODY), client.get(ATTENTION)):
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        assert "without the model" in r.json()["detail"]


def test_without_the_video_files_images_work_and_video_is_503_naming_them(image_only_dir):
    with TestClient(create_app(model_settings(image_only_dir))) as c:
        assert c.get("/readyz").status_code == 200
        assert c.post("/api/v1/generate", json={"prompt": "a circle", "steps": 1}).status_code == 200
        for r in (c.post(VIDEO, json=BODY), c.get(STREAM, params=BODY), c.get(ATTENTION)):
            assert r.status_code == 503 and "retry-after" in r.headers
            detail = r.json()["detail"]
            assert detail.startswith("video model not loaded") and VIDEO_WEIGHT_FILES["dit"] in detail
        assert c.get(MODEL).json()["video"] is None


def test_a_corrupt_video_file_is_reported_and_images_keep_working(image_only_dir, tiny_model_dir, caplog):
    shutil.copy(tiny_model_dir / VIDEO_WEIGHT_FILES["text"], image_only_dir / VIDEO_WEIGHT_FILES["text"])
    (image_only_dir / VIDEO_WEIGHT_FILES["dit"]).write_bytes(b"not a safetensors file")
    with TestClient(create_app(model_settings(image_only_dir))) as c:
        assert c.get("/readyz").status_code == 200
        assert c.post("/api/v1/generate", json={"prompt": "a circle", "steps": 1}).status_code == 200
        r = c.post(VIDEO, json=BODY)
        assert r.status_code == 503 and VIDEO_WEIGHT_FILES["dit"] in r.json()["detail"]
        video = c.get(MODEL).json()["video"]
        assert video["loaded"] is False and VIDEO_WEIGHT_FILES["dit"] in video["load_error"]
    assert any(VIDEO_WEIGHT_FILES["dit"] in rec.getMessage() for rec in caplog.records if rec.levelname == "ERROR")


def test_a_full_queue_is_429_for_video_too(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, worker_threads=1, queue_size=1, max_steps=1000))
    with TestClient(app) as c:
        service = state_of(app).sampler
        held = [service.submit(GenerationSettings(prompt="", steps=1000)) for _ in range(service.capacity)]
        try:
            for r in (c.post(VIDEO, json=BODY), c.get(STREAM, params=BODY)):
                assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
                assert "busy" in r.json()["detail"]
        finally:
            for job in held:
                job.cancel()


def test_a_clip_past_the_time_limit_is_503(tiny_model_dir):
    app = create_app(model_settings(tiny_model_dir, request_timeout_s=0.5, max_steps=1000))
    with TestClient(app) as c:
        r = c.post(VIDEO, json={**BODY, "steps": 1000})
        assert r.status_code == 503 and "time limit of 0.5 s" in r.json()["detail"]
        events = stream(c, **{**BODY, "steps": 1000})
        assert events[0][0] == "start" and events[-1][0] == "error" and events[-1][1]["status"] == 503
        assert c.post(VIDEO, json={**BODY, "steps": 2, "frames": 2}).status_code == 200  # the worker is free again


# ---------------------------------------------------------------------------------------------- the sampling service


@dataclass(frozen=True)
class Part:
    """A part of the tests' own family of generators: `steps` steps, one image, never batched."""

    steps: int
    rows: int = 1

    def batch_key(self) -> None:
        return None


class Waiting:
    """A generator (app/pipelines/protocol.py) whose every part waits for `release`, then takes its steps."""

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()

    def total_steps(self, parts) -> int:
        return sum(part.steps for part in parts)

    def generate_batch(self, parts, callback=None) -> list[str]:
        self.entered.set()
        assert self.release.wait(10)
        for part in parts:
            for _ in range(part.steps):
                callback("a step")
        return ["done"] * len(parts)


def test_jobs_of_other_families_share_the_queue_but_never_a_batch(model_app):
    state = state_of(model_app)
    service, waiting = SamplingService(state.model.pipeline, workers=1, queue_size=3), Waiting()
    try:
        first = service.submit(Part(steps=2), generator=waiting)
        assert waiting.entered.wait(10)
        image_a = service.submit(GenerationSettings(prompt="a circle", steps=2))
        clip = service.submit(ClipSettings(prompt="a circle moving left", steps=1, frames=2),
                              generator=state.video.generator)
        image_b = service.submit(GenerationSettings(prompt="a square", steps=2))
        with pytest.raises(QueueFull):
            service.submit(Part(steps=1), generator=waiting)
        waiting.release.set()
        assert first.future.result(10) == ["done"] and first.steps_done == 2
        [clip_result] = clip.future.result(10)
        assert clip_result.frames.shape[0] == 2 and clip.batch_jobs == 1 and clip.steps_done == 1
        for image in (image_a, image_b):
            assert image.future.result(10)[0].images.shape[0] == 1
        assert image_a.batch_jobs == image_b.batch_jobs == 2  # the images merged around the clip job
    finally:
        waiting.release.set()
        service.close()


class Endless:
    """A generator that never ends on its own: it steps until the service cancels it."""

    def __init__(self):
        self.steps = []

    def total_steps(self, parts) -> int:
        return 10**6

    def generate_batch(self, parts, callback=None):
        while True:
            callback(None)
            self.steps.append(1)
            time.sleep(0.005)


def test_a_cancelled_job_of_another_family_stops_at_its_next_step(model_app):
    service, endless = SamplingService(state_of(model_app).model.pipeline, workers=1, queue_size=1), Endless()
    try:
        job = service.submit(Part(steps=10**6), generator=endless)
        while len(endless.steps) < 3:
            time.sleep(0.005)
        job.cancel()
        assert isinstance(job.future.exception(5), SamplingCancelled) and job.outcome == "cancelled"
        assert service.running == 0
    finally:
        service.close()


# ---------------------------------------------------------------------------------------------- the stream


def test_the_image_and_the_video_stream_send_the_same_step_keys(model_client):
    """One event vocabulary: a page reads id, index, total, t and EQ MM3.1's weights the same way on both."""
    clip_step = next(d for name, d in stream(model_client, **{**BODY, "frames": 2}) if name == "step")
    image_events = image_stream(model_client, prompt="a red circle", steps=2, previews="false")
    image_step = next(d for name, d in image_events if name == "step")
    shared = {"id", "index", "total", "t", "abar_t", "sqrt_abar_t", "sqrt_one_minus_abar_t", "elapsed_s",
              "remaining_s"}
    assert set(image_step) == shared | {"previews"} and set(clip_step) == shared | {"method", "preview"}
    # read on the schedule of the model that took the step (the video model has its own)
    assert clip_step["sqrt_abar_t"] ** 2 == pytest.approx(clip_step["abar_t"])


def test_stream_events_come_in_order_and_end_with_the_post_payload(model_client):
    query = {**BODY, "compare": "true", "frames": 4}
    events = stream(model_client, **query)
    assert [name for name, _ in events] == ["start"] + ["step"] * 6 + ["result"]
    ids = {data["id"] for _, data in events}
    assert len(ids) == 1
    start, steps, result = events[0][1], [d for _, d in events[1:-1]], events[-1][1]
    assert start["frames"] == 4 and start["total_steps"] == 6 and start["methods"] == ["video", "per_frame"]
    assert [(s["method"], s["index"]) for s in steps] == [("video", 0), ("video", 1), ("video", 2),
                                                          ("per_frame", 0), ("per_frame", 1), ("per_frame", 2)]
    for s in steps:
        assert s["total"] == 3 and s["remaining_s"] >= 0 and s["elapsed_s"] >= 0
        assert decode_png(from_base64(s["preview"])).shape == (4, 4 * 4, 3)  # 4 frames of a 4x4 latent, in a row
    assert [s["t"] for s in steps[:3]] == [s["t"] for s in steps[3:]] and steps[0]["t"] == 999
    assert steps[-1]["remaining_s"] == 0
    posted = model_client.post(VIDEO, json={**BODY, "compare": True, "frames": 4}).json()
    assert set(result) == set(posted) | {"id"}
    assert result["parameters"] == posted["parameters"]
    assert result["video"]["frames"] == posted["video"]["frames"]
    assert result["baseline"]["frames"] == posted["baseline"]["frames"]


@pytest.mark.parametrize(("params", "field"), [
    ({"prompt": "a red blorb"}, "prompt"),
    ({"frames": 9}, "frames"),
    ({"steps": 51}, "steps"),
    ({"guidance_scale": "inf"}, "guidance_scale"),
    ({"sampler": "euler"}, "sampler"),
    ({"colour": "red"}, "colour"),
])
def test_bad_stream_parameters_are_a_plain_422(model_client, params, field):
    r = model_client.get(STREAM, params={**BODY, **params})
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    assert ["query", field] in [d["loc"] for d in r.json()["detail"]]


def test_closing_the_stream_cancels_the_clip_within_a_step(model_live_app, model_live_server, monkeypatch):
    assert_closing_the_stream_cancels_the_job(model_live_app, model_live_server, STREAM, BODY, monkeypatch)


# ---------------------------------------------------------------------------------------------- attention, timed


@pytest.mark.parametrize("frames", [2, 5, 8])
def test_attention_counts_the_real_tokens_and_times_both_variants(model_client, frames):
    body = model_client.get(ATTENTION, params={"frames": frames, "repeats": 3}).json()
    per_frame = 4 * 4  # the tiny model: 4x4 latent, patch 1
    n = frames * per_frame
    assert body["tokens_per_frame"] == per_frame and body["tokens"] == n
    assert body["joint_pairs"] == n**2
    assert body["factorised_pairs"] == frames * per_frame**2 + per_frame * frames**2
    assert body["pair_ratio"] == pytest.approx(n**2 / body["factorised_pairs"])
    assert body["flop_ratio"] == pytest.approx(body["joint_flops"] / body["factorised_flops"])
    assert body["batch"] == 2 and body["repeats"] == 3 and body["conditions"]["rounds"] == 3
    for kind in ("factorised", "joint"):
        spread = body[kind]
        assert len(spread["runs_ms"]) == 3 and spread["runs_ms"] == body[f"{kind}_runs_ms"]
        assert spread["median_ms"] == body[f"{kind}_ms"] > 0 and spread["low_ms"] <= spread["high_ms"]
        assert body[f"{kind}_recorded"] is None and body[f"{kind}_recorded_note"].startswith("bench/results/video.json")
    assert body["time_ratio"] == pytest.approx(body["joint_ms"] / body["factorised_ms"])
    heavier = "joint" if body["joint_flops"] > body["factorised_flops"] else "factorised"
    assert body["ordering"]["slower"] == heavier  # the order the arithmetic expects is what is tested
    again = model_client.get(ATTENTION, params={"frames": frames, "repeats": 3}).json()
    assert again["cached"] is True and again["joint_ms"] == body["joint_ms"]
    assert again["measured_at"] == body["measured_at"]


def test_attention_is_measured_again_on_request(model_client):
    first = model_client.get(ATTENTION, params={"frames": 3}).json()
    fresh = model_client.get(ATTENTION, params={"frames": 3, "remeasure": "true"}).json()
    assert fresh["cached"] is False and fresh["joint_runs_ms"] != first["joint_runs_ms"]
    assert model_client.get(ATTENTION, params={"frames": 3}).json()["joint_runs_ms"] == fresh["joint_runs_ms"]


def test_attention_shows_the_recorded_figure_of_the_same_network(tiny_model_dir, tmp_path):
    """A bench/results/video.json whose rows describe the tiny model's networks stands beside the live figures."""
    with TestClient(create_app(model_settings(tiny_model_dir, bench_results_dir=tmp_path))) as c:
        live = c.get(ATTENTION, params={"frames": 2}).json()
        assert live["joint_recorded"] is None and "video.json is absent" in live["joint_recorded_note"]
        rows = [{"frames": 2, "attention": kind, "tokens": live["tokens"], "median_ms": ms, "best_ms": ms - 1,
                 "parameters": live[f"{kind}_parameters"], "load_average": 1.5}
                for kind, ms in (("factorised", 30.0), ("joint", 20.0))]
        (tmp_path / "video.json").write_text(json.dumps({"threads": 2, "torch": "2.x", "forward": rows}))
        shown = c.get(ATTENTION, params={"frames": 2}).json()
    assert shown["cached"] is True
    assert (shown["factorised_recorded"]["median_ms"], shown["joint_recorded"]["median_ms"]) == (30.0, 20.0)
    assert shown["joint_recorded"]["threads"] == 2 and "2 rows" in shown["joint_recorded_note"]


@pytest.mark.parametrize("params", [{"frames": 9}, {"frames": 1}, {"repeats": 2}, {"repeats": 10}, {"x": 1},
                                    {"remeasure": "1"}, {"remeasure": "yes"}])
def test_attention_bounds_are_422(model_client, params):
    r = model_client.get(ATTENTION, params=params)
    assert r.status_code == 422 and [d["loc"] for d in r.json()["detail"]] == [["query", next(iter(params))]]


# ---------------------------------------------------------------------------------------------- model card, docs


def test_the_model_endpoint_describes_the_video_model_and_its_card(model_client, tiny_model_dir):
    video = model_client.get(MODEL).json()["video"]
    assert video["loaded"] is True and video["load_error"] is None and video["max_frames"] == 8
    assert video["attention"] == "factorised" and video["config"]["frames"] == 8
    counts = video["parameters"]
    assert counts["total"] == counts["text_encoder"] + counts["denoiser"] > 0
    assert video["card_found"] is False and video["card"] is None
    card = tiny_model_dir / "video-card.json"
    try:
        card.write_text('{"name": "tiny video", "evaluation": {"fvd": NaN}}')
        video = model_client.get(MODEL).json()["video"]
        assert video["card_found"] is True and video["card"] == {"name": "tiny video", "evaluation": {"fvd": None}}
    finally:
        card.unlink()


def test_openapi_documents_the_video_api(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"][VIDEO]["post"]
    assert {"422", "429", "503"} <= set(post["responses"])
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/VideoResult")
    request = spec["components"]["schemas"]["VideoRequest"]
    assert request["additionalProperties"] is False
    assert request["properties"]["frames"]["maximum"] == 16 and request["properties"]["steps"]["maximum"] == 100
    assert "text/event-stream" in spec["paths"][STREAM]["get"]["responses"]["200"]["content"]
    assert ATTENTION in spec["paths"]


# ---------------------------------------------------------------------------------------------- animation files


def test_apng_holds_the_frames_exactly_and_gif_plays_as_long():
    frames = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    shown, durations = decode_animation(encode_animation(frames, "apng"))
    assert np.array_equal(shown, frames) and durations == [125.0] * 6
    shown, durations = decode_animation(encode_animation(frames, "gif"))
    assert shown.shape == frames.shape and durations == [animation_frame_ms("gif")] * 6 == [120] * 6
    with Image.open(io.BytesIO(encode_animation(frames, "apng"))) as image:
        assert image.format == "PNG" and image.n_frames == 6 and image.info["loop"] == 0


def test_identical_frames_are_merged_but_play_as_long():
    frames = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    frames[2] = frames[1]
    shown, durations = decode_animation(encode_animation(frames, "apng"))
    assert len(shown) == 3 and sum(durations) == 4 * 125
    assert np.array_equal(shown, frames[[0, 1, 3]])


@pytest.mark.parametrize(("frames", "fmt"), [(np.zeros((2, 8, 8), np.uint8), "apng"),
                                             (np.zeros((2, 8, 8, 3), np.float32), "apng"),
                                             (np.zeros((2, 8, 8, 3), np.uint8), "webp")])
def test_bad_animation_input_is_a_value_error(frames, fmt):
    with pytest.raises(ValueError):
        encode_animation(frames, fmt)
