"""app/service/previews.py: latent colours, the time-left estimate, and StepView against the schedule (EQ MM3.1)."""

import math

import numpy as np
import pytest
import torch

from app.pipelines.image import GenerationSettings, Pipeline
from app.service.imaging import decode_png
from app.service.previews import LATENT_RANGE, evenly_spaced_steps, latent_to_rgb, remaining_seconds, view_step


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Pipeline.load(tiny_model_dir, "cpu")
    torch.set_num_threads(threads)


def test_latent_to_rgb_maps_the_fixed_range_and_ignores_the_fourth_channel():
    z = torch.zeros(4, 2, 3)  # (C, h, w)
    z[0, 0, 0], z[1, 0, 0], z[2, 0, 0], z[3, 0, 0] = -LATENT_RANGE, LATENT_RANGE, 10.0, 99.0
    z[0, 1, 2] = -10.0
    rgb = latent_to_rgb(z)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 255, 255]  # -3 -> 0, +3 -> 255, beyond the range clipped
    assert rgb[1, 2, 0] == 0 and rgb[1, 1].tolist() == [128, 128, 128]  # 0 sits in the middle (127.5 rounded)
    assert np.array_equal(latent_to_rgb(torch.cat([z[:3], -z[3:]])), rgb)  # channel 3 never shows


def test_a_one_channel_latent_is_grey():
    z = torch.linspace(-LATENT_RANGE, LATENT_RANGE, 6).reshape(1, 2, 3)
    rgb = latent_to_rgb(z)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb[0, 0, 0] == 0 and rgb[1, 2, 0] == 255


@pytest.mark.parametrize(("elapsed", "done", "total", "left"),
                         [(2.0, 4, 10, 3.0), (1.0, 10, 10, 0.0), (5.0, 0, 10, 0.0), (0.3, 1, 4, 0.9)])
def test_remaining_seconds_is_the_mean_step_time_times_the_steps_left(elapsed, done, total, left):
    assert remaining_seconds(elapsed, done, total) == pytest.approx(left)


def test_step_views_follow_the_schedule_and_carry_the_three_previews(pipeline):
    steps = []
    pipeline.generate(GenerationSettings(prompt="a red circle", steps=4, seed=3, batch_size=2), callback=steps.append)
    views = [view_step(pipeline, step) for step in steps]
    abar = pipeline.schedule.alphas_cumprod
    positions = [v.position for v in views]
    assert [p.index for p in positions] == [0, 1, 2, 3] and all(p.total == 4 for p in positions)
    assert [p.t for p in positions] == sorted((p.t for p in positions), reverse=True)
    for v in positions:
        assert v.abar_t == pytest.approx(float(abar[v.t]), rel=1e-12)
        assert v.sqrt_abar_t == pytest.approx(math.sqrt(v.abar_t)) and v.sqrt_one_minus_abar_t ** 2 + v.abar_t == \
            pytest.approx(1.0)
    side, res = pipeline.dit.config.latent_size, pipeline.resolution
    first = views[0]
    assert decode_png(first.x_t_png).shape == (side, side, 3)
    assert decode_png(first.eps_hat_png).shape == (side, side, 3)
    assert decode_png(first.x0_hat_png).shape == (res, res, 3)
    # x_t of the first step is the starting noise of image 0 (seed 3), shown directly
    x_T = pipeline.initial_noise([torch.Generator().manual_seed(3)])
    assert np.array_equal(decode_png(first.x_t_png), latent_to_rgb(x_T[0]))


def test_without_previews_a_step_view_has_only_numbers(pipeline):
    steps = []
    pipeline.generate(GenerationSettings(prompt="", steps=2, seed=0), callback=steps.append)
    view = view_step(pipeline, steps[-1], previews=False)
    assert view.x_t_png is None and view.x0_hat_png is None and view.eps_hat_png is None
    assert 0 < view.position.abar_t < 1


@pytest.mark.parametrize(("total", "count", "steps"), [
    (20, 3, [4, 9, 14]),  # after steps 5, 10, 15 of 20
    (6, 2, [1, 3]),
    (4, 1, [1]),
    (3, 3, [0, 1]),  # too few steps to space three apart
    (2, 3, [0]),
    (1, 3, []),  # the only step's image is the result
    (20, 0, []),
])
def test_partial_images_are_evenly_spaced_and_never_the_last_step(total, count, steps):
    assert evenly_spaced_steps(total, count) == steps
