"""Guidance lab domain code: grid and sweep layout, measurements on real rendered scenes, the step's pictures."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from app.lab import guidance as lab
from app.measure.image import full_prompts, pairwise_rms
from app.pipelines.image import GenerationResult, GenerationSettings, Pipeline
from app.pipelines.tokens import TokenSettings
from app.world.scenes import render, sample_scenes, scene_attributes


def test_grid_parts_are_scale_major_with_the_same_seeds_in_every_column():
    parts = lab.grid_settings(GenerationSettings("a red circle", steps=7, sampler="ddim", batch_size=3), [0, 5],
                              [3, 9, 4])
    assert [(p.guidance_scale, p.seed) for p in parts] == [(0, 3), (0, 9), (0, 4), (5, 3), (5, 9), (5, 4)]
    assert {p.batch_key() for p in parts} == {(7, "ddim", 0.0, "cfg")} and all(p.batch_size == 1 for p in parts)
    assert {p.prompt for p in parts} == {"a red circle"}
    with pytest.raises(ValueError, match="more than 32"):
        lab.grid_settings(GenerationSettings(steps=2), [1] * 9, [1, 2, 3, 4])


def test_a_token_familys_grid_keeps_its_knobs_in_every_part():
    base = TokenSettings(family="masked", prompt="a red circle", temperature=0.5, top_k=7, rounds=3)
    parts = lab.grid_settings(base, [1, 3], [4, 5])
    assert [(p.guidance_scale, p.seed) for p in parts] == [(1, 4), (1, 5), (3, 4), (3, 5)]
    assert {p.batch_key() for p in parts} == {("masked", 0.5, 7, 3)} and all(p.batch_size == 1 for p in parts)


def _results(images: np.ndarray) -> list[GenerationResult]:
    return [GenerationResult(images=im[None], seeds=[i], settings=GenerationSettings(), prompt_canonical="")
            for i, im in enumerate(images)]


def test_measure_grid_judges_real_scenes_and_spreads_across_seeds():
    scenes = sample_scenes(4, np.random.default_rng(5))
    images = render(scenes)  # (4, 3, 64, 64) in [-1, 1]
    pictures = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    truth = scene_attributes(scenes, 0)
    prompt = f"a {truth['size']} {truth['colour']} {truth['shape']}"
    same = np.stack([pictures[0]] * 2)
    columns = lab.measure_grid(prompt, [1, 3], [0, 1], _results(np.concatenate([same, pictures[1:3]])))
    assert columns[0].adherence == {"shape": 1.0, "colour": 1.0, "size": 1.0, "clean": 1.0, "all": 1.0}
    assert columns[0].diversity_rms == 0.0  # two identical images
    assert columns[1].diversity_rms == pytest.approx(pairwise_rms(pictures[1:3])) and columns[1].diversity_rms > 0
    assert columns[0].judged[0]["shape"] == truth["shape"] and columns[0].seeds == [0, 1]
    with pytest.raises(ValueError):
        lab.measure_grid(prompt, [1, 3, 5], [0, 1], _results(pictures))


def test_sweep_parts_draw_the_cards_prompts_from_the_cards_seeds():
    parts, prompts = lab.sweep_settings(3, 2, [1, 7.5], steps=20, sampler="dpmpp_2m")
    assert [p.canonical for p in prompts] == [p.canonical for p in full_prompts(3)]
    assert [(p.guidance_scale, p.prompt, p.seed, p.batch_size) for p in parts[:3]] == [
        (1, prompts[i].canonical, 2 * i, 2) for i in range(3)]  # as the card: prompt i from seed i * seeds
    assert [p.guidance_scale for p in parts[3:]] == [7.5] * 3
    with pytest.raises(ValueError):
        lab.sweep_settings(8, 4, [1, 2], 20, "dpmpp_2m")


def test_interval_fractions_become_inclusive_timesteps():
    assert lab.interval_timesteps(0.0, 1.0, 1000) == (0, 999)
    assert lab.interval_timesteps(0.2, 0.8, 1000) == (200, 799)  # 0 = pure noise (t = 999), 1 = clean (t = 0)
    with pytest.raises(ValueError):
        lab.interval_timesteps(0.8, 0.2, 1000)


def test_variants_differ_only_in_how_they_guide():
    base = GenerationSettings(prompt="a red circle", seed=4, steps=9, guidance_scale=6.0, batch_size=3)
    v = lab.variant_settings(base, 0.7, (100, 800), cfgpp_lambda=0.4)
    assert list(v) == ["cfg", "cfg_rescale", "cfg_interval", "apg", "cfg++"] == list(lab.VARIANTS)
    assert (v["cfg"].guidance_rescale, v["cfg"].guidance_interval, v["cfg"].batch_size) == (0.0, None, 1)
    assert v["cfg_rescale"].guidance_rescale == 0.7 and v["cfg_interval"].guidance_interval == (100, 800)
    assert v["apg"].guidance_method == "apg" and v["apg"].guidance_scale == 6.0
    assert (v["cfg++"].guidance_method, v["cfg++"].sampler, v["cfg++"].guidance_scale) == ("cfg++", "ddim", 0.4)
    assert {s.seed for s in v.values()} == {4}
    # the CFG family shares one batch; APG (momentum) and CFG++ (its own step) each sample apart
    assert lab.batches(v) == [["cfg", "cfg_rescale", "cfg_interval"], ["apg"], ["cfg++"]]


def test_diverging_colours_and_channel_tiles():
    rgb = lab.diverging_rgb(np.array([[-2.0, -1.0, 0.0, 0.5, 1.0]]), scale=1.0)
    assert rgb[0, 0].tolist() == rgb[0, 1].tolist() == [40, 90, 200]  # clipped to the negative end
    assert rgb[0, 2].tolist() == [128, 128, 128] and rgb[0, 4].tolist() == [245, 130, 32]
    assert rgb[0, 3].tolist() == [186, 129, 80]  # half way from grey to orange
    z = torch.zeros(4, 8, 8)
    z[3, 7, 7] = 1.0
    tiles = lab.channel_tiles(z, 1.0)
    assert tiles.shape == (2 * 64 + 2, 2 * 64 + 2, 3)  # 8 px per latent cell, a 2 x 2 grid, 2 px gap
    assert tiles[-1, -1].tolist() == [245, 130, 32] and tiles[0, 0].tolist() == [128, 128, 128]
    assert tiles[64, 0].tolist() == lab.GAP_RGB.tolist()
    assert lab.channel_tiles(torch.zeros(3, 4, 4), 1.0).shape == (2 * 64 + 2, 2 * 64 + 2, 3)  # 2 x 2 with a hole


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir) -> Pipeline:
    return Pipeline.load(tiny_model_dir, "cpu")


def test_the_capture_takes_apart_the_chosen_row_at_the_chosen_step(pipeline):
    everything = lab.variant_settings(GenerationSettings(prompt="a blue circle", seed=1, steps=5, guidance_scale=3.0),
                                      0.5, (0, 500), 0.6)
    variants = {name: everything[name] for name in lab.batches(everything)[0]}  # the CFG family: one batch
    capture = lab.StepCapture(pipeline, variants["cfg_rescale"], row=1, at_step=2)
    seen = []

    def both(step):
        capture(step)
        if step.info.index == 2:
            seen.append(step.rows(1, 2))

    pipeline.generate_batch(list(variants.values()), both)
    a, [step] = capture.anatomy, seen
    assert (a.index, a.total, a.t, a.guided, a.scale) == (2, 5, step.info.t, True, 3.0)
    assert [m.name for m in a.maps] == ["eps_uncond", "eps_cond", "difference", "guided"]
    u, c, d, g = a.maps
    assert u.norm == pytest.approx(float(step.eps_uncond.norm()), rel=1e-6)
    assert c.norm == pytest.approx(float(step.eps_cond.norm()), rel=1e-6)
    assert g.norm == pytest.approx(float(step.info.eps_hat.norm()), rel=1e-6)  # what the sampler used
    assert d.norm == pytest.approx(float((step.eps_cond - step.eps_uncond).norm()), rel=1e-5)
    assert u.display_scale == c.display_scale == g.display_scale >= d.display_scale
    assert all(m.x0_image.shape == (32, 32, 3) for m in (u, c, g)) and d.x0_image is None


def test_guided_step_counts(pipeline):
    base = GenerationSettings(steps=10, guidance_scale=4.0)
    assert lab.guided_step_count(pipeline, base) == 10
    assert lab.guided_step_count(pipeline, GenerationSettings(steps=10, guidance_scale=1.0)) == 0
    ts = [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert lab.guided_step_count(pipeline, replace(base, guidance_interval=(200, 800))) == sum(
        200 <= t <= 800 for t in ts) == 6
