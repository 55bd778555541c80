"""Frame coherence (EQ MM3.6 + a toy joint diffusion): the patch count, the costs, the sampler, the endpoint."""

import numpy as np
import pytest

from app.instruments.coherence import (
    REGIMES,
    GaussianPrior,
    coherence_report,
    cost_curve,
    ddim_sample,
    expected_jump,
    factorised_cost,
    joint_cost,
    joint_covariance,
    mean_jump,
    page_context,
    prior_covariance,
    regime,
    sample_path,
    spacetime_tokens,
)

URL = "/api/v1/instruments/coherence"
SEEDS = range(12)


# ---------------------------------------------------------------- EQ MM3.6 and the attention bill


@pytest.mark.parametrize(
    ("t", "h", "w", "pt", "ph", "pw"), [(16, 32, 32, 2, 2, 2), (8, 64, 48, 1, 4, 2), (64, 256, 256, 4, 16, 16)]
)
def test_patch_count_formula(t, h, w, pt, ph, pw):
    tok = spacetime_tokens(t, h, w, pt, ph, pw)
    assert tok.total == (t // pt) * (h // ph) * (w // pw)
    assert (tok.temporal, tok.spatial) == (t // pt, (h // ph) * (w // pw))
    assert joint_cost(tok) == tok.total**2


def test_quiz_example_is_2048_tokens():
    assert spacetime_tokens(16, 32, 32, 2, 2, 2).total == 2048
    assert page_context()["quiz_tokens"] == 2048 and page_context()["quiz_doubling"] == 4


@pytest.mark.parametrize("frames", [2, 4, 8, 16, 32])
def test_doubling_frames_quadruples_joint_cost(frames):
    a = joint_cost(spacetime_tokens(frames, 32, 32, 1, 2, 2))
    b = joint_cost(spacetime_tokens(2 * frames, 32, 32, 1, 2, 2))
    assert b == 4 * a


def test_factorised_cost_formula_and_saving():
    tok = spacetime_tokens(16, 32, 32, 1, 2, 2)  # T = 16, S = 256
    assert factorised_cost(tok) == 16 * 256**2 + 256 * 16**2
    assert factorised_cost(tok) < joint_cost(tok)
    # doubling the clip roughly doubles the factorised cost while S dominates
    double = factorised_cost(spacetime_tokens(32, 32, 32, 1, 2, 2))
    assert 2 <= double / factorised_cost(tok) < 2.2


def test_cost_curve_frames_respect_p_t():
    curve = cost_curve(32, 32, 4, 2, 2)
    assert [p.frames for p in curve] == list(range(4, 65, 4))
    assert all(p.joint == p.tokens**2 for p in curve)


def test_bad_patch_sizes_raise():
    with pytest.raises(ValueError):
        spacetime_tokens(8, 32, 32, 3, 2, 2)


# ---------------------------------------------------------------- the prior and the denoiser


def test_prior_keeps_the_per_frame_spread_and_only_couples_frames():
    joint = joint_covariance(8)
    for c in (0.0, 0.4, 1.0):
        cov = prior_covariance(8, c)
        assert np.allclose(np.diag(cov), np.diag(joint))
        assert np.linalg.eigvalsh(cov).min() > 0
    indep = prior_covariance(8, 0.0)
    assert np.allclose(indep, np.diag(np.diag(indep)))
    assert np.allclose(prior_covariance(8, 1.0), joint)


def test_posterior_mean_matches_the_gaussian_formula():
    rng = np.random.default_rng(1)
    cov, mean = prior_covariance(6, 0.7), rng.normal(size=(6, 2))
    x_t, abar = rng.normal(size=(6, 2)), 0.3
    a, b2 = np.sqrt(abar), 1 - abar
    want = mean + a * cov @ np.linalg.solve(abar * cov + b2 * np.eye(6), x_t - a * mean)
    assert np.allclose(GaussianPrior(mean, cov).x0_hat(x_t, abar), want)


def test_ddim_draws_have_the_prior_covariance():
    cov = prior_covariance(6, 1.0)
    scale = np.sqrt(np.diag(cov).mean())
    prior = GaussianPrior(np.zeros((6, 1)), cov / scale**2)
    noise = np.random.default_rng(0).standard_normal((6, 20_000))  # 20,000 independent paths side by side
    draws = ddim_sample(prior, noise) * scale  # (6, 20000)
    assert np.abs(np.cov(draws) - cov).max() < 0.07 * cov.max()  # 100 DDIM steps keep about 97% of the variance


# ---------------------------------------------------------------- the sampled paths


def test_same_seed_same_path_other_seed_other_path():
    a, b = sample_path(8, 0.6, 7), sample_path(8, 0.6, 7)
    assert np.array_equal(a, b)
    assert not np.allclose(a, sample_path(8, 0.6, 8))


def test_paths_stay_in_the_frame():
    for seed in SEEDS:
        path = sample_path(16, 0.0, seed)
        assert path.shape == (16, 2) and path.min() >= 0 and path.max() <= 1


@pytest.mark.parametrize("frames", [4, 8, 32])
def test_mean_jump_falls_monotonically_with_coherence(frames):
    grid = [0.0, 0.25, 0.5, 0.75, 0.9, 1.0]
    jumps = [np.mean([mean_jump(sample_path(frames, c, s)) for s in SEEDS]) for c in grid]
    assert all(b < a for a, b in zip(jumps, jumps[1:])), jumps
    assert jumps[-1] < jumps[0] / 5


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_joint_jump_is_far_below_independent_for_every_seed(seed):
    assert mean_jump(sample_path(8, 1.0, seed)) < 0.4 * mean_jump(sample_path(8, 0.0, seed))


def test_sampled_jump_matches_the_exact_expectation():
    for c in (0.0, 0.8, 1.0):
        sampled = np.mean([mean_jump(sample_path(8, c, s)) for s in range(40)])
        assert sampled == pytest.approx(expected_jump(8, c), rel=0.2)


def test_joint_paths_are_straight_lines():
    k = np.arange(16)
    for seed in SEEDS:
        path = sample_path(16, 1.0, seed)
        fit = np.polyfit(k, path, 1)  # (2, 2)
        residual = path - (np.outer(k, fit[0]) + fit[1])
        assert np.sqrt((residual**2).mean()) < 0.02


def test_expected_jump_is_monotone_and_regimes_span_it():
    grid = np.linspace(0, 1, 21)
    jumps = [expected_jump(8, c) for c in grid]
    assert all(b < a for a, b in zip(jumps, jumps[1:]))
    assert regime(jumps[0]) == "flicker" and regime(jumps[-1]) == "smooth"
    assert [name for name, _ in REGIMES] == ["smooth", "mostly coherent", "jittery", "flicker"]
    assert {regime(j) for j in jumps} == {name for name, _ in REGIMES}


def test_regime_thresholds():
    assert regime(0.0) == "smooth" and regime(0.059) == "smooth"
    assert regime(0.06) == "mostly coherent" and regime(0.12) == "jittery" and regime(0.19) == "flicker"


def test_report_jump_in_cells_scales_with_the_latent():
    r = coherence_report(0.0, 8, 3, 1, 2, 2, 32, 32)
    assert r.mean_jump_cells == pytest.approx(32 * r.mean_jump)
    assert r.regime == regime(r.mean_jump)


# ---------------------------------------------------------------- the endpoint


def test_endpoint_defaults(client):
    r = client.get(URL).json()
    assert r["frames"] == 8 and len(r["x"]) == 8 and len(r["y"]) == 8
    assert all(0 <= v <= 1 for v in r["x"] + r["y"])
    assert r["tokens"] == {"temporal": 8, "spatial": 256, "total": 2048}
    assert r["joint_cost"] == 2048**2
    assert r["factorised_cost"] == 8 * 256**2 + 256 * 8**2
    assert r["regime"] in {"smooth", "mostly coherent", "jittery", "flicker"}
    assert [p["frames"] for p in r["cost_curve"]] == list(range(2, 65))
    assert r["regimes"][-1] == {"name": "flicker", "upper": None}
    assert len(r["jump_curve"]) == 21 and r["jump_curve"][0]["coherence"] == 0


def test_endpoint_is_deterministic_and_coherence_matters(client):
    params = {"coherence": 1, "frames": 16, "seed": 5}
    a, b = client.get(URL, params=params).json(), client.get(URL, params=params).json()
    assert a == b
    flicker = client.get(URL, params={**params, "coherence": 0}).json()
    assert a["mean_jump"] < flicker["mean_jump"] / 3
    assert a["regime"] == "smooth" and flicker["regime"] == "flicker"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"coherence": -0.1}, "coherence"),
        ({"coherence": 1.5}, "coherence"),
        ({"coherence": "nan"}, "coherence"),
        ({"coherence": "high"}, "coherence"),
        ({"frames": 1}, "frames"),
        ({"frames": 65}, "frames"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"latent_height": 0}, "latent_height"),
        ({"latent_width": 257}, "latent_width"),
        ({"p_t": 3}, "p_t"),
        ({"p_t": 17}, "p_t"),
        ({"p_h": 3}, "p_h"),
        ({"latent_width": 30, "p_w": 4}, "p_w"),
        ({"p_w": 2.5}, "p_w"),
        ({"extra": 1}, "extra"),
    ],
)
def test_endpoint_rejects_bad_input_naming_the_field(client, params, field):
    r = client.get(URL, params=params)
    assert r.status_code == 422
    assert [d["loc"][-1] for d in r.json()["detail"]] == [field]


def test_endpoint_largest_request(client):
    params = {"frames": 64, "latent_height": 256, "latent_width": 256, "p_t": 1, "p_h": 1, "p_w": 1, "coherence": 0.5}
    r = client.get(URL, params=params)
    assert r.status_code == 200
    assert r.json()["joint_cost"] == (64 * 256 * 256) ** 2


def test_the_walk_in_one_product_is_the_step_by_step_walk():
    from app.instruments.coherence import ddim_gain, ddim_sample

    for frames, c in ((2, 0.0), (8, 0.5), (16, 1.0), (64, 0.37)):
        cov = prior_covariance(frames, c)
        prior = GaussianPrior(np.zeros((frames, 2)), cov)
        noise = np.random.default_rng(frames).standard_normal((frames, 2))
        stepwise = ddim_sample(prior, noise)
        at_once = prior.u @ (ddim_gain(prior.lam)[:, None] * (prior.u.T @ noise))
        np.testing.assert_allclose(at_once, stepwise, rtol=1e-12, atol=1e-14)
