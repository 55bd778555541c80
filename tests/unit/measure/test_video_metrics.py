"""VBench-style clip measures: the training grammar scores at the ceiling, unrelated frames do not."""

import math

import numpy as np
import pytest

from app.measure.video import (
    MIN_SPEED_PX,
    SMOOTHNESS_SCALE_PX,
    direction_of,
    expected_speed_px,
    fit_line,
    measure_clip,
    summarise,
)
from app.world.clips import (
    DIRECTION_NAMES,
    DIRECTIONS,
    ClipBatch,
    clip_captions,
    nearest_position,
    parse_video_prompt,
    render_clips,
)
from app.world.scenes import COLOUR_NAMES, SHAPES, SceneBatch, render, sample_scenes, to_uint8
from tests.helpers.shapes import draw


def clip_per_direction(shape: int = 0, colour: int = 0, size: int = 1, side: float = 22.0, speed: float = 3.0,
                       frames: int = 8) -> ClipBatch:
    """One clip per direction, each path centred on the frame's middle (so every one stays inside)."""
    n = len(DIRECTION_NAMES)
    unit = np.array([DIRECTIONS[d] for d in DIRECTION_NAMES], dtype=np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    start = 32.0 - unit * speed * (frames - 1) / 2
    scenes = SceneBatch(shape=np.full(n, shape), colour=np.full(n, colour), size=np.full(n, size),
                        position=nearest_position(start[:, 0], start[:, 1], 64), side_px=np.full(n, side),
                        cx=start[:, 0], cy=start[:, 1], background=np.full((n, 3), 236.0))
    return ClipBatch(scenes, np.arange(n), np.full(n, speed), frames)


def frames_of(clips: ClipBatch) -> list[np.ndarray]:
    return [to_uint8(clip) for clip in render_clips(clips)]  # each (F, H, W, 3)


@pytest.mark.parametrize("shape, colour, size, side", [(0, 0, 1, 22.0), (1, 4, 0, 12.0), (2, 3, 1, 24.0)])
def test_rendered_clips_score_at_the_ceiling_in_every_direction(shape, colour, size, side):
    clips = clip_per_direction(shape, colour, size, side)
    captions = clip_captions(clips)
    for k, frames in enumerate(frames_of(clips)):
        m = measure_clip(frames, parse_video_prompt(captions[k]))
        assert m.direction == DIRECTION_NAMES[k], captions[k]
        assert m.subject_consistency == 1.0 and m.tracked_frames == 8
        assert m.motion_smoothness > 0.9 and m.path_rms_px < 0.4
        assert m.mean_jump_px == pytest.approx(3.0, abs=0.4)
        assert math.hypot(*m.velocity_px) == pytest.approx(3.0, abs=0.25)  # whole-pixel masks
        assert (m.shape, m.colour) == (SHAPES[shape], COLOUR_NAMES[colour])
        assert m.adherence == {"shape": True, "colour": True, "size": True, "direction": True, "start": True,
                               "shape_every_frame": True, "all": True}
        assert m.frame_shapes == [SHAPES[shape]] * 8
        assert 0.97 < m.temporal_flickering < 1.0


def test_frames_of_unrelated_scenes_jump_and_are_not_smooth():
    scenes = sample_scenes(8, np.random.default_rng(3))
    frames = to_uint8(render(scenes))  # 8 unrelated scenes as one "clip"
    m = measure_clip(frames, parse_video_prompt("a red circle moving right"))
    assert m.motion_smoothness < 0.2 and m.path_rms_px > 8
    assert m.mean_jump_px > 15 and m.mean_jump_frame_widths == pytest.approx(m.mean_jump_px / 64)
    assert m.subject_consistency < 0.5
    assert not m.adherence["all"]
    steady = measure_clip(frames_of(clip_per_direction())[0])
    assert m.temporal_flickering < steady.temporal_flickering


def test_identical_frames_do_not_flicker_and_stand_still():
    frame = to_uint8(render(sample_scenes(1, np.random.default_rng(0))))[0]
    m = measure_clip(np.stack([frame] * 6), parse_video_prompt("a circle moving left"))
    assert m.temporal_flickering == 1.0 and m.mean_abs_frame_diff == 0.0
    assert m.direction == "still" and m.mean_jump_px == 0.0 and np.allclose(m.velocity_px, 0.0, atol=1e-9)
    assert m.motion_smoothness == pytest.approx(1.0) and m.subject_consistency == 1.0
    assert m.adherence["direction"] is False and m.adherence["all"] is False


def test_a_blank_clip_tracks_nothing():
    m = measure_clip(np.full((4, 64, 64, 3), 236, np.uint8), parse_video_prompt("a circle moving left"))
    assert m.tracked_frames == 0 and m.direction is None and m.mean_jump_px is None
    assert m.subject_consistency == 0.0 and m.motion_smoothness == 0.0
    assert m.adherence == {"shape": False, "direction": False, "shape_every_frame": False, "all": False}
    assert m.frame_shapes == [None] * 4


def test_a_circle_drawn_as_a_rounded_diamond_in_some_frames_fails_every_frame():
    frames = frames_of(clip_per_direction(shape=0, colour=2, size=0, side=12.0))[2]  # a small yellow circle moving up
    path = measure_clip(frames).centroids
    for k in (1, 4):  # the same place and size, drawn as a diamond with corners rounded to 0.6 of its half side
        frames[k] = draw("diamond", 12.0, *path[k], colour="yellow", rounding=0.6, background=236.0)
    m = measure_clip(frames, parse_video_prompt("a small yellow circle moving up"))
    assert m.frame_shapes == ["circle", None, "circle", "circle", None, "circle", "circle", "circle"]
    assert m.shape == "circle" and m.subject_consistency == 0.75
    assert m.adherence["shape"] and not m.adherence["shape_every_frame"] and not m.adherence["all"]
    assert m.direction == "up"


def test_measure_clip_refuses_what_is_not_a_clip():
    with pytest.raises(ValueError, match="a clip is uint8"):
        measure_clip(np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError):
        measure_clip(np.zeros((4, 64, 64), np.uint8))


@pytest.mark.parametrize("name", DIRECTION_NAMES)
def test_direction_of_exact_vectors(name):
    dx, dy = DIRECTIONS[name]
    assert direction_of((3 * dx, 3 * dy)) == name
    # anywhere inside its 45-degree sector: rotate by up to +-20 degrees (y down, so counter-clockwise is -y)
    angle = math.atan2(-dy, dx)
    for turn in (-20, 20):
        a = angle + math.radians(turn)
        assert direction_of((2.5 * math.cos(a), -2.5 * math.sin(a))) == name


def test_direction_of_slow_motion_is_still_scaled_with_the_resolution():
    assert direction_of((0.0, 0.0)) == "still"
    assert direction_of((0.9 * MIN_SPEED_PX, 0.0)) == "still"
    assert direction_of((1.1 * MIN_SPEED_PX, 0.0)) == "right"
    assert direction_of((0.6 * MIN_SPEED_PX, 0.0), resolution=32) == "right"
    assert direction_of((0.0, 0.4 * MIN_SPEED_PX), resolution=32) == "still"
    assert expected_speed_px(32) == (1.0, 2.0)


def test_fit_line_recovers_a_straight_path_and_its_scatter():
    ks = np.arange(5, dtype=np.float64)
    points = np.stack([10 + 2 * ks, 30 - ks], 1)
    a, b, rms = fit_line(ks, points)
    assert np.allclose(a, [10, 30]) and np.allclose(b, [2, -1]) and rms == pytest.approx(0.0, abs=1e-9)
    noisy = points + np.array([[1, 0], [-1, 0], [1, 0], [-1, 0], [1, 0]])
    assert 0.5 < fit_line(ks, noisy)[2] < 1.0
    assert math.exp(-fit_line(ks, noisy)[2] / SMOOTHNESS_SCALE_PX) > 0.75


def test_summarise_averages_and_counts_hits():
    clips = clip_per_direction()
    good = [measure_clip(f, parse_video_prompt(c)) for f, c in zip(frames_of(clips), clip_captions(clips))]
    blank = measure_clip(np.full((8, 64, 64, 3), 236, np.uint8), parse_video_prompt("a circle moving left"))
    s = summarise(good[:3] + [blank])
    assert s["clips"] == 4
    assert s["subject_consistency"] == pytest.approx(0.75)
    assert s["tracked_share"] == pytest.approx(0.75)
    assert s["mean_jump_px"] == pytest.approx(np.mean([m.mean_jump_px for m in good[:3]]))  # blank: skipped
    assert s["adherence"]["direction"] == pytest.approx(0.75) and s["adherence"]["start"] == 1.0
    assert summarise([])["clips"] == 0
