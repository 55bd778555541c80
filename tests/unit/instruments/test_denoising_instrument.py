"""Denoising walk (EQ MM3.1-3.2): the chapter's first snippet, reproduced exactly, and its endpoint."""

import contextlib
import io

import numpy as np
import pytest

from app.instruments import denoising as dn

# The chapter's first snippet, verbatim (§3.2). The tests run it to get the reference numbers.
SNIPPET = '''
# Toy latent diffusion: denoise a 2D latent toward a target (EQ MM3.1-3.2)
import numpy as np
rng = np.random.default_rng(0)

x0 = np.array([1.5, -0.8])                 # the "clean" latent we want to recover
T  = 40
betas = np.linspace(1e-3, 0.08, T)         # noise schedule
abar  = np.cumprod(1 - betas)              # signal fraction at each step (EQ MM3.1)

# An ORACLE denoiser: a real net learns eps_theta; here we know the true noise.
xt = rng.normal(0, 1, 2)                   # start from pure noise  x_T ~ N(0,I)
for t in range(T - 1, -1, -1):
    eps_hat = (xt - np.sqrt(abar[t]) * x0) / np.sqrt(1 - abar[t])   # implied noise
    x0_hat  = (xt - np.sqrt(1 - abar[t]) * eps_hat) / np.sqrt(abar[t])
    a_prev  = abar[t - 1] if t > 0 else 1.0
    xt = np.sqrt(a_prev) * x0_hat + np.sqrt(1 - a_prev) * rng.normal(0, 1, 2) * (t > 0)

print("target latent  x0   :", x0.round(3))
print("recovered      x_hat:", xt.round(3))
print("L2 error            :", float(np.linalg.norm(xt - x0).round(4)))
print("signal fraction abar: start", round(float(abar[-1]),3),
      "-> end", round(float(abar[0]),3))
'''


def run_snippet(x0=(1.5, -0.8), T=40, beta_start=1e-3, beta_end=0.08, seed=0):
    """Run the snippet (edited only in its four settings); return its printed lines and its namespace."""
    source = (
        SNIPPET.replace("default_rng(0)", f"default_rng({seed})")
        .replace("np.array([1.5, -0.8])", f"np.array([{x0[0]!r}, {x0[1]!r}])")
        .replace("T  = 40", f"T  = {T}")
        .replace("np.linspace(1e-3, 0.08, T)", f"np.linspace({beta_start!r}, {beta_end!r}, T)")
    )
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "snippet", "exec"), namespace)  # noqa: S102 - the chapter's own code
    return out.getvalue().splitlines(), namespace


# ---------------------------------------------------------------- the snippet, reproduced


def test_defaults_print_exactly_what_the_snippet_prints():
    lines, ns = run_snippet()
    walk = dn.denoising_walk()
    assert dn.snippet_printout(walk) == lines
    assert np.array_equal(walk.recovered, ns["xt"])
    assert np.array_equal(walk.abar, ns["abar"])


@pytest.mark.parametrize(
    "x0, T, beta_start, beta_end, seed",
    [((-2.0, 0.5), 7, 0.01, 0.3, 3), ((0.25, 2.75), 200, 1e-4, 0.02, 12345), ((1.5, -0.8), 2, 0.1, 0.5, 1)],
)
def test_other_settings_match_the_edited_snippet(x0, T, beta_start, beta_end, seed):
    lines, ns = run_snippet(x0, T, beta_start, beta_end, seed)
    walk = dn.denoising_walk(x0, T, beta_start, beta_end, seed)
    assert dn.snippet_printout(walk) == lines
    assert np.array_equal(walk.recovered, ns["xt"])
    assert np.array_equal(walk.x0_hat[-1], ns["x0_hat"])  # the last step's x0_hat


def test_trajectory_shapes_and_walk_order():
    walk = dn.denoising_walk(steps=12)
    assert walk.x_t.shape == (13, 2)
    assert walk.x0_hat.shape == walk.eps_hat.shape == (12, 2)
    assert walk.t.tolist() == list(range(11, -1, -1))
    assert walk.abar_start == walk.abar[11] and walk.abar_end == walk.abar[0]


def test_first_state_is_the_seeds_first_normal_draw():
    walk = dn.denoising_walk(seed=7)
    assert np.array_equal(walk.x_t[0], np.random.default_rng(7).normal(0, 1, 2))


def test_oracle_x0_hat_is_the_target_at_every_step_of_a_sane_schedule():
    walk = dn.denoising_walk((0.3, -2.2), 50, 1e-4, 0.05, 4)
    np.testing.assert_allclose(walk.x0_hat, np.tile(walk.x0, (50, 1)), atol=1e-12)
    assert walk.l2_error < 1e-12


def test_denoiser_error_lands_off_target_by_the_last_steps_mistake_alone():
    walk = dn.denoising_walk(steps=30, beta_start=0.05, beta_end=0.2, seed=2, eps_error=0.4)
    a0 = walk.abar[0]
    true_eps = (walk.x_t[-2] - np.sqrt(a0) * walk.x0) / np.sqrt(1 - a0)  # the noise really in the last input
    mistake = np.linalg.norm(walk.eps_hat[-1] - true_eps)
    assert walk.l2_error == pytest.approx(np.sqrt((1 - a0) / a0) * mistake, rel=1e-9)
    assert walk.l2_error > 0.01


def test_bigger_denoiser_error_means_bigger_final_error_on_average():
    def mean_error(eps_error):
        return np.mean([dn.denoising_walk(eps_error=eps_error, seed=s).l2_error for s in range(30)])

    assert 0 < mean_error(0.1) < mean_error(0.5) < mean_error(1.0)


