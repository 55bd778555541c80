"""The image metrics of the card and the guidance lab: chance, distinct draws, diversity, the prompt set, variety, PSNR."""

from collections import Counter

import numpy as np
import pytest
import torch

from app.measure.image import chance_level, expected_distinct, full_prompts, pairwise_rms, psnr, variety
from app.measure.judge import judge
from app.world.scenes import (
    COLOUR_NAMES,
    POSITIONS,
    SHAPES,
    SIZES,
    parse_object_prompt,
    render,
    sample_scenes,
    to_uint8,
)


def test_chance_level_is_one_over_the_choices_and_their_product():
    chance = chance_level()
    assert chance["shape"] == pytest.approx(1 / 3) and chance["colour"] == pytest.approx(1 / 6)
    assert chance["size"] == pytest.approx(1 / 2) and chance["position"] == pytest.approx(1 / 9)
    assert chance["all"] == pytest.approx(1 / 324)


def test_expected_distinct_values_of_uniform_draws():
    assert expected_distinct(2, 1) == pytest.approx(1.0)
    assert expected_distinct(2, 2) == pytest.approx(1.5)  # the second draw is new half the time
    assert expected_distinct(9, 16) == pytest.approx(9 * (1 - (8 / 9) ** 16))
    assert 8.9 < expected_distinct(9, 100) < 9.0


def test_pairwise_rms_is_zero_for_copies_and_one_for_black_against_white():
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert pairwise_rms(np.stack([black, black, black])) == 0.0
    assert pairwise_rms(np.stack([black, white])) == pytest.approx(1.0)
    # three images, pairs (b, w) = 1, (b, b) = 0, (w, b) = 1 -> mean 2/3
    assert pairwise_rms(np.stack([black, white, black])) == pytest.approx(2 / 3)
    assert pairwise_rms(black[None]) == 0.0


def test_full_prompts_cover_the_grammar_evenly_and_reproducibly():
    prompts = full_prompts(54, seed=0)
    assert prompts == full_prompts(54, seed=0) and prompts != full_prompts(54, seed=1)
    assert all(parse_object_prompt(p.canonical) == p for p in prompts)  # each is a full, parseable caption
    assert Counter((p.shape, p.colour) for p in prompts) == {(s, c): 3 for s in SHAPES for c in COLOUR_NAMES}
    assert Counter(p.size for p in prompts) == {s: 27 for s in SIZES}
    assert Counter(p.position for p in prompts) == {p: 6 for p in POSITIONS}


def test_variety_counts_the_distinct_judged_values_of_open_attributes():
    scenes = sample_scenes(40, np.random.default_rng(1))
    verdicts = judge(to_uint8(render(scenes)))
    found = variety(verdicts, ["colour", "position"])
    assert found["colour"]["distinct"] == len(set(scenes.colour.tolist())) and found["colour"]["possible"] == 6
    assert found["position"]["distinct"] == len(set(scenes.position.tolist())) and found["position"]["possible"] == 9
    assert found["colour"]["uniform_expected"] == pytest.approx(expected_distinct(6, 40))


def test_psnr_of_copies_is_capped_and_of_black_against_white_is_zero():
    white, black = torch.ones(2, 3, 4, 4), -torch.ones(2, 3, 4, 4)
    assert psnr(white, white).tolist() == pytest.approx([100.0 + 10 * np.log10(4.0)] * 2)
    assert psnr(black, white).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert psnr(3 * white, white).tolist() == pytest.approx(psnr(white, white).tolist())  # clamped to [-1, 1] first
