"""Classifier-free guidance (EQ MM3.4): combine the conditional and unconditional noise estimates."""

from __future__ import annotations

from collections.abc import Callable

import torch

Tensor = torch.Tensor
Context = Tensor | tuple[Tensor, ...]  # a caption encoding, or several tensors (e.g. encoding and key mask)
ModelEps = Callable[[Tensor, int, Context], Tensor]


def cfg_combine(eps_uncond, eps_cond, scale: float, rescale: float = 0.0):
    """EQ MM3.4: eps_uncond + s (eps_cond - eps_uncond); s = 0 unconditional, s = 1 plain conditional.

    rescale in [0, 1] (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", eq. 15-16)
    mixes in the guided estimate rescaled, per sample, to the conditional estimate's std, which undoes the
    over-exposure of large s. Tensors are (B, ...), the std taken over all but the batch axis.
    """
    guided = eps_uncond + scale * (eps_cond - eps_uncond)
    if rescale == 0.0:
        return guided
    if not 0.0 <= rescale <= 1.0:
        raise ValueError(f"rescale must be in [0, 1], got {rescale}")
    guided, eps_cond = torch.as_tensor(guided), torch.as_tensor(eps_cond)
    dims = tuple(range(1, guided.ndim)) or None  # a lone vector or scalar counts as one sample
    std_cond = eps_cond.std(dim=dims, keepdim=True, correction=0)
    std_guided = guided.std(dim=dims, keepdim=True, correction=0).clamp_min(torch.finfo(guided.dtype).tiny)
    return rescale * (guided * (std_cond / std_guided)) + (1.0 - rescale) * guided


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


class GuidedDenoiser:
    """denoise(x_t, t) -> guided eps for the samplers: one batched forward per step for cond and uncond together.

    The network runs once per call on cat([x_t, x_t]) with cat([uncond, cond]); the uncond half is skipped when
    s == 1 or t is outside `interval` (t_lo, t_hi), inclusive, where guidance applies (plain conditional there),
    and the cond half when s == 0 and rescale == 0. After every call, `last_eps_uncond`, `last_eps_cond` (None when
    skipped) and `last_eps` hold the estimates for visualisation; `forwards` counts network calls.
    """

    def __init__(
        self,
        model_eps: ModelEps,
        cond: Context,
        uncond: Context,
        scale: float,
        rescale: float = 0.0,
        interval: tuple[int, int] | None = None,
    ) -> None:
        if not 0.0 <= rescale <= 1.0:
            raise ValueError(f"rescale must be in [0, 1], got {rescale}")
        if _tail_shape(cond) != _tail_shape(uncond):
            raise ValueError(f"cond {_tail_shape(cond)} and uncond {_tail_shape(uncond)} differ beyond the batch axis")
        self.model_eps, self.cond, self.uncond = model_eps, cond, uncond  # (B or 1, L, D) each
        self.scale, self.rescale, self.interval = float(scale), float(rescale), interval
        self.last_eps_uncond: Tensor | None = None
        self.last_eps_cond: Tensor | None = None
        self.last_eps: Tensor | None = None
        self.forwards = 0

    def guides_at(self, t: int) -> bool:
        """Whether timestep t gets guidance (both halves) rather than the plain conditional estimate."""
        if self.scale == 1.0:
            return False
        return self.interval is None or self.interval[0] <= int(t) <= self.interval[1]

    def __call__(self, x_t: Tensor, t: int) -> Tensor:
        batch = x_t.shape[0]
        cond, uncond = _to_batch(self.cond, batch), _to_batch(self.uncond, batch)
        self.forwards += 1
        if not self.guides_at(t):
            eps_uncond, eps_cond = None, self.model_eps(x_t, t, cond)
            eps = eps_cond
        elif self.scale == 0.0 and self.rescale == 0.0:
            eps_uncond, eps_cond = self.model_eps(x_t, t, uncond), None
            eps = eps_uncond
        else:
            both = self.model_eps(torch.cat([x_t, x_t]), t, _cat(uncond, cond))  # (2B, ...)
            eps_uncond, eps_cond = both.chunk(2)
            eps = cfg_combine(eps_uncond, eps_cond, self.scale, self.rescale)
        self.last_eps_uncond, self.last_eps_cond, self.last_eps = eps_uncond, eps_cond, eps
        return eps


def make_guided_denoiser(
    model_eps: ModelEps,
    cond: Context,
    uncond: Context,
    scale: float,
    rescale: float = 0.0,
    interval: tuple[int, int] | None = None,
) -> GuidedDenoiser:
    """Build the denoise(x_t, t) a sampler consumes from a network model_eps(x, t, context) -> eps (EQ MM3.4)."""
    return GuidedDenoiser(model_eps, cond, uncond, scale, rescale, interval)
