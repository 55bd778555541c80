"""Video clips (DESIGN.md §1): paths inside the frame, constant velocity, directions, reversal, captions, prompts."""

import numpy as np
import pytest
import torch

from app.measure.judge import judge
from app.world.clips import (
    DIRECTION_NAMES,
    DIRECTIONS,
    EDGE_MARGIN_PX,
    OPPOSITE,
    SPEED_RANGE_PX,
    VideoPromptError,
    clip_attributes,
    clip_captions,
    nearest_position,
    parse_video_prompt,
    random_clip_captions,
    render_clips,
    reverse_clips,
    sample_clips,
    start_anchor_px,
)
from app.world.scenes import MAX_PROMPT_CHARS, MAX_TOKENS, POSITIONS, detokenize, to_uint8, tokenize


@pytest.fixture(scope="module")
def clips():
    return sample_clips(2000, np.random.default_rng(0))


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("resolution", [32, 64])
def test_every_path_stays_inside_the_frame_with_the_margin(resolution):
    clips = sample_clips(3000, np.random.default_rng(resolution), resolution=resolution)
    centres = clips.centres()  # (B, F, 2)
    half = clips.scenes.side_px[:, None, None] / 2
    margin = EDGE_MARGIN_PX * resolution / 64
    assert np.all(centres - half >= margin - 1e-9)
    assert np.all(centres + half <= resolution - margin + 1e-9)


def test_rendered_frames_never_touch_the_border():
    clips = sample_clips(64, np.random.default_rng(1))
    frames = render_clips(clips)  # (B, F, 3, H, W)
    bg = torch.as_tensor(clips.scenes.background, dtype=torch.float32)[:, None, :, None] / 127.5 - 1  # (B, 1, 3, 1)
    for border in (frames[..., 0, :], frames[..., -1, :], frames[..., :, 0], frames[..., :, -1]):  # (B, F, 3, W)
        assert torch.allclose(border, bg.expand_as(border), atol=1e-5)


def test_speeds_lie_in_the_training_range_for_straight_and_diagonal_moves(clips):
    speed = np.linalg.norm(clips.velocity, axis=1)
    assert np.allclose(speed, clips.speed_px)
    assert speed.min() >= SPEED_RANGE_PX[0] and speed.max() <= SPEED_RANGE_PX[1]
    assert speed.min() < 2.1 and speed.max() > 3.9  # the whole range is used
    half = sample_clips(500, np.random.default_rng(2), resolution=32)
    assert np.all(np.linalg.norm(half.velocity, axis=1) <= SPEED_RANGE_PX[1] / 2 + 1e-9)


def test_centres_move_at_constant_velocity(clips):
    steps = np.diff(clips.centres(), axis=1)  # (B, F-1, 2)
    assert np.allclose(steps, clips.velocity[:, None, :])
    frame3 = clips.frame(3)
    assert np.allclose(np.stack([frame3.cx, frame3.cy], 1), clips.centres()[:, 3])


def test_rendered_shape_moves_by_the_velocity():
    clips = sample_clips(16, np.random.default_rng(3))
    frames = render_clips(clips)
    for i in range(len(clips)):
        boxes = np.array([v.bbox_center for v in judge(to_uint8(frames[i]))])  # (F, 2), whole pixels
        assert np.abs(np.diff(boxes, axis=0) - clips.velocity[i]).max() <= 1.0, i
        slope = np.polyfit(np.arange(clips.frames), boxes, 1)[0]  # (2,) px per frame
        assert np.abs(slope - clips.velocity[i]).max() < 0.2, i


def test_each_clip_moves_the_way_its_direction_is_named(clips):
    """Image coordinates: y grows downwards, so "down" is +dy and "up" is -dy."""
    assert DIRECTIONS["down"] == (0, 1) and DIRECTIONS["up left"] == (-1, -1)
    move = clips.centres()[:, -1] - clips.centres()[:, 0]  # (B, 2)
    for i, d in enumerate(clips.direction):
        name = DIRECTION_NAMES[d]
        assert ("left" in name) == (move[i, 0] < 0) and ("right" in name) == (move[i, 0] > 0)
        assert ("up" in name) == (move[i, 1] < 0) and ("down" in name) == (move[i, 1] > 0)
        if name in ("left", "right"):
            assert move[i, 1] == 0
        if name in ("up", "down"):
            assert move[i, 0] == 0
    assert set(clips.direction.tolist()) == set(range(8))


def test_start_position_names_the_nearest_anchor(clips):
    assert np.array_equal(clips.scenes.position, nearest_position(clips.scenes.cx, clips.scenes.cy, 64))
    assert nearest_position(np.array([16.0]), np.array([48.0]), 64)[0] == POSITIONS.index("bottom left")
    assert start_anchor_px("top right") == (48.0, 16.0)
    attrs = clip_attributes(clips, 0)
    assert attrs["direction"] == DIRECTION_NAMES[clips.direction[0]] and len(attrs["centres"]) == clips.frames


def test_reversed_clips_move_the_opposite_way_from_the_end():
    clips = sample_clips(500, np.random.default_rng(4))
    back = reverse_clips(clips)
    assert np.allclose(back.velocity, -clips.velocity)
    assert np.allclose(back.centres(), clips.centres()[:, ::-1])
    assert np.array_equal(back.scenes.position, nearest_position(*clips.centres()[:, -1].T, 64))
    for d in range(8):
        assert DIRECTIONS[DIRECTION_NAMES[OPPOSITE[d]]] == tuple(-v for v in DIRECTIONS[DIRECTION_NAMES[d]])
    assert np.array_equal(reverse_clips(back).direction, clips.direction)
    assert np.array_equal(back.scenes.colour, clips.scenes.colour)


