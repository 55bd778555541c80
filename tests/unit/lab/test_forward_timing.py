"""The latent-vs-pixel forward timing: grids, token counts, the budget and the per-process cache."""

import time

import pytest

from app.lab import forward_timing, once
from app.lab.once import MeasuredOnce
from app.pipelines.image import Pipeline


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir) -> Pipeline:
    return Pipeline.load(tiny_model_dir, "cpu")


def test_the_real_latent_against_its_architecture_on_pixels(pipeline, monkeypatch):
    monkeypatch.setattr(forward_timing, "FULL_FORWARD_MAX_TOKENS", 256)  # patch 1 (1024 tokens) is then estimated
    m = forward_timing.measure(pipeline, card={"evaluation": {"vae": {"psnr_db_mean": 41.5}}})
    assert (m.latent.grid, m.latent.tokens, m.latent.weights, m.latent.estimated) == ((4, 4, 4), 16, "trained", False)
    assert [(p.patch, p.tokens, p.grid, p.estimated) for p in m.pixel] == [(2, 256, (32, 32, 3), False),
                                                                        (1, 1024, (32, 32, 3), True)]
    assert m.ratio == 48.0 and (m.f, m.latent_channels) == (8, 4)
    assert (m.psnr_db, m.psnr_source) == (41.5, "the model card's evaluation")
    assert 1 <= len(m.latent.runs_ms) <= forward_timing.LATENT_REPEATS
    assert m.dit["parameters"] == sum(p.numel() for p in pipeline.dit.parameters())


def test_the_budget_bounds_the_repeats():
    calls = []
    runs = forward_timing._timed(lambda: (calls.append(1), time.sleep(0.02)), repeats=50,
                                 deadline=time.perf_counter() + 0.1)
    assert 1 <= len(runs) <= 6 and all(r >= 20 for r in runs)
    assert len(forward_timing._timed(lambda: None, repeats=3, deadline=time.perf_counter() - 1)) == 1  # at least one


def test_without_a_card_the_psnr_comes_from_the_weights_or_is_absent(pipeline):
    psnr, source = forward_timing.vae_psnr(pipeline, None)
    assert (psnr, source) == (None, "not measured")  # the tiny test model was never validated
    pipeline.metadata["vae"]["validation"] = {"psnr_db": 44.0}
    try:
        assert forward_timing.vae_psnr(pipeline, {"evaluation": {}}) == (44.0, "the VAE's training validation")
    finally:
        del pipeline.metadata["vae"]["validation"]


def test_measured_once_per_model(pipeline, monkeypatch):
    calls = []
    monkeypatch.setattr(forward_timing, "measure", lambda p, card=None: calls.append(1) or "result")
    monkeypatch.setattr(forward_timing, "_measured", MeasuredOnce())
    monkeypatch.setattr(once, "replace", lambda r, cached: (r, cached))
    assert forward_timing.measured_once(pipeline, "abc") == "result"
    assert forward_timing.measured_once(pipeline, "abc") == ("result", True)
    assert forward_timing.measured_once(pipeline, "other") == "result" and len(calls) == 2
