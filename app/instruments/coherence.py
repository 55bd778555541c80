"""Frame coherence (instrument MM3.3): per-frame vs joint denoising of a moving object, and EQ MM3.6's cost.

The "video" is the tracked object's 2-D path, one (x, y) per frame in units of the frame side. Its data are
straight lines at constant speed, a Gaussian over paths whose covariance couples the frames in time. A DDIM walk
(EQ MM3.1) denoises a path from pure noise with the exact posterior-mean denoiser of the prior

    Sigma_c = (1 - c) * Sigma_indep + c * Sigma_joint,

where Sigma_joint is the covariance of straight-line paths (plus a little jitter) and Sigma_indep keeps only its
diagonal: at c = 0 each frame is denoised on its own (same per-frame spread, no coupling), at c = 1 jointly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The data: start (at mid-clip), speed and jitter, in frame sides (an x of 1.0 is the frame's full width).
START_STD = 0.15  # per axis, around the centre 0.5
SPEED_STD = 0.025  # per axis, frame sides per frame (about 2 px/frame in a 64 px frame)
DRIFT_STD = 0.12  # per axis: on long clips the speed shrinks so the half-clip drift stays within this
JITTER_STD = 0.004  # per frame and axis: a path is a line up to this wobble

# The sampler: DDPM's linear beta schedule over 1000 steps, walked with deterministic DDIM in STEPS steps.
TRAIN_STEPS = 1000
STEPS = 100
BETA_START, BETA_END = 1e-4, 0.02

# Regimes by the measured mean frame-to-frame jump (frame sides per frame), upper bounds. A path drawn from the
# data moves about 0.03 per frame; independently denoised frames jump about 0.28 (see expected_jump). At 8 frames
# the bounds fall near c = 0.5 (flicker | jittery), c = 0.85 (| mostly coherent) and c = 0.97 (| smooth).
REGIMES = (
    ("smooth", 0.06),
    ("mostly coherent", 0.11),
    ("jittery", 0.19),
    ("flicker", float("inf")),
)
JUMP_CURVE_STEP = 0.05  # the grid of c on which the page draws the expected jump


@dataclass(frozen=True)
class RegimeBand:
    """A regime and the mean jump below which it holds (None: no upper bound)."""

    name: str
    upper: float | None


@dataclass(frozen=True)
class JumpPoint:
    """The exact expected jump at one coherence (the sampler's target)."""

    coherence: float
    jump: float


@dataclass(frozen=True)
class CostPoint:
    """EQ MM3.6 at one clip length: tokens, joint and factorised attention cost."""

    frames: int
    tokens: int
    joint: int
    factorised: int


@dataclass(frozen=True)
class Tokens:
    """EQ MM3.6: N = (T_f / p_t) * (H / p_h) * (W / p_w) spacetime patches."""

    temporal: int  # T_f / p_t
    spatial: int  # (H / p_h) * (W / p_w)
    total: int  # N


@dataclass(frozen=True)
class CoherenceReport:
    """One denoised path and the clip's attention bill."""

    coherence: float
    frames: int
    seed: int
    p_t: int
    p_h: int
    p_w: int
    latent_height: int
    latent_width: int
    x: tuple[float, ...]  # (T_f,) in [0, 1] of the frame width
    y: tuple[float, ...]  # (T_f,) in [0, 1] of the frame height, 0 at the top
    mean_jump: float  # frame sides per frame
    mean_jump_cells: float  # latent cells per frame
    expected_jump: float  # frame sides per frame, exact under the prior at this c
    jump_curve: tuple[JumpPoint, ...]
    regime: str
    tokens: Tokens
    joint_cost: int  # N^2
    factorised_cost: int
    factorised_saving: float  # joint / factorised
    steps: int
    regimes: tuple[RegimeBand, ...]
    cost_curve: tuple[CostPoint, ...]


# ---------------------------------------------------------------- the prior over paths


def speed_std(frames: int) -> float:
    """Per-axis speed spread: SPEED_STD, lowered on long clips so the object stays in view."""
    half = (frames - 1) / 2
    return min(SPEED_STD, DRIFT_STD / half) if half > 0 else SPEED_STD


def joint_covariance(frames: int) -> np.ndarray:
    """Covariance over frames of one axis of a straight-line path: start + speed * (k - mid) + jitter."""
    k = np.arange(frames) - (frames - 1) / 2  # (T,)
    v = speed_std(frames)
    return START_STD**2 + v**2 * np.outer(k, k) + JITTER_STD**2 * np.eye(frames)  # (T, T)


def prior_covariance(frames: int, coherence: float) -> np.ndarray:
    """Sigma_c = (1 - c) diag(Sigma_joint) + c Sigma_joint: per-frame (c = 0) to joint (c = 1) prior."""
    if not 0.0 <= coherence <= 1.0:
        raise ValueError("coherence must lie in [0, 1]")
    joint = joint_covariance(frames)
    indep = np.diag(np.diag(joint))
    return (1.0 - coherence) * indep + coherence * joint  # (T, T)


def expected_jump(frames: int, coherence: float) -> float:
    """E[mean_k |x_{k+1} - x_k|] for paths drawn exactly from N(0.5, Sigma_c), in frame sides per frame.

    Each step is a 2-D Gaussian with the same variance s^2 on both axes, whose length has mean s * sqrt(pi / 2).
    """
    cov = prior_covariance(frames, coherence)
    k = np.arange(frames - 1)
    var = cov[k, k] + cov[k + 1, k + 1] - 2 * cov[k, k + 1]  # (T-1,)
    return float(np.mean(np.sqrt(var * np.pi / 2)))


# ---------------------------------------------------------------- the sampler


@lru_cache(maxsize=1)
def alphas_cumprod() -> np.ndarray:
    """abar_t of DDPM's linear schedule (EQ MM3.1), t = 0..TRAIN_STEPS-1 (computed once; read-only)."""
    abar = np.cumprod(1.0 - np.linspace(BETA_START, BETA_END, TRAIN_STEPS))  # (TRAIN_STEPS,)
    abar.setflags(write=False)
    return abar


class GaussianPrior:
    """x0 ~ N(mean, cov) over frames, per axis; its exact denoiser E[x0 | x_t] in closed form."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray):
        self.mean = mean  # (T, 2) or broadcastable
        lam, self.u = np.linalg.eigh(cov)  # cov = u diag(lam) u^T, (T,), (T, T)
        self.lam = np.clip(lam, 0.0, None)

    def x0_hat(self, x_t: np.ndarray, abar: float) -> np.ndarray:
        """E[x0 | x_t] for x_t = sqrt(abar) x0 + sqrt(1 - abar) eps (EQ MM3.1): mean + a cov (a^2 cov + b^2 I)^-1 r."""
        a = np.sqrt(abar)
        gain = a * self.lam / (abar * self.lam + (1.0 - abar))  # (T,)
        residual = x_t - a * self.mean  # (T, 2)
        return self.mean + self.u @ (gain[:, None] * (self.u.T @ residual))  # (T, 2)


def ddim_gain(lam: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """The whole DDIM walk of ddim_sample at once, for a zero-mean prior: along each eigenvector of the covariance
    (eigenvalue lam) every step only scales the coordinate, by sqrt(abar') g + sqrt(1 - abar') (1 - sqrt(abar) g)
    / sqrt(1 - abar) with g = sqrt(abar) lam / (abar lam + 1 - abar); the walk is the product of those factors over
    the steps, (T,) for lam (T,)."""
    abar = alphas_cumprod()
    ts = np.linspace(TRAIN_STEPS - 1, 0, steps).round().astype(int)
    a = abar[ts][:, None]  # (S, 1)
    a_prev = np.append(abar[ts[1:]], 1.0)[:, None]  # (S, 1)
    g = np.sqrt(a) * lam / (a * lam + (1.0 - a))  # (S, T) x0_hat's gain on the coordinate
    factors = np.sqrt(a_prev) * g + np.sqrt(1.0 - a_prev) * (1.0 - np.sqrt(a) * g) / np.sqrt(1.0 - a)
    return np.prod(factors, axis=0)  # (T,)


def ddim_sample(prior: GaussianPrior, noise: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """Deterministic DDIM (eta = 0) from x_T = noise: eps_hat from the exact x0_hat, then step to the earlier abar."""
    abar = alphas_cumprod()
    ts = np.linspace(TRAIN_STEPS - 1, 0, steps).round().astype(int)
    x = noise  # (T, 2)
    for i, t in enumerate(ts):
        x0_hat = prior.x0_hat(x, abar[t])
        eps_hat = (x - np.sqrt(abar[t]) * x0_hat) / np.sqrt(1.0 - abar[t])
        abar_prev = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
        x = np.sqrt(abar_prev) * x0_hat + np.sqrt(1.0 - abar_prev) * eps_hat
    return x  # (T, 2): the last step lands on x0_hat


def sample_path(frames: int, coherence: float, seed: int, steps: int = STEPS) -> np.ndarray:
    """Denoise one (T_f, 2) path from the seed's noise under Sigma_c; clipped to the frame [0, 1].

    The walk runs on the path centred and scaled to unit spread per frame (as latent diffusion rescales its latents),
    so the schedule's noise levels meet the data at its own scale; the scale does not depend on c.
    """
    if frames < 2:
        raise ValueError("a clip needs at least 2 frames")
    u, gain, scale = _walk(frames, coherence, steps)
    noise = np.random.default_rng(seed).standard_normal((frames, 2))  # (T, 2)
    path = 0.5 + scale * (u @ (gain[:, None] * (u.T @ noise)))  # (T, 2): ddim_sample's walk, in one product
    return np.clip(path, 0.0, 1.0)


@lru_cache(maxsize=512)
def _walk(frames: int, coherence: float, steps: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The prior's eigenvectors (T, T), the walk's gain along each (T,) and the path's scale: all the seed does not
    change, kept per clip length and coherence."""
    cov = prior_covariance(frames, coherence)  # (T, T)
    scale = float(np.sqrt(np.diag(cov).mean()))
    prior = GaussianPrior(np.zeros((frames, 2)), cov / scale**2)
    return prior.u, ddim_gain(prior.lam, steps), scale


# ---------------------------------------------------------------- measurements


def mean_jump(path: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)) -> float:
    """Mean Euclidean distance between consecutive frames' positions, axes scaled by (sx, sy)."""
    steps = np.diff(path, axis=0) * np.asarray(scale)  # (T-1, 2)
    return float(np.linalg.norm(steps, axis=1).mean())


