"""The served networks compiled (DIFFUSION_LAB_COMPILE): the same pictures as eager, judged alike, and reported.

Tolerance: the compiled and the eager picture of a seed differ by at most COMPILED_MAX_PIXEL_DIFF levels of 255 in
any pixel, and the judge reads every one of the 54 evaluation prompts' pictures alike. (Measured here: 22 of the
663,552 values differed, each by one level; the compiled kernels sum in another order, and 20 steps carry it on.)
"""

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.measure.image import full_prompts
from app.measure.judge import judge
from app.nets.compiled import eager_of
from app.pipelines.image import GenerationSettings, Pipeline
from app.service import compiled
from bench.gpu_check import verdict_key
from tests.helpers.models import COMMITTED_MODELS, model_settings

COMPILED_MAX_PIXEL_DIFF = 4
BATCH = 8  # the evaluation prompts in batches of 8: the DiT's 16-row bucket and the decoder's 8


def eval_pictures(image: Pipeline) -> np.ndarray:
    jobs = [GenerationSettings(prompt=p.canonical, seed=i, steps=20, guidance_scale=5.0)
            for i, p in enumerate(full_prompts(54))]
    return np.concatenate([r.images for i in range(0, len(jobs), BATCH)
                           for r in image.generate_batch(jobs[i:i + BATCH])])


@pytest.mark.weights
@pytest.mark.slow
def test_compiled_pictures_match_eager_on_the_evaluation_prompts(one_thread, monkeypatch):
    image = Pipeline.load(COMMITTED_MODELS, "cpu")
    eager = eval_pictures(image)
    state = compiled.install(image, None, "on")
    plan = compiled.warm_up_plan
    monkeypatch.setattr(compiled, "warm_up_plan", lambda *a: [(name, args) for name, args in plan(*a)
                                                              if (name, args[0].shape[0]) in {("dit", 16),
                                                                                              ("decoder", 8)}])
    compiled.warm_up(image, None, state)
    assert state.state == "ready" and state.as_dict()["buckets"]["dit"]["ready"] == [16]
    got = eval_pictures(image)
    assert state.networks["dit"].compiled_calls == 7 * 20  # every step of every batch ran compiled
    assert state.networks["decoder"].compiled_calls == 7
    diff = np.abs(got.astype(np.int16) - eager.astype(np.int16))
    assert diff.max() <= COMPILED_MAX_PIXEL_DIFF, diff.max()
    assert [verdict_key(v) for v in judge(got)] == [verdict_key(v) for v in judge(eager)]


def test_a_failed_warm_up_leaves_the_eager_path_and_says_why(tiny_model_dir, monkeypatch):
    image = Pipeline.load(tiny_model_dir, "cpu")
    state = compiled.install(image, None, "on")

    def broken(*_):
        raise RuntimeError("no C compiler")

    monkeypatch.setattr(state.networks["dit"], "warm", broken)
    compiled.warm_up(image, None, state)
    assert state.state == "failed" and state.error == "RuntimeError: no C compiler"
    with torch.no_grad():
        image.generate(GenerationSettings(prompt="a red circle", steps=2))
    assert state.networks["dit"].compiled_calls == 0


def test_auto_compiles_on_the_cpu_only_and_off_installs_nothing(tiny_model_dir):
    assert compiled.wanted("auto", torch.device("cpu")) and not compiled.wanted("auto", torch.device("cuda"))
    assert compiled.wanted("on", torch.device("cuda")) and not compiled.wanted("off", torch.device("cpu"))
    image = Pipeline.load(tiny_model_dir, "cpu")
    dit = image.dit
    state = compiled.install(image, None, "off")
    assert state.state == "off" and state.networks == {} and image.dit is dit


def test_readyz_is_ready_at_once_and_reports_the_compiled_state(tiny_model_dir, monkeypatch):
    started = []
    monkeypatch.setattr("app.web.lifespan.start_warm_up", lambda *a: started.append(a))
    app = create_app(model_settings(tiny_model_dir, compile="on"))
    with TestClient(app) as client:
        body = client.get("/readyz").json()
    assert body["ready"] is True and len(started) == 1
    report = body["compiled"]
    assert report["setting"] == "on" and report["state"] == "pending"
    assert report["buckets"]["dit"] == {"all": list(compiled.DIT_ROWS), "ready": [], "seconds": {}}
    assert report["buckets"]["decoder"]["all"] == list(compiled.DECODE_BATCHES)
    assert report["buckets"]["video_dit"]["all"] == list(compiled.VIDEO_ROWS)


def test_the_live_timings_time_the_eager_networks_when_the_server_compiles(tiny_model_dir, one_thread):
    from app.lab import attention_timing, forward_timing
    from app.pipelines.video import VideoPipeline

    image = Pipeline.load(tiny_model_dir, "cpu")
    video = VideoPipeline.load(tiny_model_dir, image.vae)
    eager_dit, eager_video = image.dit, video.dit
    state = compiled.install(image, video, "on")
    assert state.networks["video_dit"].module is eager_video
    latent = forward_timing.latent_forward(image)
    assert latent.candidate.run().shape[0] == 2
    timing = attention_timing.measure(video, frames=2, repeats=1)
    assert timing.frames == 2 and state.networks["video_dit"].compiled_calls == 0
    assert eager_of(image.dit) is eager_dit and eager_of(eager_dit) is eager_dit
