"""Guidance scale (INSTRUMENT MM3.2, EQ MM3.4): the exact toy diffusion, its measurements and its endpoint."""

import contextlib
import io
import time

import numpy as np
import pytest

from app.instruments import guidance as g

# The chapter's CFG snippet, verbatim (§3.3); plot_xy is the chapter's in-browser plotting helper.
SNIPPET = '''
# Classifier-free guidance: interpolate/extrapolate cond vs uncond (EQ MM3.4)
import numpy as np

eps_uncond = np.array([0.20, -0.10, 0.05])    # prediction with prompt dropped
eps_cond   = np.array([0.50,  0.30, 0.05])    # prediction with the prompt
direction  = eps_cond - eps_uncond            # the "conditional direction"

print(" s     guided eps              ||guided||   vs cond")
for s in [0.0, 1.0, 3.0, 7.5, 15.0]:
    guided = eps_uncond + s * direction       # EQ MM3.4
    print(f"{s:5.1f}  {np.round(guided,3)}   {np.linalg.norm(guided):7.3f}")

print("\\ns=0 -> ignores prompt (uncond); s=1 -> plain conditional;")
print("s>1 EXTRAPOLATES past the conditional sample: stronger prompt adherence,")
print("but the norm keeps growing -> the oversaturation you see at high CFG.")
plot_xy([0,1,3,7.5,15],
        [np.linalg.norm(eps_uncond + s*direction) for s in [0,1,3,7.5,15]])
'''

RED = g.CLASSES.index("red")


def run_snippet():
    """Run the snippet; return its table lines and what it handed to plot_xy."""
    plotted, out = {}, io.StringIO()
    namespace = {"plot_xy": lambda xs, ys: plotted.update(xs=list(xs), ys=[float(y) for y in ys])}
    with contextlib.redirect_stdout(out):
        exec(compile(SNIPPET, "snippet", "exec"), namespace)  # noqa: S102 - the chapter's own code
    return out.getvalue().splitlines()[1:6], plotted


# ---------------------------------------------------------------- EQ MM3.4 itself


def test_worked_example_020_050_at_75_gives_245():
    assert g.guided_estimate(0.20, 0.50, 7.5) == pytest.approx(2.45, abs=1e-12)


def test_scale_zero_and_one_give_back_the_two_estimates():
    u, c = np.array([0.2, -0.1]), np.array([0.5, 0.3])
    assert np.array_equal(g.guided_estimate(u, c, 0.0), u)
    np.testing.assert_allclose(g.guided_estimate(u, c, 1.0), c, atol=1e-15)


def test_cfg_table_matches_the_chapters_snippet():
    lines, plotted = run_snippet()
    rows = g.cfg_table(g.SNIPPET_EPS_UNCOND, g.SNIPPET_EPS_COND, g.SNIPPET_SCALES)
    mine = [f"{r['scale']:5.1f}  {np.round(np.array(r['guided']), 3)}   {r['norm']:7.3f}" for r in rows]
    assert mine == lines
    assert [r["scale"] for r in rows] == plotted["xs"]
    np.testing.assert_allclose([r["norm"] for r in rows], plotted["ys"], rtol=1e-12)


def test_snippet_panel_norm_grows_with_s_past_the_minimum():
    panel = g.snippet_panel(7.5)
    norms = panel["norm_curve"]["norm"]
    assert np.all(np.diff(norms) > 0)  # both estimates point the same way, so the norm only grows
    assert panel["current"]["guided"] == pytest.approx([2.45, 2.9, 0.05])


# ---------------------------------------------------------------- the exact noise predictor


def _log_density(x, abar, classes):
    """log p_t(x) of the noised mixture restricted to `classes` (equal weights), for finite differences."""
    var = abar * g.CLASS_STD**2 + 1 - abar
    d2 = np.sum((x[None, :] - np.sqrt(abar) * g.CLASS_MEANS[classes]) ** 2, axis=1)
    logs = -0.5 * d2 / var - np.log(2 * np.pi * var)
    return np.log(np.mean(np.exp(logs)))


