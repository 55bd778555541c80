"""Prompt -> clip with the tiny random model; the per-frame baseline; `evaluate-video`; one test on the real weights."""

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from app.cli import main as cli_main
from app.evaluation.video import (
    CARD_KEYS,
    COMBOS,
    STARTS,
    _training_sentence,
    eval_prompts,
    every_frame_by_size,
    is_open,
    render_video_readme,
    targets,
    truth_frames,
)
from app.measure.video import measure_clip
from app.pipelines.image import GenerationSettings, Pipeline
from app.pipelines.video import ClipSettings, VideoPipeline, sample_per_frame
from app.world.clips import DIRECTION_NAMES, VideoPromptError, parse_video_prompt
from tests.helpers.models import REPO_ROOT

REPO = REPO_ROOT


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def image(tiny_model_dir) -> Pipeline:
    return Pipeline.load(tiny_model_dir, "cpu")


@pytest.fixture(scope="module")
def video(tiny_model_dir, image) -> VideoPipeline:
    return VideoPipeline.load(tiny_model_dir, image.vae)


SETTINGS = ClipSettings(prompt="a small red circle moving up right", seed=5, steps=3)


def test_a_clip_has_the_frames_asked_for(video, tiny_model_dir, tmp_path):
    assert VideoPipeline.available(tiny_model_dir) and not VideoPipeline.available(tmp_path)
    assert video.max_frames == 8
    result = video.generate(SETTINGS)
    assert result.frames.shape == (8, 32, 32, 3) and result.frames.dtype == np.uint8
    assert result.method == "video" and result.caption == "a small red circle moving up right"
    assert result.timings["network_forwards"] == 3 and result.timings["total_s"] > 0
    short = video.generate(ClipSettings(prompt="a square moving left", frames=3, steps=2))
    assert short.frames.shape == (3, 32, 32, 3)


def test_the_same_seed_gives_the_same_clip(video):
    a, b = video.generate(SETTINGS), video.generate(SETTINGS)
    assert np.array_equal(a.frames, b.frames)
    other = video.generate(ClipSettings(**{**vars(SETTINGS), "seed": 6}))
    assert not np.array_equal(a.frames, other.frames)
    assert np.abs(a.frames[0].astype(int) - a.frames[-1].astype(int)).max() > 0  # the frames are not copies


def test_every_step_reports_the_whole_clip(video):
    seen = []
    video.generate(ClipSettings(prompt="a circle", steps=4, frames=5), callback=lambda info: seen.append(info))
    assert len(seen) == 4
    assert tuple(seen[0].x_t.shape) == (1, 5, 4, 4, 4)


@pytest.mark.parametrize("frames", [0, 9])
def test_frames_outside_the_model_range_raise(video, frames):
    with pytest.raises(ValueError, match="frames must be 1..8"):
        video.generate(ClipSettings(prompt="a circle", frames=frames, steps=2))


def test_bad_prompts_and_samplers_are_refused(video, image):
    with pytest.raises(VideoPromptError):
        video.generate(ClipSettings(prompt="a dog moving left", steps=2))
    with pytest.raises(VideoPromptError):
        sample_per_frame(image, ClipSettings(prompt="a circle moving left right", steps=2))
    with pytest.raises(ValueError, match="unknown sampler"):
        video.generate(ClipSettings(prompt="a circle", sampler="euler", steps=2))


def test_per_frame_baseline_frame_k_is_the_image_model_at_seed_plus_k(image):
    settings = ClipSettings(prompt="a large blue square moving left from the top right", seed=11, steps=3, frames=4)
    clip = sample_per_frame(image, settings)
    assert clip.method == "per_frame" and clip.frames.shape == (4, 32, 32, 3)
    assert clip.caption == "a large blue square at the top right"  # the start becomes the position
    for k in range(4):
        single = image.generate(GenerationSettings(prompt=clip.caption, seed=11 + k, steps=3)).images[0]
        assert np.abs(single.astype(int) - clip.frames[k].astype(int)).max() <= 1, k  # batched-matmul rounding
    assert np.array_equal(sample_per_frame(image, settings).frames, clip.frames)


