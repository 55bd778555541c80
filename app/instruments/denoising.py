"""Denoising walk (EQ MM3.1-3.2): an oracle denoiser walks a 2-D latent from pure noise back to its target x0.

This is the chapter's first snippet as a function: the same schedule, the same draws from
numpy's default_rng(seed) in the same order, so with the snippet's defaults it prints what the snippet prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SNIPPET_DEFAULTS = {"x0": (1.5, -0.8), "steps": 40, "beta_start": 1e-3, "beta_end": 0.08, "seed": 0}
CLOUD_POINTS = 200  # samples drawn from q(x_t | x0) to show the forward marginal at one signal fraction


def linear_schedule(steps: int, beta_start: float, beta_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Betas linear in t and abar_t = prod_{s<=t} (1 - beta_s) (EQ MM3.1); index 0 is the first noising step."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    if not 0.0 < beta_start < 1.0 or not 0.0 < beta_end < 1.0:
        raise ValueError("betas must lie in (0, 1)")
    betas = np.linspace(beta_start, beta_end, steps)  # (T,)
    return betas, np.cumprod(1.0 - betas)  # (T,), (T,)


def forward_coefficients(abar: float) -> tuple[float, float]:
    """EQ MM3.1's two coefficients at signal fraction abar: (sqrt(abar) on x0, sqrt(1 - abar) on the noise)."""
    if not 0.0 <= abar <= 1.0:
        raise ValueError(f"abar must lie in [0, 1], got {abar}")
    return float(np.sqrt(abar)), float(np.sqrt(1.0 - abar))


def forward_sample(x0: np.ndarray, abar: float, eps: np.ndarray) -> np.ndarray:
    """EQ MM3.1 in one draw: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, for eps of shape (..., 2)."""
    signal, noise = forward_coefficients(abar)
    return signal * np.asarray(x0) + noise * eps


def prior_mismatch_kl(x0: np.ndarray, abar_last: float) -> float:
    """KL(q(x_T | x0) || N(0, I)) in nats: how far the schedule's last step is from the walk's pure-noise start."""
    d = np.asarray(x0).size
    var = 1.0 - abar_last
    return float(0.5 * (d * var + abar_last * np.sum(np.square(x0)) - d - d * np.log(var)))


@dataclass(frozen=True)
class DenoisingWalk:
    """The whole reverse walk: per-step arrays are in walk order, t = T-1 down to 0."""

    x0: np.ndarray  # (2,) the target
    betas: np.ndarray  # (T,)
    abar: np.ndarray  # (T,) indexed by t
    t: np.ndarray  # (T,) walk order
    x_t: np.ndarray  # (T+1, 2): the start x_T, then the latent after each step; the last row is the recovered latent
    eps_hat: np.ndarray  # (T, 2) the noise the denoiser predicted at each step
    x0_hat: np.ndarray  # (T, 2) the clean latent implied at each step

    @property
    def recovered(self) -> np.ndarray:
        return self.x_t[-1]  # (2,)

    @property
    def l2_error(self) -> float:
        return float(np.linalg.norm(self.recovered - self.x0))

    @property
    def abar_start(self) -> float:
        """abar at the step the walk starts from (t = T-1): the snippet's 'start'."""
        return float(self.abar[-1])

    @property
    def abar_end(self) -> float:
        """abar at the last step (t = 0): the snippet's 'end'."""
        return float(self.abar[0])


def denoising_walk(
    x0=SNIPPET_DEFAULTS["x0"],
    steps: int = SNIPPET_DEFAULTS["steps"],
    beta_start: float = SNIPPET_DEFAULTS["beta_start"],
    beta_end: float = SNIPPET_DEFAULTS["beta_end"],
    seed: int = SNIPPET_DEFAULTS["seed"],
    eps_error: float = 0.0,
) -> DenoisingWalk:
    """Walk x_T ~ N(0, I) back to x0 with an oracle noise predictor (EQ MM3.2's target), re-noising each step (MM3.1).

    eps_error > 0 adds N(0, eps_error^2 I) to every noise prediction, drawn from a separate generator so the walk's
    own noise draws stay those of the snippet: a stand-in for a trained network's residual error.
    """
    x0 = np.asarray(x0, dtype=float)  # (2,)
    betas, abar = linear_schedule(steps, beta_start, beta_end)
    # All draws up front: numpy's generators fill an array in the order single draws would come, so these are the
    # snippet's draws (row 0 is x_T, row k + 1 the noise of walk step k), and the walk runs on Python floats,
    # which round every operation as numpy does on a 2-vector, at a fraction of its per-call cost.
    draws = np.random.default_rng(seed).normal(0, 1, (steps + 1, 2)).tolist()
    errors = (eps_error * np.random.default_rng([seed, 1]).normal(0, 1, (steps, 2))).tolist() if eps_error > 0 else None
    signal, noise = np.sqrt(abar).tolist(), np.sqrt(1 - abar).tolist()  # (T,) each, as the snippet computes them
    tx, ty = float(x0[0]), float(x0[1])
    x, y = draws[0]
    path, eps_hats, x0_hats = [[x, y]], [], []
    for k, t in enumerate(range(steps - 1, -1, -1)):
        s, n = signal[t], noise[t]
        ex, ey = (x - s * tx) / n, (y - s * ty) / n  # the noise actually in x_t (oracle)
        if errors is not None:
            ex, ey = ex + errors[k][0], ey + errors[k][1]
        hx, hy = (x - n * ex) / s, (y - n * ey) / s  # EQ MM3.1 solved for x0
        if t > 0:
            a_prev = abar[t - 1]
            sp, nq = float(np.sqrt(a_prev)), float(np.sqrt(1 - a_prev))
            x, y = sp * hx + nq * draws[k + 1][0], sp * hy + nq * draws[k + 1][1]
        else:  # a_prev = 1: the last step lands on x0_hat (plus 0 times the last draw)
            x, y = 1.0 * hx + 0.0 * draws[k + 1][0], 1.0 * hy + 0.0 * draws[k + 1][1]
        path.append([x, y])
        eps_hats.append([ex, ey])
        x0_hats.append([hx, hy])
    return DenoisingWalk(
        x0=x0,
        betas=betas,
        abar=abar,
        t=np.arange(steps - 1, -1, -1),
        x_t=np.array(path),
        eps_hat=np.array(eps_hats),
        x0_hat=np.array(x0_hats),
    )