def regime(jump: float) -> str:
    """Name the regime from the mean jump in frame sides per frame (thresholds in REGIMES)."""
    for name, upper in REGIMES:
        if jump < upper:
            return name
    return REGIMES[-1][0]


@lru_cache(maxsize=128)
def jump_curve(frames: int) -> tuple[JumpPoint, ...]:
    """expected_jump over c = 0, 0.05, ..., 1 for this clip length (kept per length)."""
    grid = np.linspace(0.0, 1.0, round(1 / JUMP_CURVE_STEP) + 1)
    return tuple(JumpPoint(float(c), expected_jump(frames, float(c))) for c in grid)


def regime_bands() -> tuple[RegimeBand, ...]:
    """REGIMES as data for the page's legend."""
    return tuple(RegimeBand(name, None if np.isinf(upper) else upper) for name, upper in REGIMES)


def spacetime_tokens(frames: int, height: int, width: int, p_t: int, p_h: int, p_w: int) -> Tokens:
    """EQ MM3.6: N = (T_f / p_t)(H / p_h)(W / p_w) for a latent clip of T_f frames of H x W."""
    if frames % p_t or height % p_h or width % p_w:
        raise ValueError("patch sizes must divide frames, latent height and latent width")
    temporal, spatial = frames // p_t, (height // p_h) * (width // p_w)
    return Tokens(temporal=temporal, spatial=spatial, total=temporal * spatial)


