"""Chapter §3.4 on the loaded models (app/lab/families.py): EQ MM3.5's factors in bits, the judge, the codebook
panel on the tiny models, the sizes, the forwards and the page's answers."""

import math

import numpy as np
import pytest
import torch

from app.lab import families
from app.nets.token_transformer import KVCache
from app.pipelines.image import Pipeline
from app.pipelines.protocol import PromptNotLearned
from app.pipelines.tokens import TokenFamily
from app.world.prompts import matching_scene, parse_prompt
from app.world.scenes import to_uint8
from tests.helpers.models import write_tiny_token_models

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ar(tiny_model_dir) -> TokenFamily:
    return TokenFamily.load(tiny_model_dir, "autoregressive", "cpu")


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir) -> Pipeline:
    return Pipeline.load(tiny_model_dir, "cpu")


# ------------------------------------------------------------------------------------------ EQ MM3.5


def test_the_token_bits_add_up_to_the_total(ar):
    scored = families.likelihood(ar, "a large red circle at the top left", "scene", scene_seed=2)
    n, k = ar.tokens, ar.config.codebook_size
    assert scored.log2_probs.shape == scored.tokens.shape == (ar.config.grid, ar.config.grid)
    assert np.all(scored.log2_probs <= 0)
    assert -scored.log2_probs.astype(np.float64).sum() == pytest.approx(scored.total_bits, rel=1e-9)
    assert scored.bits_per_token * n == pytest.approx(scored.total_bits)
    assert scored.uniform_bits == families.uniform_bits(n, k) == n * math.log2(k)
    assert scored.scene_caption == "a large red circle at the top left" and scored.source == "scene"
    assert scored.picture.shape == scored.decoded.shape == (ar.resolution, ar.resolution, 3)


def test_one_teacher_forced_forward_gives_the_factors_of_sampling_order(ar):
    """EQ MM3.5: the factors the scorer reads in one causal forward are those of the tokens fed one at a time."""
    tokens = torch.randint(0, ar.config.codebook_size, (1, ar.tokens), generator=torch.Generator().manual_seed(0))
    scored = families.likelihood(ar, "a blue square", "tokens", tokens=tokens[0].tolist())
    model = ar.model.transformer
    context, keep = ar.encode_captions([parse_prompt("a blue square").canonical])
    cache, slot, total = KVCache(model.config.depth), torch.tensor([[model.config.special_token]]), 0.0
    with torch.no_grad():
        for i in range(ar.tokens):
            logits = model(slot, context, keep, cache)[:, -1]
            total -= torch.log_softmax(logits.double(), -1)[0, tokens[0, i]].item() / math.log(2)
            slot = tokens[:, i:i + 1]
    assert scored.total_bits == pytest.approx(total, rel=1e-4)
    assert np.array_equal(scored.tokens.flatten(), tokens[0].numpy())


def test_an_image_is_scored_through_the_tokens_it_encodes_to(ar):
    image, _ = matching_scene(parse_prompt("two green triangles"), 1, ar.resolution)
    from_image = families.likelihood(ar, "two green triangles", "image", image=to_uint8(image)[0])
    from_scene = families.likelihood(ar, "two green triangles", "scene", scene_seed=1)
    assert from_image.total_bits == pytest.approx(from_scene.total_bits)
    assert from_image.scene_caption is None and np.array_equal(from_image.picture, to_uint8(image)[0])
    unconditional = families.likelihood(ar, "", "tokens", tokens=from_image.tokens.flatten().tolist())
    assert unconditional.total_bits == pytest.approx(from_image.unconditional_bits)


@pytest.mark.parametrize(("kwargs", "field", "kind"), [
    ({"source": "tokens", "tokens": [0] * 3}, "tokens", "token_count"),
    ({"source": "tokens", "tokens": [64] * 64}, "tokens", "token_range"),
    ({"source": "image", "image": np.zeros((16, 16, 3), np.uint8)}, "png_base64", "image_size"),
])
def test_what_the_model_cannot_take_names_its_field(ar, kwargs, field, kind):
    with pytest.raises(families.Unfit) as refused:
        families.likelihood(ar, "a red circle", **kwargs)
    assert (refused.value.field, refused.value.kind) == (field, kind)


