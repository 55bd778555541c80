"""Classifier-free guidance (EQ MM3.4): combine the conditional and unconditional noise estimates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
Context = Tensor | tuple[Tensor, ...]  # a caption encoding, or several tensors (e.g. encoding and key mask)
ModelEps = Callable[[Tensor, int, Context], Tensor]


def _check_rescale(rescale) -> None:
    low, high = (float(rescale.min()), float(rescale.max())) if isinstance(rescale, Tensor) else (rescale, rescale)
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"rescale must be in [0, 1], got {rescale}")


def _is_zero(value) -> bool:
    return bool((value == 0).all()) if isinstance(value, Tensor) else value == 0.0


def cfg_combine(eps_uncond, eps_cond, scale, rescale=0.0):
    """EQ MM3.4: eps_uncond + s (eps_cond - eps_uncond); s = 0 unconditional, s = 1 plain conditional.

    rescale in [0, 1] (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", eq. 15-16)
    mixes in the guided estimate rescaled, per sample, to the conditional estimate's std, which undoes the
    over-exposure of large s. Tensors are (B, ...), the std taken over all but the batch axis; scale and rescale
    are numbers or per-sample tensors shaped to broadcast, (B, 1, ..., 1).
    """
    guided = eps_uncond + scale * (eps_cond - eps_uncond)
    if _is_zero(rescale):
        return guided
    _check_rescale(rescale)
    guided, eps_cond = torch.as_tensor(guided), torch.as_tensor(eps_cond)
    dims = tuple(range(1, guided.ndim)) or None  # a lone vector or scalar counts as one sample
    std_cond = eps_cond.std(dim=dims, keepdim=True, correction=0)
    std_guided = guided.std(dim=dims, keepdim=True, correction=0).clamp_min(torch.finfo(guided.dtype).tiny)
    return rescale * (guided * (std_cond / std_guided)) + (1.0 - rescale) * guided


METHODS = ("cfg", "apg", "cfg++")
APG_ETA = 0.0  # weight of the update's part parallel to the conditional prediction (the paper's default)
APG_MOMENTUM = -0.5  # negative: each step's update pushes against the running average of the earlier ones
# Cap on the x0-space update's norm. The paper's r = 15 is for Stable Diffusion's 4x64x64 latents; per element that
# is 15 / sqrt(16,384) = 0.117, or 1.9 for our 4x8x8 (256 numbers): the norm_threshold below is per sqrt(element).
APG_NORM_THRESHOLD = 0.117


def apg_update(diff: Tensor, pred_cond: Tensor, running: Tensor | None, eta: float = APG_ETA,
               momentum: float = APG_MOMENTUM, norm_threshold: float = APG_NORM_THRESHOLD) -> tuple[Tensor, Tensor]:
    """Adaptive projected guidance's update (Sadat et al. 2024, "Eliminating Oversaturation and Artifacts of High
    Guidance Scales in Diffusion Models", Algorithm 1) for x0 predictions (B, ...): diff = x0_cond - x0_uncond gets
    the momentum term (running average, None on the first step), is capped to a norm of norm_threshold *
    sqrt(numel) per sample, and is split into its parts parallel and orthogonal to x0_cond; the parallel part,
    which mostly raises saturation, is weighted by eta. Returns (update, new running average); the guided
    prediction is x0_cond + (s - 1) * update, which is CFG exactly for eta = 1, no momentum and no cap."""
    dims = tuple(range(1, diff.ndim))
    running = diff if running is None else diff + momentum * running
    update = running
    if norm_threshold > 0:
        limit = norm_threshold * float(update[0].numel()) ** 0.5
        norm = update.flatten(1).norm(dim=1).view(-1, *([1] * len(dims)))
        update = update * torch.clamp(limit / norm.clamp_min(1e-12), max=1.0)
    unit = pred_cond / pred_cond.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * len(dims)))
    parallel = (update * unit).sum(dims, keepdim=True) * unit
    return (update - parallel) + eta * parallel, running


def _to_batch(context: Context, batch: int) -> Context:
    """Repeat a (1, L, D) context to (batch, L, D); leave a (batch, L, D) one alone."""
    if isinstance(context, tuple):
        return tuple(_to_batch(part, batch) for part in context)
    if context.shape[0] == batch:
        return context
    if context.shape[0] == 1:
        return context.expand(batch, *context.shape[1:])
    raise ValueError(f"context batch {context.shape[0]} does not match the sample batch {batch}")


def _cat(a: Context, b: Context) -> Context:
    """Stack two contexts along the batch axis, part by part for tuples."""
    if isinstance(a, tuple):
        return tuple(torch.cat([x, y]) for x, y in zip(a, b, strict=True))
    return torch.cat([a, b])


def _tail_shape(context: Context) -> tuple:
    return tuple(p.shape[1:] for p in context) if isinstance(context, tuple) else context.shape[1:]


def _rows(value, batch: int, name: str) -> Tensor | None:
    """A per-sample tensor as (batch,) float, or None for a plain number (shared by every sample)."""
    if not isinstance(value, Tensor):
        return None
    rows = value.reshape(-1).float()
    if rows.numel() != batch:
        raise ValueError(f"{rows.numel()} values of {name} for a batch of {batch}")
    return rows


def _select(context: Context, rows: Tensor) -> Context:
    """The rows of a (B, ...) tensor or tuple of them where rows (B,) is True; no copy when every row is."""
    if bool(rows.all()):
        return context
    if isinstance(context, tuple):
        return tuple(part[rows] for part in context)
    return context[rows]


def _broadcast(rows: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against like (B, ...)."""
    return rows.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))