@pytest.mark.parametrize("abar", [0.02, 0.3, 0.9, 0.999])
def test_noise_predictions_are_minus_sqrt_one_minus_abar_times_the_score(abar):
    x, h = np.array([0.7, 1.3]), 1e-5
    eps_u, eps_c = g.noise_predictions(x, abar, RED)
    for eps, classes in ((eps_u, list(range(len(g.CLASSES)))), (eps_c, [RED])):
        score = np.array([
            (_log_density(x + h * e, abar, classes) - _log_density(x - h * e, abar, classes)) / (2 * h)
            for e in np.eye(2)
        ])
        np.testing.assert_allclose(eps, -np.sqrt(1 - abar) * score, rtol=1e-5, atol=1e-7)


def test_noise_predictions_keep_the_batch_shape():
    eps_u, eps_c = g.noise_predictions(np.zeros((3, 5, 2)), 0.5, RED)
    assert eps_u.shape == eps_c.shape == (3, 5, 2)


def test_schedule_ends_at_nearly_pure_noise():
    assert g.ABAR[-1] < 1e-4
    assert g.sampler_timesteps().tolist()[0] == g.TRAIN_STEPS - 1 and g.sampler_timesteps()[-1] == 0


# ---------------------------------------------------------------- the sampler


def test_scale_zero_is_exactly_the_unconditional_sampler():
    guided = g.ddim_sample([0.0], RED, seed=3, samples=64)[0]
    uncond = g.ddim_sample([123.0], RED, seed=3, samples=64, eps_mode="uncond")[0]
    assert np.array_equal(guided, uncond)


def test_scale_one_is_the_conditional_sampler():
    guided = g.ddim_sample([1.0], RED, seed=3, samples=64)[0]
    cond = g.ddim_sample([123.0], RED, seed=3, samples=64, eps_mode="cond")[0]
    np.testing.assert_allclose(guided, cond, atol=1e-9)


def test_conditional_sampler_draws_the_prompts_blob():
    points = g.ddim_sample([1.0], RED, seed=0, samples=512, eps_mode="cond")[0]
    np.testing.assert_allclose(points.mean(axis=0), g.CLASS_MEANS[RED], atol=0.1)
    np.testing.assert_allclose(points.std(axis=0), [g.CLASS_STD] * 2, rtol=0.1)


def test_unconditional_sampler_covers_every_class_about_equally():
    points = g.ddim_sample([0.0], RED, seed=0, samples=512)[0]
    nearest = np.argmin(np.sum((points[:, None] - g.CLASS_MEANS) ** 2, axis=-1), axis=1)
    shares = np.bincount(nearest, minlength=len(g.CLASSES)) / len(points)
    np.testing.assert_allclose(shares, 1 / len(g.CLASSES), atol=0.06)


def test_sampler_is_deterministic_per_seed():
    a = g.ddim_sample([2.0, 7.5], RED, seed=9, samples=32)
    assert np.array_equal(a, g.ddim_sample([2.0, 7.5], RED, seed=9, samples=32))
    assert not np.array_equal(a, g.ddim_sample([2.0, 7.5], RED, seed=10, samples=32))


def test_sampler_rejects_an_unknown_mode():
    with pytest.raises(ValueError):
        g.ddim_sample([1.0], RED, 0, 16, eps_mode="both")


# ---------------------------------------------------------------- measurements