def joint_cost(tokens: Tokens) -> int:
    """Joint space-time attention: every token attends to every token, N^2 pairs (EQ MM3.6)."""
    return tokens.total**2


def factorised_cost(tokens: Tokens) -> int:
    """Spatial attention inside each frame plus temporal attention at each position: T S^2 + S T^2 pairs."""
    return tokens.temporal * tokens.spatial**2 + tokens.spatial * tokens.temporal**2


@lru_cache(maxsize=256)
def cost_curve(height: int, width: int, p_t: int, p_h: int, p_w: int, max_frames: int = 64) -> tuple[CostPoint, ...]:
    """Joint and factorised cost over clip lengths 2..max_frames that p_t divides (kept per input)."""
    points = []
    for frames in range(max(2, p_t), max_frames + 1):
        if frames % p_t:
            continue
        tok = spacetime_tokens(frames, height, width, p_t, p_h, p_w)
        points.append(CostPoint(frames, tok.total, joint_cost(tok), factorised_cost(tok)))
    return tuple(points)


def coherence_report(
    coherence: float,
    frames: int,
    seed: int,
    p_t: int,
    p_h: int,
    p_w: int,
    latent_height: int,
    latent_width: int,
) -> CoherenceReport:
    """Denoise the path at this coherence and price the clip with EQ MM3.6."""
    tokens = spacetime_tokens(frames, latent_height, latent_width, p_t, p_h, p_w)
    path = sample_path(frames, coherence, seed)  # (T, 2)
    jump = mean_jump(path)
    return CoherenceReport(
        coherence=coherence,
        frames=frames,
        seed=seed,
        p_t=p_t,
        p_h=p_h,
        p_w=p_w,
        latent_height=latent_height,
        latent_width=latent_width,
        x=tuple(float(v) for v in path[:, 0]),
        y=tuple(float(v) for v in path[:, 1]),
        mean_jump=jump,
        mean_jump_cells=mean_jump(path, (latent_width, latent_height)),
        expected_jump=expected_jump(frames, coherence),
        jump_curve=tuple(jump_curve(frames)),
        regime=regime(jump),
        tokens=tokens,
        joint_cost=joint_cost(tokens),
        factorised_cost=factorised_cost(tokens),
        factorised_saving=joint_cost(tokens) / factorised_cost(tokens),
        steps=STEPS,
        regimes=regime_bands(),
        cost_curve=tuple(cost_curve(latent_height, latent_width, p_t, p_h, p_w)),
    )


def page_context() -> dict:
    """Answers for the page's check-yourself questions and the numbers its prose quotes, from the functions above."""
    short = joint_cost(spacetime_tokens(8, 32, 32, 1, 2, 2))
    double = joint_cost(spacetime_tokens(16, 32, 32, 1, 2, 2))
    return {
        "quiz_tokens": spacetime_tokens(16, 32, 32, 2, 2, 2).total,
        "quiz_doubling": double / short,
        "regimes": regime_bands(),
        "start_std": START_STD,
        "steps": STEPS,
        "independent_jump": expected_jump(8, 0.0),
        "joint_jump": expected_jump(8, 1.0),
    }
