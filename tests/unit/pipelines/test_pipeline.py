"""The pipeline with a tiny random model: batches, seeds and the per-step callback."""

import numpy as np
import pytest

from app.pipelines.image import GenerationSettings, Pipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from tests.helpers.models import write_tiny_model

    return Pipeline.load(write_tiny_model(tmp_path_factory.mktemp("tiny")), device="cpu")


@pytest.mark.parametrize("sampler,eta", [("dpmpp_2m", 0.0), ("ddim", 0.5), ("ddpm", 0.0)])
def test_image_of_a_batch_reproduces_alone(pipeline, sampler, eta):
    common = dict(prompt="a red circle", steps=6, sampler=sampler, eta=eta, guidance_scale=3.0)
    batch = pipeline.generate(GenerationSettings(seed=10, batch_size=3, **common))
    alone = pipeline.generate(GenerationSettings(seed=12, batch_size=1, **common))
    assert batch.seeds == [10, 11, 12]
    # Batched matrix products round differently from single ones: allow a grey level, not a different picture.
    assert np.abs(batch.images[2].astype(int) - alone.images[0]).max() <= 2


def test_callback_sees_every_step_and_the_guidance_estimates(pipeline):
    steps = []
    pipeline.generate(GenerationSettings(prompt="a blue square", steps=5, guidance_scale=4.0), callback=steps.append)
    assert [s.info.index for s in steps] == [0, 1, 2, 3, 4]
    assert all(s.eps_uncond is not None and s.eps_cond is not None for s in steps)


def test_unknown_sampler_is_refused(pipeline):
    with pytest.raises(ValueError, match="unknown sampler"):
        pipeline.generate(GenerationSettings(prompt="a red circle", sampler="euler"))


def test_jobs_sampled_together_draw_what_they_draw_alone(pipeline):
    jobs = [GenerationSettings(prompt="a red circle", seed=1, steps=5, guidance_scale=5.0),
            GenerationSettings(prompt="a blue square", negative_prompt="a red square", seed=2, steps=5,
                               guidance_scale=7.5, guidance_rescale=0.7, batch_size=2),
            GenerationSettings(prompt="", seed=3, steps=5, guidance_scale=1.0, guidance_interval=(0, 500))]
    steps = []
    together = pipeline.generate_batch(jobs, steps.append)
    assert [r.seeds for r in together] == [[1], [2, 3], [3]]
    for job, result in zip(jobs, together):
        assert result.settings == job and result.timings["batch_jobs"] == 3 and result.timings["batch_images"] == 4
        assert np.abs(result.images.astype(int) - pipeline.generate(job).images).max() <= 2
    assert steps[0].info.x_t.shape[0] == 4
    mine = steps[0].rows(1, 3)
    assert mine.info.x_t.shape[0] == 2 and mine.eps_uncond.shape[0] == 2
    assert steps[0].rows(3, 4).eps_uncond is None  # s = 1: that row never computed the unconditional half


def test_jobs_with_different_step_counts_cannot_share_a_batch(pipeline):
    with pytest.raises(ValueError, match="share steps"):
        pipeline.generate_batch([GenerationSettings(steps=3), GenerationSettings(steps=4)])