def test_a_word_the_caption_encoder_never_learned_is_refused(tmp_path):
    old = TokenFamily.load(write_tiny_token_models(tmp_path, vocab_size=20), "autoregressive", "cpu")
    with pytest.raises(PromptNotLearned):
        families.likelihood(old, "a red circle left of a blue square", "scene")


# ------------------------------------------------------------------------------------------ the judge, the sizes


def test_a_drawn_scene_is_judged_as_its_prompt(ar):
    image, _ = matching_scene(parse_prompt("a small blue square at the bottom"), 0, 64)
    verdict = families.judge_image(to_uint8(image)[0], "a small blue square at the bottom")
    assert verdict.adherence["all"] == 1.0 and verdict.judged["shape"] == "square"
    pair, _ = matching_scene(parse_prompt("a red circle above a blue square"), 0, 64)
    verdict = families.judge_image(to_uint8(pair)[0], "a red circle above a blue square")
    assert verdict.adherence["relation"] == 1.0 and len(verdict.judged["objects"]) == 2


def test_sizes_and_sequential_forwards(ar, pipeline):
    size = families.token_family_size(ar)
    assert (size.grid, size.tokens, size.codebook_size, size.resolution) == (8, 64, 64, 32)
    dit = families.diffusion_size(pipeline)
    cfg = pipeline.dit.config
    assert dit.tokens == (cfg.latent_size // cfg.patch) ** 2 and dit.codebook_size is None
    assert families.forwards_per_image("autoregressive", 256, 8, 20) == 256
    assert families.forwards_per_image("masked", 256, 8, 20) == 8
    assert families.forwards_per_image("masked", 4, 8, 20) == 4  # never more rounds than tokens
    assert families.forwards_per_image("diffusion", 256, 8, 20) == 20


def test_the_page_answers_come_from_the_functions():
    context = families.page_context()
    assert context["quiz_rounds"] == 256 / 8 and context["quiz_uniform_bits"] == 256 * 9


# ------------------------------------------------------------------------------------------ the codebook


def test_the_codebook_panel_on_the_tiny_models(ar, pipeline):
    c = families.measure_codebook(ar, pipeline, n=8)
    assert c.codebook_size == 64 and c.codes_used + c.dead_codes == 64 and c.usage == c.codes_used / 64
    assert 1.0 <= c.perplexity <= c.codes_used + 1e-9
    assert (c.grid, c.tokens, c.resolution, c.scenes) == (8, 64, 32, 8)
    for ceiling in (c.tokenizer, c.vae):
        assert math.isfinite(ceiling.psnr_db) and 0.0 <= ceiling.judge_all <= 1.0 and 0.0 <= ceiling.pair_judge_all <= 1
    assert (c.vae_downsample_factor, c.vae_resolution) == (8, 32)


def test_the_codebook_is_measured_once_per_models_until_asked_again(ar, pipeline, monkeypatch):
    calls = []

    def measure(generator, pipe):
        calls.append(generator)
        ceiling = families.Ceiling(30.0, 29.0, 0.9, 0.8)
        return families.Codebook(64, 8, 8, 64, 4, 32, 10, 54, 5.0, 10 / 64, ceiling, ceiling, 8, 4, 32, 8, 0, 0.1,
                                 "now")

    monkeypatch.setattr(families, "_codebooks", families.MeasuredOnce())
    monkeypatch.setattr(families, "measure_codebook", measure)
    first = families.codebook_once(ar, pipeline, ("a", "b"))
    again = families.codebook_once(ar, pipeline, ("a", "b"))
    fresh = families.codebook_once(ar, pipeline, ("a", "b"), remeasure=True)
    other = families.codebook_once(ar, pipeline, ("c", "b"))
    assert (first.cached, again.cached, fresh.cached, other.cached) == (False, True, False, False)
    assert len(calls) == 3