def test_adherence_diversity_and_off_cloud_on_known_points():
    at_means = np.repeat(g.CLASS_MEANS, 2, axis=0)  # two points on every class mean
    assert g.adherence(at_means, RED) == pytest.approx(1 / len(g.CLASSES))
    assert g.diversity(np.array([[0.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)
    assert g.beyond_data(at_means) == 0.0
    assert g.beyond_data(np.array([[0.0, 20.0], [0.0, 2.0]])) == 0.5


def test_real_data_is_almost_never_off_the_cloud():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(g.CLASSES), 60_000)
    data = g.CLASS_MEANS[labels] + g.CLASS_STD * rng.normal(size=(60_000, 2))
    assert g.beyond_data(data) < 0.001 * 1.3


@pytest.mark.parametrize("prompt", [0, 3])
@pytest.mark.parametrize("seed", [0, 11])
def test_adherence_rises_to_the_sweet_spot_and_diversity_falls_past_one(prompt, seed):
    c = g.guidance_curve(prompt, seed, 256)
    adh = dict(zip(c.scales, c.adherence))
    div = dict(zip(c.scales, c.diversity))
    assert abs(adh[0.0] - 1 / len(g.CLASSES)) < 0.08  # s = 0 ignores the prompt: about chance
    assert adh[0.0] < adh[0.5] < adh[1.0] < adh[3.0]
    assert adh[1.0] < 0.97  # the blobs overlap: plain conditional sampling misses sometimes
    past_one = [div[s] for s in c.scales if s >= 1.0]
    assert np.all(np.diff(past_one) < 0)
    assert div[20.0] < 0.5 * div[1.0]


@pytest.mark.parametrize("prompt", ["red", "green", "purple"])
@pytest.mark.parametrize("seed", [0, 5])
def test_regimes_along_the_scale(prompt, seed):
    regimes = {s: g.guidance_instrument(scale=s, seed=seed, prompt_class=prompt)["regime"] for s in (0, 1, 3, 5, 20)}
    assert regimes == {
        0: "ignores the prompt",
        1: "conditional",
        3: "sweet spot",
        5: "sweet spot",
        20: "over-saturated",
    }


def test_regime_thresholds():
    assert g.regime(9.0, 1.0, 0.51, 0.9) == "over-saturated"
    assert g.regime(0.4, 0.5, 0.0, 0.9) == "ignores the prompt"  # below (1/6 + 0.9) / 2 = 0.533
    assert g.regime(1.5, 0.94, 0.0, 0.9) == "conditional"  # below 0.9 + 0.1 / 2 = 0.95
    assert g.regime(1.5, 0.95, 0.0, 0.9) == "sweet spot"
    assert g.regime(1.0, 1.0, 0.0, 1.0) == "conditional"  # s = 1 never counts as guidance


def test_oversaturated_samples_sit_beyond_the_class_mean():
    out = g.guidance_instrument(scale=20)
    centroid = np.array(out["guided_centroid"])
    assert np.linalg.norm(centroid) > g.RING_RADIUS + g.DATA_CLOUD_RADIUS  # pushed out past the whole red blob
    assert out["beyond_data"] > 0.9


def test_instrument_outputs():
    out = g.guidance_instrument(scale=4.3, seed=1, samples=64, prompt_class="blue")
    assert len(out["guided_points"]) == len(out["uncond_points"]) == 64
    assert out["worked_example"]["guided"] == pytest.approx(0.2 + 4.3 * 0.3)
    assert out["curve"]["scales"] == list(g.SCALE_GRID)
    assert out["arrow"]["end"] == pytest.approx(g.guidance_curve(4, 1, 64).points[2].mean(axis=0).tolist())
    assert out["snippet"]["current"]["scale"] == 4.3


def test_off_grid_scale_samples_fresh_and_on_grid_reuses_the_curve():
    on_grid = g.guidance_instrument(scale=5.0, seed=2, samples=64)
    direct = np.round(g.ddim_sample([5.0], RED, 2, 64)[0], 4).tolist()
    assert on_grid["guided_points"] == direct
    off_grid = g.guidance_instrument(scale=5.5, seed=2, samples=64)
    assert off_grid["guided_points"] == np.round(g.ddim_sample([5.5], RED, 2, 64)[0], 4).tolist()


def test_quiz_answers_come_from_the_instrument():
    ctx = g.page_context()
    assert ctx["quiz_guided"] == 2.45
    assert ctx["quiz_tradeoff"] == "true"
    assert g.tradeoff_holds()


def test_default_request_is_fast_even_with_a_cold_cache():
    timings = []
    for seed in (101, 102, 103):
        start = time.perf_counter()
        g.guidance_instrument(seed=seed)
        timings.append(time.perf_counter() - start)
    assert np.median(timings) < 0.2  # about 25 ms on an idle core; a per-sample Python loop would be 100x that


# ---------------------------------------------------------------- the endpoint

URL = "/api/v1/instruments/guidance"


def test_endpoint_worked_example_and_defaults(client):
    body = client.get(URL, params={"scale": 7.5, "eps_uncond": 0.2, "eps_cond": 0.5}).json()
    assert body["worked_example"]["guided"] == 2.45
    assert body["worked_example"]["norm"] == 2.45
    assert body["regime"] == "sweet spot"
    assert body["samples"] == 256 and len(body["guided_points"]) == 256
    assert [c["name"] for c in body["classes"]] == list(g.CLASSES)
    assert len(body["snippet"]["rows"]) == 5
    assert body["chance_adherence"] == pytest.approx(1 / 6)


def test_endpoint_is_deterministic_and_seeded(client):
    a = client.get(URL, params={"scale": 3, "seed": 4}).json()
    assert a == client.get(URL, params={"scale": 3, "seed": 4}).json()
    assert a["guided_points"] != client.get(URL, params={"scale": 3, "seed": 5}).json()["guided_points"]


def test_endpoint_measurements_match_the_domain(client):
    body = client.get(URL, params={"scale": 20, "prompt_class": "yellow", "samples": 128}).json()
    c = g.guidance_curve(g.CLASSES.index("yellow"), 0, 128)
    assert body["regime"] == "over-saturated"
    assert body["adherence"] == c.adherence[-1] and body["diversity"] == c.diversity[-1]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"scale": -0.1}, "scale"),
        ({"scale": 20.5}, "scale"),
        ({"scale": "high"}, "scale"),
        ({"scale": "nan"}, "scale"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"samples": 15}, "samples"),
        ({"samples": 513}, "samples"),
        ({"prompt_class": "pink"}, "prompt_class"),
        ({"eps_uncond": 10.5}, "eps_uncond"),
        ({"eps_cond": "inf"}, "eps_cond"),
        ({"guidance_scale": 3}, "guidance_scale"),
    ],
)
def test_endpoint_rejects_bad_input_naming_the_field(client, params, field):
    response = client.get(URL, params=params)
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [["query", field]]


