"""The held-out scenes: the VAL_SEED draw, the same every time."""

import numpy as np

from app.world.compose import sample_pairs
from app.world.held_out import VAL_SEED, held_out_pairs, held_out_scenes
from app.world.scenes import sample_scenes


def test_held_out_scenes_are_the_val_seeds_draw_every_time():
    expected = vars(sample_scenes(16, np.random.default_rng(VAL_SEED), 32))
    for _ in range(2):
        scenes = vars(held_out_scenes(16, 32))
        assert scenes.keys() == expected.keys()
        assert all(np.array_equal(scenes[k], expected[k]) for k in expected)


def test_another_seed_draws_other_scenes():
    assert not np.array_equal(held_out_scenes(16, 32, seed=0).cx, held_out_scenes(16, 32).cx)


def test_held_out_pairs_are_the_val_seeds_draw_every_time():
    expected = sample_pairs(8, np.random.default_rng(VAL_SEED), 32)
    for _ in range(2):
        pairs = held_out_pairs(8, 32)
        assert np.array_equal(pairs.first.cx, expected.first.cx) and np.array_equal(pairs.axis, expected.axis)
