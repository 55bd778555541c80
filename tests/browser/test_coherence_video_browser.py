"""The coherence page's real-clip panel in headless Chromium, against the tiny random image and video models:
both clips streamed and shown, their measures equal to the API's for the same request, the centroid chart, the
attention timing, errors inline, and a phone-width layout."""

import json
import re
import shutil
import time
import urllib.request

import numpy as np
import pytest

from app.measure.video import measure_clip
from app.pipelines.image import WEIGHT_FILES
from app.service.imaging import (
    ANIMATION_MIME,
    animation_frame_ms,
    encode_animation,
    encode_png,
    to_base64,
)
from app.web import schemas
from app.web.state import state_of
from app.world.clips import (
    DIRECTION_NAMES,
    ClipBatch,
    nearest_position,
    parse_video_prompt,
    render_clips,
)
from app.world.scenes import SceneBatch, render, to_uint8
from tests.helpers.browser import PageProbe, get_json, press_remeasure, wait_for
from tests.helpers.models import model_settings
from tests.helpers.server import serve

pytestmark = pytest.mark.browser

PATH = "/instruments/coherence"
PROMPT = "a large red circle moving right"
METHODS = ("per_frame", "video")
NUMBERS = {  # table cell -> digits the page shows
    "temporal_flickering": 3, "subject_consistency": 3, "motion_smoothness": 3,
    "path_rms_px": 2, "mean_jump_px": 2, "mean_jump_frame_widths": 3,
}


