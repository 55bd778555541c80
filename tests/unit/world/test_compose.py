"""Pins the two-shape grammar: where pairs sit, how they are drawn and captioned, and how prompts read."""

import numpy as np
import pytest

from app.measure.pair_judge import judge_pairs
from app.world.compose import HORIZONTAL, PairPrompt, pair_captions, relation_index, render_pairs, sample_pairs
from app.world.prompts import parse_prompt
from app.world.scenes import (
    MAX_TOKENS,
    PALETTE,
    RELATIONS,
    Prompt,
    PromptError,
    detokenize,
    parse_object_prompt,
    to_uint8,
    tokenize,
)


@pytest.fixture(scope="module")
def pairs():
    return sample_pairs(600, np.random.default_rng(7))


def test_pairs_sit_two_cells_apart_along_their_axis_and_never_touch(pairs):
    a, b = pairs.first, pairs.second
    col_a, col_b, row_a, row_b = a.position % 3, b.position % 3, a.position // 3, b.position // 3
    horizontal = pairs.axis == HORIZONTAL
    assert np.all(np.abs(col_a - col_b)[horizontal] == 2)
    assert np.all(np.abs(row_a - row_b)[~horizontal] == 2)
    assert 0.4 < horizontal.mean() < 0.6
    gap = np.maximum(np.abs(a.cx - b.cx), np.abs(a.cy - b.cy)) - (a.side_px + b.side_px) / 2
    assert gap.min() >= 1.9  # two large shapes, jittered towards each other, keep 2 px apart
    assert np.array_equal(a.background, b.background)


def test_identical_pairs_share_every_attribute_and_make_a_third(pairs):
    same = pairs.identical
    assert 0.25 < same.mean() < 0.42
    for attr in ("shape", "colour", "size", "side_px"):
        assert np.array_equal(getattr(pairs.first, attr)[same], getattr(pairs.second, attr)[same])
    different = ~same
    assert (pairs.first.shape != pairs.second.shape)[different].mean() > 0.5


def test_sampling_is_deterministic_per_seed():
    a, b = sample_pairs(20, np.random.default_rng(3)), sample_pairs(20, np.random.default_rng(3))
    assert np.array_equal(render_pairs(a).numpy(), render_pairs(b).numpy())


def test_both_shapes_are_drawn_in_their_palette_colours(pairs):
    images = to_uint8(render_pairs(pairs, noise=0.0)[:50]).astype(int)
    for i in range(50):
        for scene in (pairs.first, pairs.second):
            pixel = images[i, int(scene.cy[i]), int(scene.cx[i])]
            assert np.array_equal(pixel, PALETTE[scene.colour[i]].astype(int))


def test_captions_read_back_as_the_scene_they_describe(pairs):
    captions = pair_captions(pairs, np.random.default_rng(1), p_partial=0.3, p_drop=0.1)
    assert 0.05 < np.mean([c == "" for c in captions]) < 0.15
    assert max(len(c.split()) for c in captions) <= MAX_TOKENS
    assert detokenize(tokenize(captions)) == captions
    relation = relation_index(pairs)
    kinds = set()
    for i, text in enumerate(captions):
        if not text:
            continue
        prompt = parse_prompt(text)
        assert isinstance(prompt, PairPrompt) and prompt.canonical == text
        kinds.add(prompt.kind if prompt.kind in ("and", "two") else "relation")
        drawn = {(pairs.first.shape[i], pairs.first.colour[i]), (pairs.second.shape[i], pairs.second.colour[i])}
        assert prompt.kind == "two" or prompt.kind == "and" or prompt.kind == RELATIONS[relation[i]]
        assert prompt.kind != "two" or pairs.identical[i]
        for named in (prompt.first, prompt.second):
            assert any(_fits(named, s, c) for s, c in drawn)
    assert kinds == {"relation", "and", "two"}


def _fits(prompt: Prompt, shape: int, colour: int) -> bool:
    from app.world.scenes import COLOUR_NAMES, SHAPES

    return prompt.shape == SHAPES[shape] and prompt.colour in (None, COLOUR_NAMES[colour])


def test_the_judge_reads_rendered_pairs_exactly(pairs):
    from app.measure.pair_judge import pair_agreement

    agreement = pair_agreement(judge_pairs(render_pairs(pairs)), pairs)
    assert agreement == {k: 1.0 for k in ("count", "shape", "colour", "size", "relation", "all")}


@pytest.mark.parametrize("text, canonical", [
    ("a red circle left of a blue square", "a red circle left of a blue square"),
    ("A small red circle, to the left of a big blue box.", "a small red circle left of a large blue square"),
    ("a triangle over a purple disc", "a triangle above a purple circle"),
    ("a green square beneath a triangle", "a green square below a triangle"),
    ("a circle and a square", "a circle and a square"),
    ("two red circles", "two red circles"),
    ("2 small triangles", "two small triangles"),
    ("two large squares", "two large squares"),
])
def test_two_shape_prompts_read_forgivingly(text, canonical):
    prompt = parse_prompt(text)
    assert isinstance(prompt, PairPrompt)
    assert prompt.canonical == canonical


def test_one_shape_prompts_read_as_before():
    assert parse_prompt("a large red circle at the top left") == parse_object_prompt("a large red circle at the top left")
    assert parse_prompt("").canonical == ""


@pytest.mark.parametrize("text, problem", [
    ("three circles", "unknown word: three"),
    ("a red circle left of a blue square at the top", "not with 'top'"),
    ("two circles and a square", "two identical shapes"),
    ("a red left of a blue square", "name the first shape"),
    ("circles", "needs 'two' before it"),
    ("a circle of a square", "'of' follows 'left' or 'right'"),
    ("a red blue circle and a square", "one colour, got red and blue"),
    ("a circle left of a square above a triangle", "found 'left of', 'above'"),
    ("a circle and a crimson square", "unknown word: crimson"),
])
def test_two_shape_prompts_refuse_what_they_cannot_draw(text, problem):
    with pytest.raises(PromptError, match=problem) as err:
        parse_prompt(text)
    assert "Two shapes:" in str(err.value)  # the message shows the forms the model knows
