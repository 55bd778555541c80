"""Pins the two-shape judge on rendered scenes and their negatives: swapped colours, mirrored relations,
one shape where two were asked, leaked colours and copied shapes."""

import numpy as np
import pytest

from app.measure.pair_judge import judge_pairs, pair_matches
from app.world.compose import PairBatch, render_pairs, sample_pairs
from app.world.prompts import parse_prompt
from app.world.scenes import COLOUR_NAMES, SHAPES, SceneBatch, render


def _pair(first: dict, second: dict) -> PairBatch:
    """One pair with given attributes: {shape, colour, size, position} by name for each shape."""
    from app.world.scenes import POSITIONS, SIZES, anchor_px

    def scene(spec: dict) -> SceneBatch:
        position = np.array([POSITIONS.index(spec["position"])])
        cx, cy = anchor_px(position, 64)
        return SceneBatch(shape=np.array([SHAPES.index(spec["shape"])]), colour=np.array([COLOUR_NAMES.index(
            spec["colour"])]), size=np.array([SIZES.index(spec.get("size", "large"))]), position=position,
            side_px=np.array([22.0 if spec.get("size", "large") == "large" else 12.0]), cx=cx, cy=cy,
            background=np.array([[236.0, 236.0, 236.0]]))

    return PairBatch(scene(first), scene(second), np.array([0]), np.array([False]))


RED_CIRCLE_LEFT = {"shape": "circle", "colour": "red", "position": "left"}
BLUE_SQUARE_RIGHT = {"shape": "square", "colour": "blue", "position": "right"}


def _verdict(first: dict, second: dict):
    return judge_pairs(render_pairs(_pair(first, second)))[0]


def test_the_scene_s_own_caption_is_all_right():
    verdict = _verdict(RED_CIRCLE_LEFT, BLUE_SQUARE_RIGHT)
    for text in ("a red circle left of a blue square", "a blue square right of a red circle",
                 "a large red circle and a large blue square", "a blue square and a circle"):
        result = pair_matches(verdict, parse_prompt(text))
        assert result["all"], (text, result)
        assert not (result["swap"] or result["leak"] or result["copy"])


def test_swapped_colours_fail_binding_and_are_named_a_swap():
    verdict = _verdict({**RED_CIRCLE_LEFT, "colour": "blue"}, {**BLUE_SQUARE_RIGHT, "colour": "red"})
    result = pair_matches(verdict, parse_prompt("a red circle left of a blue square"))
    assert result["count"] and not result["binding"] and not result["all"]
    assert result["swap"] and not result["leak"] and not result["copy"]


def test_a_mirrored_relation_fails_only_the_relation():
    verdict = _verdict({**RED_CIRCLE_LEFT, "position": "right"}, {**BLUE_SQUARE_RIGHT, "position": "left"})
    result = pair_matches(verdict, parse_prompt("a red circle left of a blue square"))
    assert result["count"] and result["binding"] and not result["relation"] and not result["all"]
    assert pair_matches(verdict, parse_prompt("a red circle right of a blue square"))["all"]


def test_vertical_relations_read_from_the_centres():
    verdict = _verdict({**RED_CIRCLE_LEFT, "position": "top left"}, {**BLUE_SQUARE_RIGHT, "position": "bottom"})
    assert pair_matches(verdict, parse_prompt("a red circle above a blue square"))["all"]
    assert not pair_matches(verdict, parse_prompt("a red circle below a blue square"))["relation"]


def test_a_leaked_colour_and_a_copied_shape_are_told_apart():
    leak = _verdict(RED_CIRCLE_LEFT, {**BLUE_SQUARE_RIGHT, "colour": "red"})
    result = pair_matches(leak, parse_prompt("a red circle and a blue square"))
    assert result["leak"] and not result["copy"] and not result["binding"]
    copy = _verdict(RED_CIRCLE_LEFT, {**BLUE_SQUARE_RIGHT, "shape": "circle"})
    result = pair_matches(copy, parse_prompt("a red circle and a blue square"))
    assert result["copy"] and not result["leak"] and not result["binding"]


def test_one_shape_where_two_were_asked_fails_the_count():
    one = judge_pairs(render(sample_pairs(1, np.random.default_rng(0)).first))[0]
    assert one.count == 1 and len(one.objects) == 1
    result = pair_matches(one, parse_prompt("two circles"))
    assert not result["count"] and not result["all"]


@pytest.mark.parametrize("text, ok", [("two red circles", True), ("two circles", True), ("two blue circles", False),
                                      ("two red squares", False)])
def test_counting_prompts_need_two_shapes_with_the_counted_attributes(text, ok):
    verdict = _verdict(RED_CIRCLE_LEFT, {**RED_CIRCLE_LEFT, "position": "right"})
    assert pair_matches(verdict, parse_prompt(text))["all"] is ok


def test_three_shapes_fail_the_count():
    pairs = sample_pairs(1, np.random.default_rng(1))
    third = SceneBatch(**{**vars(pairs.first), "cx": np.array([32.0]), "cy": np.array([32.0]),
                          "side_px": np.array([10.0])})
    from app.world.scenes import render_layers

    verdict = judge_pairs(render_layers([pairs.first, pairs.second, third]))[0]
    assert verdict.count == 3 and not verdict.clean