def test_endpoint_is_documented(client):
    op = client.get("/openapi.json").json()["paths"][URL]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert names == {"scale", "seed", "samples", "prompt_class", "eps_uncond", "eps_cond"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/GuidanceResult")


# ---------------------------------------------------------------- the CFG table for any vectors (the snippet's check)

TABLE = "/api/v1/instruments/guidance/table"


def test_table_defaults_are_the_chapters_snippet(client):
    body = client.get(TABLE).json()
    assert body == g.snippet_panel(7.5)
    assert [round(row["norm"], 3) for row in body["rows"]] == [0.229, 0.585, 1.556, 3.797, 7.543]


def test_table_for_other_vectors_and_scales_is_eq_mm34_on_them(client):
    params = {"eps_uncond": [0.2, -0.1], "eps_cond": [0.6, 0.3], "scales": [0, 2, 30], "scale": 4}
    body = client.get(TABLE, params=params).json()
    assert body["rows"] == g.cfg_table([0.2, -0.1], [0.6, 0.3], [0, 2, 30])
    assert body["rows"][1]["guided"] == pytest.approx([1.0, 0.7])
    assert body["current"] == g.cfg_table([0.2, -0.1], [0.6, 0.3], [4])[0]
    assert body["direction"] == pytest.approx([0.4, 0.4])
    curve = body["norm_curve"]["scales"]
    assert len(curve) == 41 and curve[0] == 0 and curve[-1] == 30  # drawn up to the largest s asked for


@pytest.mark.parametrize(("params", "field", "kind"), [
    ({"eps_uncond": [0.2], "eps_cond": [0.5, 0.3]}, "eps_cond", "same_length"),
    ({"eps_uncond": [0.2] * 17}, "eps_uncond", "too_long"),
    ({"eps_cond": [10.5, 0, 0]}, "eps_cond", "less_than_equal"),
    ({"scales": [101]}, "scales", "less_than_equal"),
    ({"scales": [float(s) for s in range(42)]}, "scales", "too_long"),
    ({"scale": "nan"}, "scale", "finite_number"),
])
def test_table_rejects_bad_input_naming_the_field_and_the_rule(client, params, field, kind):
    response = client.get(TABLE, params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {d["loc"][1] for d in detail} == {field} and detail[0]["type"] == kind


def test_table_states_its_cross_field_rule(client):
    op = client.get("/openapi.json").json()["paths"][TABLE]["get"]
    assert op["responses"]["422"]["x-cross-field-rules"] == {
        "same_length": "eps_cond must have as many components as eps_uncond"}
    assert {p["name"] for p in op["parameters"]} == {"eps_uncond", "eps_cond", "scales", "scale"}