def test_metadata_of_names_both_video_files(tiny_model_dir):
    meta = VideoPipeline.metadata_of(tiny_model_dir)
    assert meta["dit"]["class"] == "VideoDiT" and meta["dit"]["config"]["attention"] == "factorised"
    assert meta["text"]["class"] == "TextEncoder"


# --------------------------------------------------------------------------------------------- evaluate-video


def test_the_prompt_set_covers_every_direction_and_attribute():
    prompts = [parse_video_prompt(p) for p in eval_prompts()]
    assert len(prompts) == 8 * 6 + 8 + 8 and len(set(eval_prompts())) == len(prompts)
    assert Counter(p.direction for p in prompts) == {d: 8 for d in DIRECTION_NAMES}
    plain = prompts[:48]
    assert {(p.size, p.colour, p.shape) for p in plain} == set(COMBOS)
    assert len({(p.direction, p.size, p.colour, p.shape) for p in plain}) == 48  # the full cross product
    assert len({p.direction for p in prompts[:8]}) == 8  # a short run still sees every direction
    assert {(p.direction, p.start) for p in prompts[48:56]} == set(STARTS.items())
    assert all(p.colour is None and p.size is None and p.start is None for p in prompts[56:])
    assert {p.direction for p in prompts[56:]} == set(DIRECTION_NAMES)
    assert eval_prompts(5) == eval_prompts()[:5]


def test_ground_truth_clips_match_their_prompt():
    rng = np.random.default_rng(0)
    for text in ("a large orange triangle moving up left from the bottom right", "a small red circle moving down"):
        prompt = parse_video_prompt(text)
        clips = truth_frames(prompt, 2, rng, 8, 64)
        assert len(clips) == 2 and clips[0].shape == (8, 64, 64, 3)
        for clip in clips:
            assert measure_clip(clip, prompt).adherence["all"], text
    with pytest.raises(ValueError, match="no training clip"):  # a large shape cannot start right and move right
        truth_frames(parse_video_prompt("a large circle moving right from the right"), 1, rng, 8, 64, tries=2)


def test_targets_need_a_clear_margin_and_ninety_percent_direction():
    video = {"motion_smoothness": 0.8, "subject_consistency": 0.95, "direction_accuracy": 0.9}
    base = {"motion_smoothness": 0.3, "subject_consistency": 0.9, "direction_accuracy": 0.1}
    t = targets(video, base)
    assert t["motion_smoothness"]["met"] and not t["subject_consistency"]["met"] and t["direction_accuracy"]["met"]
    assert t["motion_smoothness"]["margin"] == pytest.approx(0.5)


def test_targets_ask_for_the_shape_in_every_frame_of_95_percent_of_clips_when_measured():
    video = {"motion_smoothness": 0.8, "subject_consistency": 0.95, "direction_accuracy": 0.9,
             "adherence": {"shape": 1.0, "shape_every_frame": 0.94}}
    base = {"motion_smoothness": 0.3, "subject_consistency": 0.9, "direction_accuracy": 0.1}
    assert targets(video, base)["shape_every_frame"] == {"video": 0.94, "needed": 0.95, "met": False}
    video["adherence"]["shape_every_frame"] = 0.95
    assert targets(video, base)["shape_every_frame"]["met"]


def test_every_frame_by_size_groups_by_the_asked_size_or_else_the_judged_one():
    def clip(size, every):
        return SimpleNamespace(size=size, adherence={"shape": True, "shape_every_frame": every})

    prompts = [parse_video_prompt(t) for t in ("a small circle moving up", "a small circle moving up",
                                               "a large square moving left", "a circle moving down")]
    metrics = [clip("small", True), clip("small", False), clip("small", True), clip("large", False)]
    assert every_frame_by_size(metrics, prompts) == {"small": 0.5, "large": 0.5}  # clip 3 asked large
    assert every_frame_by_size(metrics[:2], prompts[:2]) == {"small": 0.5, "large": None}


