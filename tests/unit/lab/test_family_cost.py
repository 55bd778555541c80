"""The cost against N (app/lab/family_cost.py): the verdict on synthetic times, and the measurement's shape on the
tiny models."""

import math

import pytest

from app.lab import family_cost
from app.lab.once import MeasuredOnce
from app.lab.timing import MIN_ROUNDS, Conditions
from app.pipelines.image import Pipeline
from app.pipelines.tokens import TokenFamily

pytestmark = pytest.mark.usefixtures("one_thread")
N = (16, 64, 256, 1024)


@pytest.mark.parametrize(("times", "exponent", "verdict"), [
    ([0.9 * n for n in N], 1.0, "roughly linear"),
    ([3.0 * n ** 1.15 for n in N], 1.15, "roughly linear"),
    ([0.01 * n ** 2 for n in N], 2.0, "faster than linear"),
    ([5.0 * n ** 0.5 for n in N], 0.5, "slower than linear"),
])
def test_the_verdict_is_read_from_the_fitted_exponent(times, exponent, verdict):
    g = family_cost.growth(N, times)
    assert g.exponent == pytest.approx(exponent, abs=1e-9) and g.verdict == verdict
    assert g.text.startswith(f"{verdict}: time per image grew as N^{exponent:.2f}")
    assert f"{times[-1] / times[0]:.1f}x the time for 64x the tokens" in g.text


def test_a_fixed_cost_beside_a_linear_one_bends_the_curve_below_linear():
    g = family_cost.growth(N, [200.0 + 0.5 * n for n in N])  # a cost per image that does not grow with N
    assert g.exponent < 0.8 and g.verdict == "slower than linear" and "time per token fell" in g.text


@pytest.fixture(scope="module")
def models(tiny_model_dir):
    return Pipeline.load(tiny_model_dir, "cpu"), TokenFamily.load(tiny_model_dir, "autoregressive", "cpu")


def test_the_three_samplers_at_every_n(models, monkeypatch):
    pipeline, ar = models
    monkeypatch.setattr(family_cost, "FULL_DIFFUSION_MAX_TOKENS", 16)  # N = 64 diffusion is then estimated
    m = family_cost.measure(pipeline, {"autoregressive": ar.config}, {"masked": "masked model not loaded: test"},
                            repeats=3, budget_s=0.1, counts=(4, 16, 64))  # small grids: a fast test
    assert [c.family for c in m.curves] == ["autoregressive", "masked", "diffusion"]
    forwards = {c.family: [p.forwards for p in c.points] for c in m.curves}
    assert forwards == {"autoregressive": [4, 16, 64], "masked": [4, 8, 8], "diffusion": [20, 20, 20]}
    assert m.curves[0].forwards_exponent == pytest.approx(1.0)
    assert m.curves[2].forwards_exponent == pytest.approx(0.0)
    assert m.conditions.rounds == MIN_ROUNDS
    for curve in m.curves:
        assert [p.tokens for p in curve.points] == [4, 16, 64] and [p.grid for p in curve.points] == [2, 4, 8]
        assert all(len(p.runs_ms) == MIN_ROUNDS and p.low_ms <= p.median_ms <= p.high_ms for p in curve.points)
        assert all(p.per_forward_ms == pytest.approx(p.median_ms / p.forwards) for p in curve.points)
        assert curve.local_exponents[0] is None and len(curve.local_exponents) == 3 and math.isfinite(curve.exponent)
    estimated = [(c.family, p.tokens) for c in m.curves for p in c.points if p.estimated]
    assert estimated == [("diffusion", 64)]
    assert m.curves[2].points[2].basis.startswith("one sampler step (a guided forward on 64 tokens) timed, x 20")
    ar_arch, masked_arch, dit_arch = (c.architecture for c in m.curves)
    assert ar_arch.served and (ar_arch.width, ar_arch.depth) == (ar.config.width, ar.config.depth)
    assert not masked_arch.served and masked_arch.note == ("masked model not loaded: test; the served autoregressive "
                                                           "model's size is timed")
    assert dit_arch.served and dit_arch.width == pipeline.dit.config.width
    assert m.autoregressive.exponent == pytest.approx(m.curves[0].exponent)


def test_without_token_models_the_trainers_preset_is_timed():
    cfg, arch = family_cost.token_architecture("masked", {}, {})
    assert not cfg.causal and not arch.served and arch.note.endswith("the trainers' default size (small) is timed")
    cfg, arch = family_cost.token_architecture("autoregressive", {}, {})
    assert cfg.causal and arch.note.startswith("the autoregressive model is not loaded")


def test_measured_once_per_models_and_repeats(models, monkeypatch):
    pipeline, _ = models
    calls = []
    monkeypatch.setattr(family_cost, "_measured", MeasuredOnce())
    monkeypatch.setattr(family_cost, "measure", lambda *a, **k: calls.append(a) or _result())
    first = family_cost.measured_once(pipeline, {}, {}, ("x",), repeats=3)
    again = family_cost.measured_once(pipeline, {}, {}, ("x",), repeats=3)
    more = family_cost.measured_once(pipeline, {}, {}, ("x",), repeats=5)
    fresh = family_cost.measured_once(pipeline, {}, {}, ("x",), repeats=3, remeasure=True)
    assert [r.cached for r in (first, again, more, fresh)] == [False, True, False, False] and len(calls) == 3


def _result():
    conditions = Conditions(3, "cpu", 0.0, 0.0, 2, 0, False, [], 0.25, 1.0)
    growth = family_cost.growth(N, [float(n) for n in N])
    return family_cost.FamilyCost([], growth, conditions, 3, 8, 20, "dpmpp_2m", 3.0, "cpu", 1, 1.0, "now")
