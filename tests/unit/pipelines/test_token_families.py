"""The token families as generators: batches of jobs, the steps they report, previews, refusals, likelihoods."""

from pathlib import Path

import numpy as np
import pytest
import torch

from app.pipelines.protocol import PromptNotLearned
from app.pipelines.token_sampling import UNKNOWN
from app.pipelines.tokens import UNDRAWN_DIMMING, TokenFamily, TokenSettings
from app.world.scenes import VOCAB, to_uint8
from tests.helpers.models import write_tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module", params=["autoregressive", "masked"])
def family(request, model_dir) -> TokenFamily:
    return TokenFamily.load(model_dir, request.param, "cpu")


def test_jobs_sampled_together_get_the_images_they_get_alone(family):
    jobs = [TokenSettings(family=family.family, prompt="a red circle", seed=5, batch_size=2, guidance_scale=2.0),
            TokenSettings(family=family.family, prompt="two blue squares", seed=9, guidance_scale=4.0)]
    together = family.generate_batch(jobs)
    assert [r.images.shape[0] for r in together] == [2, 1] and [r.seeds for r in together] == [[5, 6], [9]]
    alone = family.generate(jobs[1])
    assert torch.equal(alone.tokens, together[1].tokens)
    assert together[0].prompt_canonical == "a red circle"
    forwards = family.tokens if family.family == "autoregressive" else jobs[0].rounds
    assert together[0].timings["network_forwards"] == forwards == family.sequential_forwards(jobs[0])


def test_jobs_that_draw_tokens_differently_are_not_batched(family):
    with pytest.raises(ValueError, match="share family, temperature"):
        family.generate_batch([TokenSettings(family=family.family), TokenSettings(family=family.family, top_k=3)])
    other = "masked" if family.family == "autoregressive" else "autoregressive"
    with pytest.raises(ValueError, match="samples the"):
        family.generate_batch([TokenSettings(family=other)])


def test_every_step_is_reported_and_the_last_grid_is_the_image(family):
    steps = []
    settings = TokenSettings(family=family.family, prompt="a large green triangle", seed=2, rounds=5)
    result = family.generate(settings, steps.append)
    assert len(steps) == family.total_steps([settings]) and steps[-1].index == len(steps) - 1
    assert not bool((steps[-1].tokens == UNKNOWN).any())
    assert torch.equal(steps[-1].tokens, result.tokens)
    assert all(s.seconds >= 0 for s in steps)


def test_a_preview_shows_undrawn_tokens_as_dimmed_background(family):
    drawn = family.generate(TokenSettings(family=family.family, seed=1)).tokens[0]
    assert np.array_equal(family.preview(drawn), to_uint8(family.decode(drawn[None]))[0])
    top = torch.arange(family.tokens) < family.tokens // 2  # the top half of the grid drawn, the rest not yet
    half = torch.where(top, drawn, UNKNOWN)
    shown = family.preview(half).astype(float)
    decoded = to_uint8(family.decode(torch.where(top, drawn, family._background)[None]))[0].astype(float)
    side = family.resolution // 2
    assert np.array_equal(shown[:side], decoded[:side])
    assert np.abs(shown[side:] - decoded[side:] * (1 - UNDRAWN_DIMMING)).max() <= 0.5 + 1e-3  # rounded once


def test_words_the_caption_encoder_never_saw_are_refused(tmp_path):
    old = write_tiny_model(tmp_path, vocab_size=VOCAB.index("of"))
    family = TokenFamily.load(old, "masked", "cpu")
    family.check([TokenSettings(family="masked", prompt="a red circle")])
    with pytest.raises(PromptNotLearned) as refused:
        family.check([TokenSettings(family="masked", prompt="two red circles")])
    assert refused.value.field == "prompt" and refused.value.words == ["two"]


def test_the_likelihood_is_the_autoregressive_familys(model_dir):
    ar = TokenFamily.load(model_dir, "autoregressive", "cpu")
    tokens = ar.generate(TokenSettings(family="autoregressive", seed=3, batch_size=2)).tokens
    one = ar.log_probs(tokens, "a red circle")
    per_row = ar.log_probs(tokens, ["a red circle", "a blue square"])
    assert one.shape == tokens.shape and torch.allclose(one[0], per_row[0])
    assert not torch.allclose(one[1], per_row[1])
    with pytest.raises(ValueError, match="autoregressive"):
        TokenFamily.load(model_dir, "masked", "cpu").log_probs(tokens, "a red circle")