@lru_cache(maxsize=4096)
def _vector_text(values: tuple) -> str:
    """str() of a rounded 2-vector, as the snippet prints it (numpy's array printing is slow; the texts repeat)."""
    return str(np.array(values))


def snippet_printout(walk: DenoisingWalk) -> list[str]:
    """The four lines the chapter's snippet prints, formatted exactly as it formats them."""
    return [
        f"target latent  x0   : {_vector_text(tuple(walk.x0.round(3)))}",
        f"recovered      x_hat: {_vector_text(tuple(walk.recovered.round(3)))}",
        f"L2 error            : {float(np.linalg.norm(walk.recovered - walk.x0).round(4))}",
        f"signal fraction abar: start {round(walk.abar_start, 3)} -> end {round(walk.abar_end, 3)}",
    ]


def forward_cloud(x0, abar: float, seed: int, n: int = CLOUD_POINTS) -> np.ndarray:
    """n draws of x_t ~ q(x_t | x0) at signal fraction abar (EQ MM3.1): where the forward process puts the latent."""
    eps = np.random.default_rng([seed, 2]).normal(0, 1, (n, 2))  # (n, 2) a stream apart from the walk's
    return forward_sample(np.asarray(x0, dtype=float), abar, eps)  # (n, 2)


def nearest_step(abar_table: np.ndarray, abar: float) -> int:
    """The timestep t whose abar_t is closest to abar."""
    return int(np.argmin(np.abs(abar_table - abar)))


def page_context() -> dict:
    """Numbers the page's check-yourself question needs, from the functions above."""
    signal, noise = forward_coefficients(0.36)
    return {"quiz_abar": 0.36, "quiz_signal": round(signal, 6), "quiz_noise": round(noise, 6)}


@lru_cache(maxsize=64)  # up to 1000 steps x 5 lists each: about 120 KB an entry
def schedule_table(steps: int, beta_start: float, beta_end: float) -> dict:
    """The schedule against t as the page draws it; it depends on these three alone, so it is kept (read-only)."""
    betas, abar = linear_schedule(steps, beta_start, beta_end)
    return {"t": list(range(steps)), "beta": betas.tolist(), "abar": abar.tolist(),
            "sqrt_abar": np.sqrt(abar).tolist(), "sqrt_one_minus_abar": np.sqrt(1.0 - abar).tolist()}


def denoising_instrument(
    target_x: float = 1.5,
    target_y: float = -0.8,
    steps: int = 40,
    beta_start: float = 1e-3,
    beta_end: float = 0.08,
    seed: int = 0,
    eps_error: float = 0.0,
    signal_fraction: float = 0.36,
) -> dict:
    """Everything the page draws: the schedule against t, the walk, the readouts, EQ MM3.1 at one signal fraction."""
    walk = denoising_walk((target_x, target_y), steps, beta_start, beta_end, seed, eps_error)
    signal, noise = forward_coefficients(signal_fraction)
    near = nearest_step(walk.abar, signal_fraction)
    return {
        "target": walk.x0.tolist(),
        "recovered": walk.recovered.tolist(),
        "l2_error": walk.l2_error,
        "abar_start": walk.abar_start,
        "abar_end": walk.abar_end,
        "prior_kl": prior_mismatch_kl(walk.x0, walk.abar_start),
        "steps": steps,
        "seed": seed,
        "eps_error": eps_error,
        "schedule": schedule_table(steps, beta_start, beta_end),
        "walk": {
            "t": walk.t.tolist(),
            "x_t": walk.x_t.tolist(),
            "x0_hat": walk.x0_hat.tolist(),
            "eps_hat": walk.eps_hat.tolist(),
        },
        "forward": {
            "abar": signal_fraction,
            "sqrt_abar": signal,
            "sqrt_one_minus_abar": noise,
            "variance_check": signal**2 + noise**2,
            "nearest_t": near,
            "nearest_abar": float(walk.abar[near]),
            "cloud": np.round(forward_cloud(walk.x0, signal_fraction, seed), 4).tolist(),
        },
        "printout": snippet_printout(walk),
    }
