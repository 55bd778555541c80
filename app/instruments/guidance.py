"""Guidance scale (INSTRUMENT MM3.2, EQ MM3.4) on a toy diffusion whose noise predictor is known exactly.

The data: a 2-D mixture of six isotropic Gaussian blobs, one per colour word of the scene grammar, on a ring.
Under the forward process (EQ MM3.1) a Gaussian blob N(mu, sigma^2 I) becomes N(sqrt(abar) mu, v I) with
v = abar sigma^2 + 1 - abar, so the exact noise predictor eps = -sqrt(1 - abar) * score has a closed form:
the conditional one uses the prompt's blob alone, the unconditional one the whole mixture. Sampling is DDIM
(eta = 0) with the guided estimate of EQ MM3.4 at every step, for many scales at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from app.instruments.denoising import linear_schedule

# ---------------------------------------------------------------- the toy world

CLASSES = ("red", "orange", "yellow", "green", "blue", "purple")
CLASS_RGB = {  # the scene grammar's colours (DESIGN.md §1), for the plot
    "red": (215, 48, 39), "orange": (245, 130, 32), "yellow": (240, 200, 30),
    "green": (40, 160, 70), "blue": (40, 90, 200), "purple": (130, 60, 170),
}
RING_RADIUS = 2.0
CLASS_STD = 0.7  # wide enough that neighbouring colours overlap: plain conditional sampling is not 100% on-prompt
_ANGLES = np.pi / 2 - 2 * np.pi * np.arange(len(CLASSES)) / len(CLASSES)
CLASS_MEANS = RING_RADIUS * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)  # (K, 2)

TRAIN_STEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02  # DDPM's linear schedule: abar_T ~ 4e-5, so x_T ~ N(0, I) is honest
SAMPLER_STEPS = 40
_, ABAR = linear_schedule(TRAIN_STEPS, BETA_START, BETA_END)  # (T,)

SCALE_GRID = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 12.5, 15.0, 20.0)

# "Outside the data cloud": farther from every class mean than 99.9% of each class's own members.
# For a 2-D isotropic Gaussian, P(|x - mu| > r) = exp(-r^2 / (2 sigma^2)), so r = sigma sqrt(2 ln 1000).
DATA_CLOUD_RADIUS = CLASS_STD * float(np.sqrt(2 * np.log(1000.0)))
OVERSATURATED_SHARE = 0.5  # over-saturated once most guided samples land outside the cloud

# ---------------------------------------------------------------- EQ MM3.4


def guided_estimate(eps_uncond, eps_cond, scale: float):
    """EQ MM3.4: eps_uncond + s (eps_cond - eps_uncond); s = 0 ignores the prompt, s = 1 is plain conditional."""
    eps_uncond, eps_cond = np.asarray(eps_uncond, dtype=float), np.asarray(eps_cond, dtype=float)
    return eps_uncond + scale * (eps_cond - eps_uncond)


def cfg_table(eps_uncond, eps_cond, scales) -> list[dict]:
    """The chapter's CFG snippet: the guided estimate and its L2 norm for each s."""
    rows = []
    for s in scales:
        guided = guided_estimate(eps_uncond, eps_cond, s)
        rows.append({"scale": float(s), "guided": np.round(guided, 12).tolist(), "norm": float(np.linalg.norm(guided))})
    return rows


# ---------------------------------------------------------------- the exact noise predictors


@lru_cache(maxsize=TRAIN_STEPS)
def _blobs(abar: float) -> tuple[float, np.ndarray, np.ndarray, float]:
    """What noise_predictions needs of a noise level alone (kept per abar: the sampler revisits the same 40)."""
    var = abar * CLASS_STD**2 + 1.0 - abar  # per-axis variance of every noisy blob
    means = np.sqrt(abar) * CLASS_MEANS  # (K, 2) the blobs' centres at this noise level
    half_norms = 0.5 * np.sum(means**2, axis=1)[:, None]  # (K, 1)
    coef = np.sqrt(1.0 - abar) / var  # eps = -sqrt(1 - abar) * score, score = -(x - m) / var
    return var, means, half_norms, coef