def test_targets_judge_consistency_on_open_prompts_too_when_they_were_measured():
    video = {"motion_smoothness": 0.8, "subject_consistency": 0.95, "direction_accuracy": 0.2,
             "open_prompts": {"subject_consistency": 0.9}}
    base = {"motion_smoothness": 0.1, "subject_consistency": 1.0, "direction_accuracy": 0.1,
            "open_prompts": {"subject_consistency": 0.4}}
    t = targets(video, base)
    assert not t["subject_consistency"]["met"] and t["subject_consistency_open_prompts"]["met"]
    assert t["subject_consistency_open_prompts"]["margin"] == pytest.approx(0.5)
    assert is_open(parse_video_prompt("a circle moving left")) and not is_open(parse_video_prompt("a red circle"))


def test_evaluate_video_writes_the_card_and_the_page(tiny_model_dir, tmp_path):
    card_path, readme = tmp_path / "video-card.json", tmp_path / "VIDEO.md"
    code = cli_main(["evaluate-video", "--model-dir", str(tiny_model_dir), "--limit", "2", "--seeds", "2",
                     "--steps", "2", "--threads", "1", "--device", "cpu", "--out", str(card_path),
                     "--readme", str(readme)])
    assert code == 0
    card = json.loads(card_path.read_text())
    assert tuple(card) == CARD_KEYS
    assert card["command"].startswith("diffusion-lab evaluate-video --model-dir")
    ev = card["evaluation"]
    assert ev["settings"]["prompts"] == 2 and ev["settings"]["clips_per_method"] == 4
    assert ev["settings"]["prompt_list"] == eval_prompts(2)
    assert set(ev["methods"]) == {"video", "per_frame", "ground_truth", "through_vae"}
    for entry in ev["methods"].values():
        assert entry["clips"] == 4 and len(entry["clips_measured"]) == 4
        assert 0.0 <= entry["direction_accuracy"] <= 1.0 and set(entry["per_direction"]) == set(DIRECTION_NAMES)
    assert ev["methods"]["ground_truth"]["direction_accuracy"] == 1.0
    assert ev["methods"]["ground_truth"]["subject_consistency"] == 1.0
    assert ev["methods"]["video"]["seconds_per_clip_median"] > 0
    assert "seconds_per_clip_median" not in ev["methods"]["ground_truth"]
    seeds = [row["seed"] for row in ev["methods"]["video"]["clips_measured"]]
    assert seeds == [row["seed"] for row in ev["methods"]["per_frame"]["clips_measured"]] == [0, 1, 100, 101]
    assert set(ev["targets"]) == {"motion_smoothness", "subject_consistency", "direction_accuracy", "shape_every_frame"}
    assert ev["methods"]["ground_truth"]["adherence"]["shape_every_frame"] == 1.0
    assert ev["methods"]["ground_truth"]["shape_every_frame_by_size"] == {"small": 1.0, "large": 1.0}
    # the same clips through the (tiny, barely trained) VAE: measured, not copied from the ground truth
    through = [row["frame_shapes"] for row in ev["methods"]["through_vae"]["clips_measured"]]
    assert through != [row["frame_shapes"] for row in ev["methods"]["ground_truth"]["clips_measured"]]
    model = card["model"]
    assert model["attention"] == "factorised" and model["frames"] == 8
    assert model["parameters"]["temporal_blocks"] > 0
    assert model["parameters"]["total"] == model["parameters"]["denoiser"] + model["parameters"]["text_encoder"]
    page = readme.read_text()
    assert page == render_video_readme(card)
    assert "| video model (frames together) |" in page and "| rendered training clips |" in page
    assert "| method | small | large |" in page and "every frame" in page
    assert "The weights record no training run." in page