def test_a_clip_needs_two_frames():
    with pytest.raises(ValueError):
        sample_clips(4, np.random.default_rng(0), frames=1)


# ----------------------------------------------------------------------------- captions


def test_full_captions_read_as_the_grammar_and_tokenize(clips):
    caps = clip_captions(clips)
    attrs = clip_attributes(clips, 0)
    assert caps[0] == (f"a {attrs['size']} {attrs['colour']} {attrs['shape']} moving {attrs['direction']} "
                       f"from the {attrs['start']}")
    assert max(len(c.split()) for c in caps) <= MAX_TOKENS
    assert detokenize(tokenize(caps)) == caps
    for c in caps[:200]:
        assert parse_video_prompt(c).canonical == c


def test_random_captions_mix_dropout_partial_and_full(clips):
    full = clip_captions(clips)
    caps = random_clip_captions(clips, np.random.default_rng(5), p_partial=0.3, p_drop=0.1, p_start=1.0)
    dropped = np.mean([c == "" for c in caps])
    same = np.mean([c == f for c, f in zip(caps, full)])
    assert 0.08 < dropped < 0.12
    assert 0.56 < same < 0.64  # full captions: 1 - 0.1 - 0.3
    for c, f in zip(caps, full):
        if c and c != f:  # partial: a shape always, never everything, and each word from the full caption
            assert set(c.split()) <= set(f.split()) and len(c.split()) < len(f.split())
            assert parse_video_prompt(c).shape == parse_video_prompt(f).shape
    assert max(len(c.split()) for c in caps) <= MAX_TOKENS
    tokenize(caps)


def test_random_captions_name_the_start_in_about_p_start_of_full_captions(clips):
    caps = random_clip_captions(clips, np.random.default_rng(6), p_partial=0.0, p_drop=0.0, p_start=0.5)
    assert all("moving" in c for c in caps)
    assert 0.45 < np.mean(["from" in c for c in caps]) < 0.55


# ----------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("text, canonical", [
    ("a small red circle moving up right from the bottom left",
     "a small red circle moving up right from the bottom left"),
    ("Red circle, going RIGHT up!", "a red circle moving up right"),
    ("a circle moving right up", "a circle moving up right"),
    ("a circle moving left down", "a circle moving down left"),
    ("a square moving upwards", "a square moving up"),
    ("a blue triangle moving down-left", "a blue triangle moving down left"),
    ("a circle leftwards", "a circle moving left"),
    ("a big violet disc drifting rightwards from the middle", "a large purple circle moving right from the center"),
    ("a circle moving top left", "a circle moving up left"),
    ("circle moving right from top", "a circle moving right from the top"),
    ("a circle from the lower left", "a circle from the bottom left"),
    ("a large circle", "a large circle"),
    ("", ""),
])
def test_prompts_parse_forgivingly_to_the_canonical_caption(text, canonical):
    prompt = parse_video_prompt(text)
    assert prompt.canonical == canonical
    assert parse_video_prompt(canonical) == prompt


def test_a_prompt_names_its_parts_and_maps_to_an_image_prompt():
    p = parse_video_prompt("a small red circle moving up right from the bottom left")
    assert p.named() == {"shape": "circle", "colour": "red", "size": "small", "direction": "up right",
                         "start": "bottom left"}
    assert p.image_prompt.canonical == "a small red circle at the bottom left"
    assert parse_video_prompt("a circle moving left").image_prompt.canonical == "a circle"


@pytest.mark.parametrize("text, problem", [
    ("a circle moving left right", "one direction"),
    ("a circle moving up down", "one direction"),
    ("a dog moving left", "unknown word: dog"),
    ("a circle moving sideways", "unknown word: sideways"),
    ("a circle moving up from", "'from' must be followed by a start position"),
    ("a circle moving up from the", "'from' must be followed by a start position"),
    ("a circle moving left from the top from the bottom", "say 'from the ...' once"),
    ("a circle moving left from the blue", "only a start position may follow"),
    ("a circle in the middle moving left", "say where the clip starts with 'from the center'"),
    ("a circle at the top moving left", "say where the clip starts with 'from the top', not 'at the top'"),
    ("a circle moving left at the bottom right", "'from the bottom right'"),
    ("moving left", "name a shape"),
    ("a red blue circle moving left", "one colour"),
    ("a" * (MAX_PROMPT_CHARS + 1), f"at most {MAX_PROMPT_CHARS} are allowed"),
])
def test_bad_prompts_raise_a_clear_error(text, problem):
    with pytest.raises(VideoPromptError) as err:
        parse_video_prompt(text)
    assert problem in err.value.problem
    message = str(err.value)
    assert "moving up right from the bottom left" in message and "directions" in message  # the form and words
    assert "moving" in err.value.vocabulary and "circle" in err.value.vocabulary


def test_unknown_words_are_listed_once():
    with pytest.raises(VideoPromptError) as err:
        parse_video_prompt("a dog cat dog moving left")
    assert err.value.unknown_words == ["dog", "cat"] and "unknown words: dog, cat" in err.value.problem