def noise_predictions(x: np.ndarray, abar: float, prompt: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (eps_uncond, eps_cond) at x_t of shape (..., 2) under EQ MM3.1 for the Gaussian-mixture data."""
    var, means, half_norms, coef = _blobs(float(abar))
    flat = x.reshape(-1, 2)  # (M, 2)
    # log N(x; m_k, var I) up to a term shared by all k: (m_k . x - |m_k|^2 / 2) / var; equal class weights.
    # Classes on the first axis: numpy reduces a short last axis far more slowly than a short first one.
    logits = (means @ flat.T - half_norms) / var  # (K, M)
    resp = np.exp(logits - logits.max(axis=0))
    resp /= resp.sum(axis=0)  # (K, M) posterior over classes
    eps_uncond = coef * (flat - resp.T @ means)  # (M, 2) the mixture's score is the responsibility-weighted one
    eps_cond = coef * (flat - means[prompt])  # (M, 2)
    return eps_uncond.reshape(x.shape), eps_cond.reshape(x.shape)


def sampler_timesteps(steps: int = SAMPLER_STEPS) -> np.ndarray:
    """Evenly spaced training timesteps from T-1 down to 0, as DDIM visits them."""
    return np.linspace(TRAIN_STEPS - 1, 0, steps).round().astype(int)  # (steps,)


def initial_noise(seed: int, samples: int) -> np.ndarray:
    """x_T ~ N(0, I), the same draws for every scale (common random numbers make the curves comparable)."""
    return np.random.default_rng(seed).normal(size=(samples, 2))  # (N, 2)


def ddim_sample(scales, prompt: int, seed: int, samples: int, eps_mode: str = "guided") -> np.ndarray:
    """DDIM (eta = 0) from x_T for each scale at once; eps_mode 'uncond' or 'cond' uses one predictor alone."""
    if eps_mode not in ("guided", "uncond", "cond"):
        raise ValueError(f"eps_mode must be guided, uncond or cond, got {eps_mode!r}")
    scales = np.asarray(scales, dtype=float)[:, None, None]  # (S, 1, 1)
    x = np.broadcast_to(initial_noise(seed, samples), (scales.shape[0], samples, 2)).copy()  # (S, N, 2)
    ts = sampler_timesteps()
    for i, t in enumerate(ts):
        abar = ABAR[t]
        abar_prev = ABAR[ts[i + 1]] if i + 1 < len(ts) else 1.0
        eps_u, eps_c = noise_predictions(x, abar, prompt)
        if eps_mode == "uncond":
            eps = eps_u
        elif eps_mode == "cond":
            eps = eps_c
        else:
            eps = guided_estimate(eps_u, eps_c, scales)  # EQ MM3.4, one s per row
        x0_hat = (x - np.sqrt(1.0 - abar) * eps) / np.sqrt(abar)  # EQ MM3.1 solved for x0
        x = np.sqrt(abar_prev) * x0_hat + np.sqrt(1.0 - abar_prev) * eps
    return x  # (S, N, 2)


# ---------------------------------------------------------------- measurements


def adherence(points: np.ndarray, prompt: int) -> float:
    """Share of samples whose nearest class mean is the prompt's (= posterior > 1/2 for equal isotropic blobs)."""
    dist2 = np.sum((points[:, None, :] - CLASS_MEANS) ** 2, axis=-1)  # (N, K)
    return float(np.mean(np.argmin(dist2, axis=1) == prompt))


def diversity(points: np.ndarray) -> float:
    """RMS distance of the samples to their own centroid (sqrt of the covariance's trace), in latent units."""
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def beyond_data(points: np.ndarray) -> float:
    """Share of samples outside the data cloud: farther from every class mean than 99.9% of that class's members."""
    dist = np.linalg.norm(points[:, None, :] - CLASS_MEANS, axis=-1)  # (N, K)
    return float(np.mean(dist.min(axis=1) > DATA_CLOUD_RADIUS))


@dataclass(frozen=True)
class Curve:
    """Adherence, diversity and the off-cloud share over SCALE_GRID, plus the samples behind them."""

    scales: tuple[float, ...]
    points: np.ndarray  # (S, N, 2)
    adherence: tuple[float, ...]
    diversity: tuple[float, ...]
    beyond_data: tuple[float, ...]


@lru_cache(maxsize=64)
def guidance_curve(prompt: int, seed: int, samples: int) -> Curve:
    """Sample every scale of SCALE_GRID from the same noise and measure each; cached (it depends on no slider)."""
    points = ddim_sample(SCALE_GRID, prompt, seed, samples)  # (S, N, 2)
    points.setflags(write=False)
    return Curve(
        scales=SCALE_GRID,
        points=points,
        adherence=tuple(adherence(p, prompt) for p in points),
        diversity=tuple(diversity(p) for p in points),
        beyond_data=tuple(beyond_data(p) for p in points),
    )


def regime(scale: float, adh: float, off_cloud: float, adherence_s1: float) -> str:
    """Name the regime from the measured numbers (thresholds relative to chance and to plain conditional, s = 1).

    over-saturated: most samples (> OVERSATURATED_SHARE) land outside the data cloud (see beyond_data);
    ignores the prompt: adherence below the midpoint of chance (1/K) and the s = 1 adherence;
    sweet spot: s > 1 and adherence has closed at least half the gap from the s = 1 adherence to 100%;
    conditional: anything in between.
    """
    chance = 1.0 / len(CLASSES)
    if off_cloud > OVERSATURATED_SHARE:
        return "over-saturated"
    if adh < (chance + adherence_s1) / 2:
        return "ignores the prompt"
    if scale > 1.0 and adh >= adherence_s1 + (1.0 - adherence_s1) / 2:
        return "sweet spot"
    return "conditional"


# ---------------------------------------------------------------- the instrument


@lru_cache(maxsize=256)
def guided_samples(prompt: int, seed: int, samples: int, scale: float) -> np.ndarray:
    """The samples at one scale: the curve's own on SCALE_GRID, else sampled and kept (read-only, (N, 2))."""
    curve = guidance_curve(prompt, seed, samples)
    if scale in curve.scales:
        return curve.points[curve.scales.index(scale)]
    points = ddim_sample([scale], prompt, seed, samples)[0]
    points.setflags(write=False)
    return points


@lru_cache(maxsize=256)
def rounded_points(prompt: int, seed: int, samples: int, scale: float) -> list:
    """guided_samples as the page draws them, to 4 decimals (kept: read-only)."""
    return np.round(guided_samples(prompt, seed, samples, scale), 4).tolist()


def guidance_instrument(
    scale: float = 7.5,
    seed: int = 0,
    samples: int = 256,
    prompt_class: str = "red",
    eps_uncond: float = 0.20,
    eps_cond: float = 0.50,
) -> dict:
    """Everything the page draws for one scale: measured adherence/diversity/regime, points, curve, EQ MM3.4 numbers."""
    prompt = CLASSES.index(prompt_class)
    curve = guidance_curve(prompt, seed, samples)
    guided = guided_samples(prompt, seed, samples, scale)  # (N, 2)
    uncond, cond = curve.points[curve.scales.index(0.0)], curve.points[curve.scales.index(1.0)]
    adh, off = adherence(guided, prompt), beyond_data(guided)
    adh_s1 = curve.adherence[curve.scales.index(1.0)]
    worked = guided_estimate(eps_uncond, eps_cond, scale)
    return {
        "scale": scale,
        "seed": seed,
        "samples": samples,
        "prompt_class": prompt_class,
        "regime": regime(scale, adh, off, adh_s1),
        "adherence": adh,
        "diversity": diversity(guided),
        "beyond_data": off,
        "chance_adherence": 1.0 / len(CLASSES),
        "worked_example": {
            "eps_uncond": eps_uncond,
            "eps_cond": eps_cond,
            "direction": round(float(eps_cond - eps_uncond), 12),
            "guided": round(float(worked), 12),
            "norm": round(float(abs(worked)), 12),
        },
        "classes": [
            {"name": name, "mean": CLASS_MEANS[k].tolist(), "rgb": list(CLASS_RGB[name])}
            for k, name in enumerate(CLASSES)
        ],
        "class_std": CLASS_STD,
        "data_cloud_radius": DATA_CLOUD_RADIUS,
        "uncond_points": rounded_points(prompt, seed, samples, 0.0),
        "guided_points": rounded_points(prompt, seed, samples, scale),
        "arrow": {"start": uncond.mean(axis=0).tolist(), "end": cond.mean(axis=0).tolist()},
        "guided_centroid": guided.mean(axis=0).tolist(),
        "curve": {
            "scales": list(curve.scales),
            "adherence": list(curve.adherence),
            "diversity": list(curve.diversity),
            "beyond_data": list(curve.beyond_data),
        },
        "sampler": {"name": "DDIM (eta = 0)", "steps": SAMPLER_STEPS, "train_steps": TRAIN_STEPS,
                    "beta_start": BETA_START, "beta_end": BETA_END},
        "snippet": snippet_panel(scale),
    }


# ---------------------------------------------------------------- the chapter's CFG snippet, live

SNIPPET_EPS_UNCOND = (0.20, -0.10, 0.05)
SNIPPET_EPS_COND = (0.50, 0.30, 0.05)
SNIPPET_SCALES = (0.0, 1.0, 3.0, 7.5, 15.0)
NORM_CURVE_TOP = 20.0  # the norm is drawn over s in [0, 20], or up to the largest s asked for
NORM_CURVE_POINTS = 41


def snippet_panel(scale: float, eps_uncond=SNIPPET_EPS_UNCOND, eps_cond=SNIPPET_EPS_COND,
                  scales=SNIPPET_SCALES) -> dict:
    """The snippet's table (its example vectors and scales unless given others), the norm over s, and the row for
    the current s. Kept per input (it depends on nothing else): read-only."""
    return _snippet_panel(float(scale), tuple(map(float, eps_uncond)), tuple(map(float, eps_cond)),
                          tuple(map(float, scales)))


def _snippet_panel(scale: float, eps_uncond: tuple, eps_cond: tuple, scales: tuple) -> dict:
    return {**_snippet_table(eps_uncond, eps_cond, scales), "current": cfg_table(eps_uncond, eps_cond, [scale])[0],
            "norm_curve": _norm_curve(max(NORM_CURVE_TOP, scale, *scales), eps_uncond, eps_cond)}


@lru_cache(maxsize=256)
def _snippet_table(eps_uncond: tuple, eps_cond: tuple, scales: tuple) -> dict:
    """The part of the panel that no slider moves (kept; read-only)."""
    direction = np.subtract(eps_cond, eps_uncond)
    return {
        "eps_uncond": [float(v) for v in eps_uncond],
        "eps_cond": [float(v) for v in eps_cond],
        "direction": np.round(direction, 12).tolist(),
        "rows": cfg_table(eps_uncond, eps_cond, scales),
    }


@lru_cache(maxsize=256)
def _norm_curve(top: float, eps_uncond: tuple, eps_cond: tuple) -> dict:
    """The norm over s in [0, top]: the same curve for every s up to NORM_CURVE_TOP (kept; read-only)."""
    curve = np.linspace(0.0, top, NORM_CURVE_POINTS)
    return {"scales": curve.tolist(), "norm": [row["norm"] for row in cfg_table(eps_uncond, eps_cond, curve)]}


def tradeoff_holds(prompt: int = 0, seed: int = 0, samples: int = 256, high: float = 7.5) -> bool:
    """The true/false question, measured: does s = high beat s = 0 on adherence and lose to it on diversity?"""
    curve = guidance_curve(prompt, seed, samples)
    lo, hi = curve.scales.index(0.0), curve.scales.index(high)
    return curve.adherence[hi] > curve.adherence[lo] and curve.diversity[hi] < curve.diversity[lo]


def page_context() -> dict:
    """Answers for the page's check-yourself questions, from the functions above."""
    return {
        "classes": CLASSES,
        "quiz_guided": round(float(guided_estimate(0.20, 0.50, 7.5)), 12),
        "quiz_tradeoff": "true" if tradeoff_holds() else "false",
    }
