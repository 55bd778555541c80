"""matching_scene: a scene of the grammar drawn to fit a prompt, one shape or two."""

import pytest
import torch

from app.measure.judge import judge, matches
from app.measure.pair_judge import judge_pairs, pair_matches
from app.measure.pairs import CHECKS
from app.world.compose import PairPrompt
from app.world.prompts import matching_scene, parse_prompt
from app.world.scenes import to_uint8

PROMPTS = ["a large red circle at the top left", "a blue square", "a small triangle in the center",
           "a small red circle left of a large blue square", "a yellow square above a purple circle",
           "a green circle and a red triangle", "two small orange squares"]


@pytest.mark.parametrize("text", PROMPTS)
def test_the_scene_shows_what_the_prompt_names(text):
    prompt = parse_prompt(text)
    image, caption = matching_scene(prompt, seed=3, resolution=64)
    assert image.shape == (1, 3, 64, 64) and image.min() >= -1 and image.max() <= 1
    drawn = parse_prompt(caption)  # the full caption of what was drawn
    if isinstance(prompt, PairPrompt):
        assert drawn.kind == prompt.kind
        held = {k: v for k, v in pair_matches(judge_pairs(to_uint8(image))[0], prompt).items() if k in CHECKS}
    else:
        assert {k: v for k, v in drawn.named().items() if k in prompt.named()} == prompt.named()
        held = matches(judge(to_uint8(image))[0], prompt)
    assert all(held.values()), (caption, held)


def test_the_same_seed_draws_the_same_scene_and_another_seed_another():
    prompt = parse_prompt("a red circle")
    first, caption = matching_scene(prompt, 0, 32)
    again, same = matching_scene(prompt, 0, 32)
    assert torch.equal(first, again) and caption == same
    assert any(not torch.equal(first, matching_scene(prompt, seed, 32)[0]) for seed in (1, 2, 3))


def test_the_empty_prompt_takes_any_one_shape_scene():
    image, caption = matching_scene(parse_prompt(""), 0, 32)
    assert image.shape == (1, 3, 32, 32) and caption.startswith("a ")