def test_error_stream_leaves_the_walks_own_noise_untouched():
    clean, noisy = dn.denoising_walk(seed=5), dn.denoising_walk(seed=5, eps_error=0.2)
    assert np.array_equal(clean.x_t[0], noisy.x_t[0])


# ---------------------------------------------------------------- EQ MM3.1 pieces


def test_chapter_question_abar_036_gives_06_and_08():
    signal, noise = dn.forward_coefficients(0.36)
    assert signal == pytest.approx(0.6, abs=1e-12)
    assert noise == pytest.approx(0.8, abs=1e-12)


@pytest.mark.parametrize("abar", [0.0, 0.01, 0.36, 0.5, 0.99, 1.0])
def test_coefficients_preserve_variance(abar):
    signal, noise = dn.forward_coefficients(abar)
    assert signal**2 + noise**2 == pytest.approx(1.0, abs=1e-12)


def test_coefficients_reject_abar_outside_unit_interval():
    with pytest.raises(ValueError):
        dn.forward_coefficients(1.2)


def test_linear_schedule_matches_the_snippets_and_rejects_bad_betas():
    betas, abar = dn.linear_schedule(40, 1e-3, 0.08)
    np.testing.assert_array_equal(abar, np.cumprod(1 - np.linspace(1e-3, 0.08, 40)))
    assert np.all(np.diff(abar) < 0)
    with pytest.raises(ValueError):
        dn.linear_schedule(10, 0.0, 0.5)
    with pytest.raises(ValueError):
        dn.linear_schedule(0, 0.01, 0.02)


def test_forward_cloud_has_the_marginal_of_eq_mm31():
    x0 = np.array([1.5, -0.8])
    cloud = dn.forward_cloud(x0, 0.36, seed=0, n=20_000)
    np.testing.assert_allclose(cloud.mean(axis=0), 0.6 * x0, atol=0.03)
    np.testing.assert_allclose(cloud.std(axis=0), [0.8, 0.8], rtol=0.03)


def test_prior_kl_matches_the_general_gaussian_formula():
    x0, abar = np.array([1.5, -0.8]), 0.19
    mean, cov = np.sqrt(abar) * x0, (1 - abar) * np.eye(2)
    expected = 0.5 * (np.trace(cov) + mean @ mean - 2 - np.log(np.linalg.det(cov)))
    assert dn.prior_mismatch_kl(x0, abar) == pytest.approx(expected, rel=1e-12)
    assert dn.prior_mismatch_kl(x0, 0.0) == pytest.approx(0.0, abs=1e-12)


def test_gentler_schedule_ends_farther_from_pure_noise():
    kls = [dn.denoising_instrument(beta_end=b)["prior_kl"] for b in (0.2, 0.08, 0.01)]
    assert kls[0] < kls[1] < kls[2]


def test_nearest_step():
    assert dn.nearest_step(np.array([0.9, 0.5, 0.1]), 0.45) == 1


def test_page_context_answers_the_check_yourself_question():
    assert dn.page_context()["quiz_signal"] == pytest.approx(0.6)


# ---------------------------------------------------------------- the endpoint

URL = "/api/v1/instruments/denoising"


def test_endpoint_defaults_are_the_snippet(client):
    lines, ns = run_snippet()
    body = client.get(URL).json()
    assert body["printout"] == lines
    assert body["target"] == [1.5, -0.8]
    assert body["recovered"] == ns["xt"].tolist()
    assert body["abar_start"] == float(ns["abar"][-1]) and body["abar_end"] == float(ns["abar"][0])
    assert len(body["walk"]["x_t"]) == 41 and len(body["walk"]["x0_hat"]) == 40
    assert body["schedule"]["abar"] == ns["abar"].tolist()
    assert body["forward"]["sqrt_abar"] == pytest.approx(0.6)
    assert body["forward"]["sqrt_one_minus_abar"] == pytest.approx(0.8)
    assert len(body["forward"]["cloud"]) == dn.CLOUD_POINTS


def test_endpoint_coefficients_per_step(client):
    s = client.get(URL, params={"steps": 25, "beta_start": 0.002, "beta_end": 0.1}).json()["schedule"]
    np.testing.assert_allclose(np.square(s["sqrt_abar"]) + np.square(s["sqrt_one_minus_abar"]), 1.0, atol=1e-12)
    assert s["t"] == list(range(25))


def test_endpoint_extreme_settings_stay_finite(client):
    params = {"steps": 1000, "beta_start": 0.49, "beta_end": 0.5, "eps_error": 1, "target_x": 3, "target_y": -3}
    response = client.get(URL, params=params)
    assert response.status_code == 200
    body = response.json()
    assert np.all(np.isfinite(body["walk"]["x0_hat"])) and np.isfinite(body["l2_error"])


@pytest.mark.parametrize(
    "params, field",
    [
        ({"target_x": 3.5}, "target_x"),
        ({"target_y": -3.01}, "target_y"),
        ({"target_x": "nan"}, "target_x"),
        ({"steps": 1}, "steps"),
        ({"steps": 1001}, "steps"),
        ({"steps": "forty"}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"beta_start": 0}, "beta_start"),
        ({"beta_end": 0.6}, "beta_end"),
        ({"beta_start": 0.1, "beta_end": 0.05}, "beta_end"),
        ({"beta_start": 0.08, "beta_end": 0.08}, "beta_end"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"eps_error": 1.5}, "eps_error"),
        ({"signal_fraction": -0.1}, "signal_fraction"),
        ({"T": 40}, "T"),
    ],
)
def test_endpoint_rejects_bad_input_naming_the_field(client, params, field):
    response = client.get(URL, params=params)
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [["query", field]]


def test_endpoint_is_documented(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"][URL]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"target_x", "target_y", "steps", "beta_start", "beta_end", "seed"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/DenoisingResult")