def post_json(base_url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def generate(page, prompt=PROMPT, seed=3, steps=3, frames=8, guidance=5):
    page.fill("#video-prompt-input", prompt)
    page.fill("#video-seed", str(seed))
    page.fill("#video-steps", str(steps))
    page.fill("#video-frames", str(frames))
    page.fill("#video-guidance", str(guidance))
    page.click("#video-generate")


def wait_done(page):
    wait_for(page, "document.getElementById('video-run-status').textContent.startsWith('Done')", timeout=60_000)


def decoded(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.complete ? e.naturalWidth : 0)")


def test_generate_both_shows_clips_measures_and_paths_from_the_api(model_probe, model_live_server):
    page = model_probe.goto(PATH)
    assert page.is_enabled("#video-generate") and page.is_hidden("#video-status")
    generate(page, seed=3, steps=3, frames=6, guidance=4)
    wait_done(page)

    # the stream's progress reached the last step of both methods
    for method in METHODS:
        assert page.text_content(f"#progress-{method}-text").startswith("step 3 of 3 · t = ")
        assert page.eval_on_selector(f"#progress-{method}", "p => [p.value, p.max]") == [3, 3]
        assert page.is_visible(f"#live-{method}")

    # the same request straight from the API (same seed: the same clips)
    want = post_json(model_live_server, "/api/v1/generate/video", {
        "prompt": PROMPT, "seed": 3, "steps": 3, "frames": 6, "guidance_scale": 4, "compare": True,
        "include_frames": True})
    clips = {"per_frame": want["baseline"], "video": want["video"]}
    for method, clip in clips.items():
        assert page.get_attribute(f"#anim-{method}", "src") == \
            f"data:{clip['animation']['mime']};base64,{clip['animation']['base64']}"
        wait_for(page, "(sel) => document.querySelector(sel).naturalWidth > 0", arg=f"#anim-{method}")
        assert page.get_attribute(f"#anim-{method}", "alt").startswith(
            "Frame by frame" if method == "per_frame" else "Space-time model")
        strip = decoded(page, f"#strip-{method} img")
        assert len(strip) == 6 == len(clip["frames"]) and all(w > 0 for w in strip)
        assert page.eval_on_selector(f"#strip-{method} img", "e => getComputedStyle(e).imageRendering") == "pixelated"
        m = clip["metrics"]
        table = f"#metrics-{method}"
        for name, digits in NUMBERS.items():
            cell = f"{table} td[data-metric={name}]"
            if m[name] is None:
                assert page.text_content(cell) == "–"
                continue
            assert float(page.get_attribute(cell, "data-value")) == m[name]
            assert float(page.text_content(cell).replace(",", "")) == pytest.approx(m[name], abs=0.6 * 10 ** -digits)
        assert page.text_content(f"{table} td[data-metric=tracked]") == f"{m['tracked_frames']} / {m['frames']}"
        direction = page.text_content(f"{table} td[data-metric=direction]")
        judged = m["direction"] if m["direction"] is not None else "not tracked"
        assert direction == f"{judged} (right) {'✓' if m['adherence']['direction'] else '✗'}"
        attributes = page.text_content(f"{table} td[data-metric=adherence]")
        for name, ok in m["adherence"].items():
            if name != "all":
                assert f"{name} {'✓' if ok else '✗'}" in attributes
        assert attributes.endswith(f"all: {'yes' if m['adherence']['all'] else 'no'}")
        assert clip["caption"] in page.text_content(f"#caption-{method}")

    # the centroid chart: one trace per clip, x and y from the API, image coordinates (y downward)
    traces = page.evaluate("document.getElementById('video-paths').data.map(t => [t.name, t.x, t.y])")
    assert [name for name, _, _ in traces] == ["Frame by frame", "Space-time model"]
    for (_, xs, ys), method in zip(traces, METHODS):
        centroids = clips[method]["metrics"]["centroids"]
        assert xs == [None if c is None else c[0] for c in centroids]
        assert ys == [None if c is None else c[1] for c in centroids]
    y_range = page.evaluate("document.getElementById('video-paths').layout.yaxis.range")
    assert y_range[0] > y_range[1] == 0  # reversed, like an image
    assert y_range[0] == page.evaluate("document.getElementById('anim-video').naturalWidth")

    # the attention block: the served model's tokens and timings for the clip's frames (cached by the server)
    wait_for(page, "document.getElementById('at-frames').textContent === '6'", timeout=60_000)
    attention = get_json(model_live_server, "/api/v1/instruments/coherence/attention", frames=6, repeats=5)
    assert attention["cached"]
    assert_attention_shown(page, attention)

    assert "v_prompt=a+large+red+circle+moving+right" in page.url and "v_frames=6" in page.url
    assert page.is_enabled("#video-generate") and page.is_disabled("#video-cancel")
    model_probe.assert_clean()


def assert_attention_shown(page, attention):
    """The attention block shows the server's figures: counts, FLOPs, medians and spreads, recorded figures, verdict."""
    assert page.text_content("#at-tokens-clip") == f"{attention['tokens']:,}"
    assert page.text_content("#at-tokens-frame") == f"{attention['tokens_per_frame']:,}"
    assert page.text_content("#at-joint-pairs") == f"{attention['joint_pairs']:,}"
    assert page.text_content("#at-fact-pairs") == f"{attention['factorised_pairs']:,}"
    assert float(page.text_content("#at-joint-gflop")) == pytest.approx(attention["joint_flops"] / 1e9, abs=6e-4)
    assert float(page.text_content("#at-fact-gflop")) == pytest.approx(attention["factorised_flops"] / 1e9, abs=6e-4)
    for kind, short in (("joint", "joint"), ("factorised", "fact")):
        spread = attention[kind]
        assert float(page.text_content(f"#at-{short}-ms").replace(",", "")) == pytest.approx(spread["median_ms"],
                                                                                               abs=6e-3)
        shown = page.text_content(f"#at-{short}-spread")
        assert shown.startswith("middle half ") and shown.endswith(f"over {attention['conditions']['rounds']} rounds")
        low, high = shown.removeprefix("middle half ").split(" ms")[0].replace(",", "").split("–")
        assert float(low) == pytest.approx(spread["low_ms"], rel=0.01)
        assert float(high) == pytest.approx(spread["high_ms"], rel=0.01)
        assert page.text_content(f"#at-{short}-recorded") == (
            f"recorded benchmark: none for this figure ({attention[f'{kind}_recorded_note']})")  # the tiny model
    assert float(page.text_content("#at-pair-ratio")) == pytest.approx(attention["pair_ratio"], abs=6e-3)
    assert float(page.text_content("#at-flop-ratio")) == pytest.approx(attention["flop_ratio"], abs=6e-3)
    if attention["ordering"]["resolved"]:
        assert float(page.text_content("#at-ms-ratio")) == pytest.approx(attention["time_ratio"], abs=6e-3)
        assert page.text_content("#at-ms-ratio-unit") == "× the time"
    else:  # the spreads overlap: no ratio is claimed
        assert page.text_content("#at-ms-ratio") == "not resolved"
        assert "cannot say which is faster" in page.text_content("#attention-verdict")
    conditions = page.text_content("#attention-conditions")
    c = attention["conditions"]
    start, end = (float(x) for x in re.search(r"load average ([\d.]+) at the start and ([\d.]+) at the end on "
                                              rf"{c['cores']} core", conditions).groups())
    assert (start, end) == (pytest.approx(c["load_start"], abs=6e-3), pytest.approx(c["load_end"], abs=6e-3))
    assert conditions.startswith("Noisy: ") == c["noisy"]
    assert page.evaluate("document.getElementById('attention-conditions').classList.contains('timing-noisy')") == \
        c["noisy"]
    assert f"{attention['ordering']['faster']} network is the lighter one" in page.text_content("#attention-verdict")


def test_the_attention_block_re_measures_on_request(model_probe, model_live_server):
    page = model_probe.goto(PATH)
    wait_for(page, "!document.getElementById('attention-remeasure').disabled", timeout=60_000)
    frames = int(page.text_content("#at-frames"))
    before = get_json(model_live_server, "/api/v1/instruments/coherence/attention", frames=frames, repeats=5)
    assert_attention_shown(page, before)
    press_remeasure(page, "attention-remeasure", "attention-status")
    after = get_json(model_live_server, "/api/v1/instruments/coherence/attention", frames=frames, repeats=5)
    assert after["cached"] and after["measured_at"] >= before["measured_at"]
    assert after["joint_runs_ms"] != before["joint_runs_ms"]  # measured again, and the page shows the new figures
    assert_attention_shown(page, after)
    assert page.text_content("#attention-remeasure") == "Re-measure"
    model_probe.assert_clean()


def test_cancel_stops_the_run_on_the_page_and_on_the_server(model_probe, model_live_app):
    page = model_probe.goto(PATH)
    generate(page, steps=1000)
    wait_for(page, "/^step ([3-9]|\\d\\d+) of 1000 /.test(document.getElementById('progress-video-text').textContent)")
    page.click("#video-cancel")
    assert page.text_content("#video-run-status").startswith("Cancelled")
    assert page.is_enabled("#video-generate") and page.is_disabled("#video-cancel")
    assert page.is_hidden("#anim-video") and page.text_content("#video-error") == ""
    service = state_of(model_live_app).sampler
    deadline = time.monotonic() + 10
    while service.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.running == 0
    model_probe.assert_clean()


def test_a_deep_link_restores_the_panel_and_the_toy_still_works(model_probe):
    page = model_probe.goto(PATH + "?coherence=1&v_prompt=a+small+blue+square+moving+up&v_seed=5&v_steps=2")
    assert page.input_value("#video-prompt-input") == "a small blue square moving up"
    assert page.input_value("#video-seed") == "5" and page.text_content("output[for=video-steps]") == "2"
    assert page.input_value("#coherence") == "1"
    wait_for(page, "document.getElementById('ro-regime').textContent !== '–'")
    page.fill("#coherence", "0.5")
    page.dispatch_event("#coherence", "input")
    wait_for(page, "window.location.search.includes('coherence=0.5')")
    assert "v_prompt=a+small+blue+square+moving+up" in page.url  # the toy keeps the panel's state
    model_probe.assert_clean()


def test_an_unknown_word_is_shown_by_the_prompt_in_words_until_the_prompt_changes(model_probe):
    page = model_probe.goto(PATH)
    generate(page, prompt="a red star moving right", steps=2)
    wait_for(page, "document.getElementById('video-error').textContent !== ''")
    assert page.text_content("#video-error") == "Not started: fix this field first: Prompt."
    assert page.text_content("#video-prompt-input-error").startswith("unknown word: star")
    assert page.get_attribute("#video-prompt-input", "aria-invalid") == "true"
    assert "video-prompt-input-error" in page.get_attribute("#video-prompt-input", "aria-describedby").split()
    assert page.evaluate("document.activeElement.id") == "video-prompt-input"
    assert page.text_content("#video-run-status") == "The run did not start."
    assert page.is_enabled("#video-generate") and page.is_disabled("#video-cancel")
    assert page.is_hidden("#anim-video")
    page.fill("#video-prompt-input", "a red circle moving right")  # the error was about the old prompt
    assert page.text_content("#video-error") == "" and page.text_content("#video-prompt-input-error") == ""
    assert page.get_attribute("#video-prompt-input", "aria-invalid") is None
    # the only console noise is the browser logging the 422 answer itself
    assert all("422" in message for message in model_probe.console_errors), model_probe.console_errors
    assert model_probe.foreign_requests == []


def test_a_phone_stacks_the_two_clips(browser, model_live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        probe = PageProbe(context.new_page(), model_live_server)
        page = probe.goto(PATH)
        generate(page, seed=1, steps=2, frames=8)
        wait_done(page)
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        a = page.locator("#clip-per_frame").bounding_box()
        b = page.locator("#clip-video").bounding_box()
        assert b["y"] >= a["y"] + a["height"] and abs(a["x"] - b["x"]) < 1
        for method in METHODS:
            box = page.locator(f"#anim-{method}").bounding_box()
            assert box["width"] > 0 and box["x"] + box["width"] <= 390
            assert len(decoded(page, f"#strip-{method} img")) == 8
        probe.assert_clean()
    finally:
        context.close()


def test_without_video_weights_the_panel_says_so(browser, tiny_model_dir, tmp_path):
    for name in WEIGHT_FILES.values():
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    from app.main import create_app

    server = serve(create_app(model_settings(tmp_path)))
    base = next(server)
    context = browser.new_context()
    try:
        probe = PageProbe(context.new_page(), base)
        page = probe.goto(PATH)
        wait_for(page, "!document.getElementById('video-status').hidden")
        assert "video model not loaded" in page.text_content("#video-status")
        assert page.is_disabled("#video-generate")
        wait_for(page, "document.getElementById('ro-regime').textContent !== '–'")  # the toy works regardless
        probe.assert_clean()
    finally:
        context.close()
        next(server, None)


# ------------------------------------------------------------------- the page against a scripted stream
# The tiny random models draw noise, so the judge finds no shape and most measures are null. These tests answer
# the page's stream request with drawn clips (a circle gliding right; the same circle at a random spot per frame),
# measured by the server's own code and shaped by the API's own schema, to check the tracked case too.


def scenes(cx, cy, side=22.0) -> SceneBatch:
    n = len(cx)
    return SceneBatch(shape=np.zeros(n, np.int64), colour=np.zeros(n, np.int64), size=np.ones(n, np.int64),
                      position=nearest_position(np.asarray(cx), np.asarray(cy), 64), side_px=np.full(n, side),
                      cx=np.asarray(cx, np.float64), cy=np.asarray(cy, np.float64), background=np.full((n, 3), 236.0))


def scripted_clip(method: str, frames: np.ndarray, prompt: str) -> dict:
    metrics = measure_clip(frames, parse_video_prompt(prompt))
    animation = schemas.Animation(mime=ANIMATION_MIME["apng"], base64=to_base64(encode_animation(frames)),
                                  frame_ms=animation_frame_ms("apng"))
    return schemas.VideoClip(method=method, caption=prompt if method == "video" else "a large red circle",
                             animation=animation, frames=[to_base64(encode_png(f)) for f in frames],
                             metrics=schemas.ClipMetricsResult(**metrics.to_dict()),
                             timings={"sampling_s": 0.5, "decode_s": 0.1, "total_s": 0.6}).model_dump()


def scripted_events(prompt=PROMPT, seed=11, steps=2, frames=8) -> tuple[str, dict]:
    glide = ClipBatch(scenes([32 - 3 * (frames - 1) / 2], [32.0]), np.array([DIRECTION_NAMES.index("right")]),
                      np.array([3.0]), frames)
    rng = np.random.default_rng(seed)
    video = scripted_clip("video", to_uint8(render_clips(glide)[0]), prompt)
    baseline = scripted_clip("per_frame", to_uint8(render(scenes(rng.uniform(14, 50, frames),
                                                                 rng.uniform(14, 50, frames)))), prompt)
    parameters = schemas.VideoParameters(prompt=prompt, seed=seed, steps=steps, frames=frames, compare=True)
    parsed = parse_video_prompt(prompt)
    result = schemas.VideoStreamResult(
        id="run-1", prompt=parsed.canonical, parsed=schemas.ParsedClipPrompt.model_validate(parsed), seed=seed,
        parameters=parameters, model_id="0123456789ab", video=video, baseline=baseline,
        timings={"queue_s": 0.001, "run_s": 1.2, "metrics_s": 0.01, "encode_s": 0.02, "total_s": 1.25,
                 "network_forwards": 2 * steps},
    ).model_dump()
    preview = to_base64(encode_png(np.zeros((4, 4 * frames, 3), np.uint8)))
    events = [("start", schemas.VideoStreamStart(id="run-1", total_steps=2 * steps, frames=frames,
                                                 methods=["video", "per_frame"], prompt=parsed.canonical,
                                                 parameters=parameters).model_dump())]

    def step(run_id: str, method: str, k: int, total: int, t: int, remaining_s: float) -> dict:
        return schemas.VideoStreamStep(id=run_id, method=method, index=k, total=total, t=t, abar_t=0.5,
                                       sqrt_abar_t=0.5 ** 0.5, sqrt_one_minus_abar_t=0.5 ** 0.5, elapsed_s=0.1,
                                       remaining_s=remaining_s, preview=preview).model_dump()

    events.append(("step", step("someone-else", "video", 0, 9, 1, 9.0)))  # another run's event is never shown
    for method in ("video", "per_frame"):
        for k in range(steps):
            events.append(("step", step("run-1", method, k, steps, 999 - 500 * k, 0.5)))
    events.append(("result", result))
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return body, result


def test_tracked_clips_fill_the_table_and_the_path_chart(model_probe):
    body, result = scripted_events()
    page = model_probe.page
    page.route("**/api/v1/generate/video/stream?*",
               lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))
    model_probe.goto(PATH)
    page.click("#video-generate")
    wait_done(page)
    assert page.text_content("#progress-video-text") == "step 2 of 2 · t = 499"
    for method, clip in (("per_frame", result["baseline"]), ("video", result["video"])):
        m = clip["metrics"]
        assert m["tracked_frames"] == 8 and m["mean_jump_px"] is not None
        table = f"#metrics-{method}"
        for name, digits in NUMBERS.items():
            cell = f"{table} td[data-metric={name}]"
            assert float(page.get_attribute(cell, "data-value")) == m[name]
            assert float(page.text_content(cell)) == pytest.approx(m[name], abs=0.6 * 10 ** -digits)
        assert page.text_content(f"{table} td[data-metric=tracked]") == "8 / 8"
        assert page.text_content(f"{table} td[data-metric=direction]") == \
            f"{m['direction']} (right) {'✓' if m['adherence']['direction'] else '✗'}"
        assert len(decoded(page, f"#strip-{method} img")) == 8
    video, baseline = result["video"]["metrics"], result["baseline"]["metrics"]
    assert video["adherence"]["all"] and video["mean_jump_px"] < baseline["mean_jump_px"]
    assert page.text_content("#metrics-video td[data-metric=adherence]").endswith("all: yes")
    traces = page.evaluate("document.getElementById('video-paths').data.map(t => [t.x, t.y])")
    assert traces == [[[c[0] for c in m["centroids"]], [c[1] for c in m["centroids"]]] for m in (baseline, video)]
    assert page.evaluate("document.getElementById('video-paths').layout.yaxis.range") == [64, 0]
    assert page.evaluate("document.getElementById('video-paths').layout.annotations.length") == 0
    model_probe.assert_clean()


@pytest.mark.parametrize("answer, shown", [
    ({"status": 503, "content_type": "application/json",
      "body": json.dumps({"detail": "video model not loaded: files video_denoiser.safetensors missing in models"})},
     "video model not loaded: files video_denoiser.safetensors missing in models"),
    ({"status": 200, "content_type": "text/event-stream",
      "body": 'event: start\ndata: {"id": "r", "frames": 8, "total_steps": 2, "methods": ["video"], '
              '"prompt": "p", "parameters": {"seed": 1, "steps": 2}}\n\n'
              'event: error\ndata: {"id": "r", "status": 503, "detail": "the job ran past its 60 s limit"}\n\n'},
     "the job ran past its 60 s limit"),
])
def test_server_errors_are_shown_inline(model_probe, answer, shown):
    page = model_probe.page
    page.route("**/api/v1/generate/video/stream?*", lambda route: route.fulfill(**answer))
    model_probe.goto(PATH)
    # the model card was read (the page then times the attention), so Generate is enabled after a failed run
    wait_for(page, "!document.getElementById('attention-status').textContent.startsWith('Timed once')")
    page.click("#video-generate")
    wait_for(page, "document.getElementById('video-error').textContent !== ''")
    assert page.text_content("#video-error") == shown
    assert page.is_enabled("#video-generate") and page.is_disabled("#video-cancel")
    assert all("503" in message for message in model_probe.console_errors), model_probe.console_errors
    assert model_probe.foreign_requests == []