@dataclass(frozen=True)
class GuidanceEstimates:
    """One call's estimates (B, ...): eps(x_t, t, ∅), eps(x_t, t, c) and the guided result of EQ MM3.4.

    A half is None when no sample needed it; rows that skipped it are zero, and uncond_rows, cond_rows (B,) bool
    say which rows hold one.
    """

    eps_uncond: Tensor | None
    eps_cond: Tensor | None
    eps: Tensor
    uncond_rows: Tensor
    cond_rows: Tensor


class GuidedDenoiser:
    """denoise(x_t, t) -> guided eps for the samplers: one batched forward per step for cond and uncond together.

    The network runs once per call on cat([x_t[u], x_t[c]]) with cat([uncond[u], cond[c]]), where u are the
    samples that get guidance at t and c those that need the conditional estimate: a sample skips the uncond half
    when s == 1 or t is outside its `interval` (t_lo, t_hi), inclusive, where guidance applies (plain conditional
    there), and the cond half when s == 0 and rescale == 0. scale and rescale are numbers, or tensors with one value
    per sample (B,), and interval a pair, None, or a (B, 2) tensor of per-sample pairs (t_lo > t_hi: never guided),
    so jobs with different settings share one forward. After every call `last` holds that call's estimates (a
    GuidanceEstimates, replaced whole, never changed), for whoever shows a step; `forwards` counts network calls.
    """

    def __init__(
        self,
        model_eps: ModelEps,
        cond: Context,
        uncond: Context,
        scale: float | Tensor,
        rescale: float | Tensor = 0.0,
        interval: tuple[int, int] | Tensor | None = None,
        method: str = "cfg",
        alphas_cumprod: Tensor | None = None,
    ) -> None:
        _check_rescale(rescale)
        if method not in METHODS:
            raise ValueError(f"unknown guidance method {method!r}; choose one of {METHODS}")
        if method == "apg" and alphas_cumprod is None:
            raise ValueError("APG guides the x0 prediction: it needs the schedule's alphas_cumprod")
        self.method, self.alphas_cumprod = method, alphas_cumprod
        self._running: Tensor | None = None  # APG's momentum
        if _tail_shape(cond) != _tail_shape(uncond):
            raise ValueError(f"cond {_tail_shape(cond)} and uncond {_tail_shape(uncond)} differ beyond the batch axis")
        self.model_eps, self.cond, self.uncond = model_eps, cond, uncond  # (B or 1, L, D) each
        self.scale = scale if isinstance(scale, Tensor) else float(scale)
        self.rescale = rescale if isinstance(rescale, Tensor) else float(rescale)
        if isinstance(interval, Tensor) and (interval.ndim != 2 or interval.shape[1] != 2):
            raise ValueError(f"per-sample intervals must be (B, 2), got {tuple(interval.shape)}")
        self.interval = interval
        self.last: GuidanceEstimates | None = None
        self.forwards = 0

    def guided_rows(self, t: int, batch: int) -> Tensor:
        """(batch,) bool: which samples get guidance (both halves) at timestep t rather than the plain conditional."""
        scale = _rows(self.scale, batch, "scale")
        rows = torch.full((batch,), self.scale != 1.0) if scale is None else scale != 1.0
        if isinstance(self.interval, Tensor):
            if self.interval.shape[0] != batch:
                raise ValueError(f"{self.interval.shape[0]} intervals for a batch of {batch}")
            lo, hi = self.interval.cpu().unbind(1)
            rows = rows & (lo <= int(t)) & (int(t) <= hi)
        elif self.interval is not None:
            rows = rows & (self.interval[0] <= int(t) <= self.interval[1])
        return rows

    def guides_at(self, t: int) -> bool:
        """Whether timestep t gets guidance (both halves) for any sample rather than the plain conditional estimate."""
        batch = self.scale.numel() if isinstance(self.scale, Tensor) else (
            self.interval.shape[0] if isinstance(self.interval, Tensor) else 1)
        return bool(self.guided_rows(t, batch).any())

    def __call__(self, x_t: Tensor, t: int) -> Tensor:
        batch = x_t.shape[0]
        cond, uncond = _to_batch(self.cond, batch), _to_batch(self.uncond, batch)
        scale, rescale = _rows(self.scale, batch, "scale"), _rows(self.rescale, batch, "rescale")
        need_u = self.guided_rows(t, batch)  # (B,)
        only_u = (scale == 0.0) if scale is not None else torch.full((batch,), self.scale == 0.0)
        only_u &= (rescale == 0.0) if rescale is not None else torch.full((batch,), self.rescale == 0.0)
        need_c = ~(need_u & only_u)
        dev = x_t.device
        self.forwards += 1
        n_u = int(need_u.sum())
        halves = [(_select(x_t, rows.to(dev)), _select(ctx, rows.to(dev)))
                  for ctx, rows in ((uncond, need_u), (cond, need_c)) if rows.any()]  # uncond half first
        x_in = halves[0][0] if len(halves) == 1 else torch.cat([halves[0][0], halves[1][0]])
        ctx_in = halves[0][1] if len(halves) == 1 else _cat(halves[0][1], halves[1][1])
        out = self.model_eps(x_in, t, ctx_in)  # (n_u + n_c, ...)
        eps_u_rows, eps_c_rows = out[:n_u], out[n_u:]
        eps_uncond = self._full(eps_u_rows, need_u, x_t) if n_u else None
        eps_cond = self._full(eps_c_rows, need_c, x_t) if need_c.any() else None
        both = need_u & need_c
        if bool(both.all()):
            s = self.scale if scale is None else _broadcast(scale, x_t)
            r = self.rescale if rescale is None else _broadcast(rescale, x_t)
            eps = self._combine(x_t, t, eps_uncond, eps_cond, s, r)
        elif not need_u.any():
            eps = eps_cond
        elif not need_c.any():
            eps = eps_uncond
        else:
            eps = torch.where(_broadcast(need_u, x_t).bool(), eps_uncond, eps_cond)  # s = 0 rows, unguided rows
            if both.any():
                rows = both.to(dev)
                s = self.scale if scale is None else _broadcast(scale[both], x_t)
                r = self.rescale if rescale is None else _broadcast(rescale[both], x_t)
                eps[rows] = self._combine(x_t[rows], t, eps_uncond[rows], eps_cond[rows], s, r, rows)
        self.last = GuidanceEstimates(eps_uncond, eps_cond, eps, need_u, need_c)
        return eps

    def _combine(self, x_t: Tensor, t: int, eps_uncond: Tensor, eps_cond: Tensor, s, r,
                 rows: Tensor | None = None) -> Tensor:
        """The guided estimate of the rows that have both halves, by this denoiser's method."""
        if self.method != "apg":  # CFG++ guides eps as CFG does; it differs in how the sampler renoises
            return cfg_combine(eps_uncond, eps_cond, s, r)
        abar = float(self.alphas_cumprod[int(t)])
        a, b = abar ** 0.5, (1.0 - abar) ** 0.5
        x0_uncond, x0_cond = (x_t - b * eps_uncond) / a, (x_t - b * eps_cond) / a
        running = self._running if rows is None or self._running is None else self._running[rows]
        update, running = apg_update(x0_cond - x0_uncond, x0_cond, running)
        if rows is None:
            self._running = running
        else:
            if self._running is None:
                self._running = torch.zeros((len(rows), *running.shape[1:]), dtype=running.dtype,
                                            device=running.device)
            self._running[rows] = running
        x0 = x0_cond + (s - 1.0) * update
        return (x_t - a * x0) / b

    def direction_eps(self, eps_used: Tensor) -> Tensor:
        """The noise a DDIM step renoises with: its own estimate, except under CFG++ (Chung et al. 2024,
        "CFG++: Manifold-constrained Classifier Free Guidance for Diffusion Models", Algorithm 1), where the guided
        estimate only decides x0_hat and the way back to the next noise level follows the unconditional one."""
        last = self.last
        if self.method != "cfg++" or last is None or last.eps_uncond is None:
            return eps_used
        guided = (last.uncond_rows & last.cond_rows).to(eps_used.device)
        return torch.where(_broadcast(guided, eps_used).bool(), last.eps_uncond, eps_used)

    @staticmethod
    def _full(rows_out: Tensor, rows: Tensor, like: Tensor) -> Tensor:
        """Outputs for the selected rows -> (B, ...), zero where a row was not computed."""
        if bool(rows.all()):
            return rows_out
        full = torch.zeros_like(like)
        full[rows.to(like.device)] = rows_out.to(like.dtype)
        return full


def make_guided_denoiser(
    model_eps: ModelEps,
    cond: Context,
    uncond: Context,
    scale: float | Tensor,
    rescale: float | Tensor = 0.0,
    interval: tuple[int, int] | Tensor | None = None,
    method: str = "cfg",
    alphas_cumprod: Tensor | None = None,
) -> GuidedDenoiser:
    """Build the denoise(x_t, t) a sampler consumes from a network model_eps(x, t, context) -> eps (EQ MM3.4)."""
    return GuidedDenoiser(model_eps, cond, uncond, scale, rescale, interval, method, alphas_cumprod)
