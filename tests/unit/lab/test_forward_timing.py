"""The latent-vs-pixel forward timing: grids, token counts, the estimate's basis, the savings and the cache."""

import pytest

from app.lab import forward_timing, once, timing
from app.lab.once import MeasuredOnce
from app.pipelines.image import Pipeline


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir) -> Pipeline:
    return Pipeline.load(tiny_model_dir, "cpu")


def test_the_real_latent_against_its_architecture_on_pixels(pipeline, monkeypatch):
    monkeypatch.setattr(forward_timing, "FULL_FORWARD_MAX_TOKENS", 256)  # patch 1 (1024 tokens) is then estimated
    m = forward_timing.measure(pipeline, card={"evaluation": {"vae": {"psnr_db_mean": 41.5}}}, budget_s=0.5)
    assert (m.latent.grid, m.latent.tokens, m.latent.weights, m.latent.estimated) == ((4, 4, 4), 16, "trained", False)
    assert [(p.patch, p.tokens, p.grid, p.estimated) for p in m.pixel] == [(2, 256, (32, 32, 3), False),
                                                                        (1, 1024, (32, 32, 3), True)]
    depth = pipeline.dit.config.depth
    assert m.pixel[1].basis.startswith(f"one transformer block timed on 1,024 tokens, × {depth} blocks")
    assert m.latent.basis is None and m.pixel[0].basis is None
    assert m.ratio == 48.0 and (m.f, m.latent_channels, m.batch) == (8, 4, 2)
    assert (m.psnr_db, m.psnr_source) == (41.5, "the model card's evaluation")
    rounds = m.conditions.rounds
    assert timing.MIN_ROUNDS <= rounds <= forward_timing.ROUNDS
    assert all(len(f.runs_ms) == rounds and f.low_ms <= f.median_ms <= f.high_ms for f in [m.latent, *m.pixel])
    assert [(s.slower, s.faster) for s in m.savings] == [("pixels, patch 2", "latent"), ("pixels, patch 1", "latent")]
    assert m.savings[0].ratio == pytest.approx(m.pixel[0].median_ms / m.latent.median_ms)
    assert m.dit["parameters"] == sum(p.numel() for p in pipeline.dit.parameters())


def test_without_a_card_the_psnr_comes_from_the_weights_or_is_absent(pipeline):
    psnr, source = forward_timing.vae_psnr(pipeline, None)
    assert (psnr, source) == (None, "not measured")  # the tiny test model was never validated
    pipeline.metadata["vae"]["validation"] = {"psnr_db": 44.0}
    try:
        assert forward_timing.vae_psnr(pipeline, {"evaluation": {}}) == (44.0, "the VAE's training validation")
    finally:
        del pipeline.metadata["vae"]["validation"]


def test_measured_once_per_model_until_asked_again(pipeline, monkeypatch):
    calls = []
    monkeypatch.setattr(forward_timing, "measure", lambda p, card=None, beside=None: calls.append(1) or len(calls))
    monkeypatch.setattr(forward_timing, "_measured", MeasuredOnce())
    monkeypatch.setattr(once, "replace", lambda r, cached: (r, cached))
    assert forward_timing.measured_once(pipeline, "abc") == 1
    assert forward_timing.measured_once(pipeline, "abc") == (1, True)
    assert forward_timing.measured_once(pipeline, "other") == 2
    assert forward_timing.measured_once(pipeline, "abc", remeasure=True) == 3
    assert forward_timing.measured_once(pipeline, "abc") == (3, True) and len(calls) == 3