def test_the_training_sentence_says_when_the_command_was_only_the_last_stage():
    one = {"command": "python3 -m app.training video", "steps_done": 500, "device": "cpu"}
    assert _training_sentence(one, 0.5) == "Trained by `python3 -m app.training video`: 500 steps in 0.50 h on cpu."
    staged = one | {"warm_start": {"checkpoint": "models/video_denoiser.safetensors", "steps": 3488}}
    text = _training_sentence(staged, 4.25)
    assert text.startswith("The last training stage ran `python3 -m app.training video`: 500 steps, warm-started")
    assert "TRAINING.md" in text and "4.25 h of training in all on cpu" in text


def test_evaluate_video_without_video_weights_says_how_to_train(tmp_path, capsys):
    assert cli_main(["evaluate-video", "--model-dir", str(tmp_path)]) == 2
    assert "python3 -m app.training video" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- committed weights


NO_VIDEO_WEIGHTS = pytest.mark.skipif(not (REPO / "models" / "video_denoiser.safetensors").is_file(),
                                      reason="models/video_denoiser.safetensors is not committed")
PROBES = ["a large red circle moving right", "a small blue square moving up",
          "a large green triangle moving down left", "a large yellow circle moving up right"]


@pytest.fixture(scope="module")
def committed():
    image = Pipeline.load(REPO / "models", "cpu")
    return image, VideoPipeline.load(REPO / "models", image.vae)


def _probe(sample) -> list:
    return [measure_clip(result.frames, result.prompt)
            for result in (sample(ClipSettings(prompt=text, seed=100 * i, steps=10)) for i, text in enumerate(PROBES))]


@pytest.fixture(scope="module")
def committed_clips(committed) -> list:
    """The committed video model's probe clips, measured once for the tests below."""
    return _probe(committed[1].generate)


@NO_VIDEO_WEIGHTS
def test_committed_video_model_keeps_its_subject_and_moves_smoothly_at_the_trained_speed(committed,
                                                                                          committed_clips):
    image, clips = committed[0], committed_clips
    per_frame = _probe(lambda settings: sample_per_frame(image, settings))
    # The square and the triangle; the circles are the next test's.
    kept = [m.subject_consistency for m, t in zip(clips, PROBES) if "circle" not in t]
    assert np.mean(kept) >= 0.9, kept
    assert all(m.shape == parse_video_prompt(t).shape for m, t in zip(clips, PROBES) if "circle" not in t)
    jumps = [m.mean_jump_px for m in clips]
    assert all(j is not None and 1.5 <= j <= 5.0 for j in jumps), jumps  # training clips move 2-4 px per frame
    assert np.mean([m.motion_smoothness for m in clips]) >= 0.8
    # the failure it fixes: the image model frame by frame puts the shape somewhere new in every frame
    assert np.mean([m.mean_jump_px for m in per_frame]) > 3 * np.mean(jumps)
    assert np.mean([m.motion_smoothness for m in per_frame]) < 0.3


@NO_VIDEO_WEIGHTS
@pytest.mark.xfail(strict=True, reason="issue 14 §4: the committed video model draws circles as rounded diamonds "
                                       "(four-fold moment 0.10-0.23 at s = 5; models/VIDEO.md); a retrained model fixes it")
def test_committed_video_model_draws_its_circles_round_in_every_frame(committed_clips):
    circles = [m for m, t in zip(committed_clips, PROBES) if "circle" in t]
    assert [m.frame_shapes for m in circles] == [["circle"] * 8] * len(circles)


@NO_VIDEO_WEIGHTS
def test_committed_video_model_moves_the_way_the_caption_says(committed_clips):
    # models/VIDEO.md: 127 of 128 clips in the asked 45-degree sector (chance 12.5%)
    clips = committed_clips
    assert [m.direction for m in clips] == [parse_video_prompt(t).direction for t in PROBES]
