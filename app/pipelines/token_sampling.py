"""Sampling the token families of chapter §3.4: raster order one token per forward, or MaskGIT's parallel rounds.

Both guide on the logits the way EQ MM3.4 guides noise estimates (as Parti does): l = l(∅) + s (l(c) - l(∅)),
the unconditional and conditional rows of one batched forward. A token is drawn as argmax(l / T + Gumbel noise),
which samples softmax(l / T) exactly; the noise comes from each image's own generator, so image i depends on its
seed alone. T = 0 takes the argmax; top_k > 0 keeps only the k largest logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from app.nets.token_transformer import KVCache, TokenTransformer, mask_ratio

UNKNOWN = -1  # a token not drawn yet, in the grids the callbacks see
CHOICE_TEMPERATURE = 4.5  # MaskGIT's noise on the confidence that picks which tokens to keep, annealed to 0


@dataclass
class TokenStep:
    """One step of a token sampler: step `index` of `total`, the grid so far (B, N) with UNKNOWN where nothing
    is drawn yet, and which tokens this step drew (or, for the masked family, kept) (B, N) bool."""

    index: int
    total: int
    tokens: torch.Tensor
    new: torch.Tensor
    forwards: int  # sequential network forwards so far
    seconds: float = 0.0

    def rows(self, start: int, stop: int) -> TokenStep:
        """The step as seen by the samples start..stop-1 of the batch (one job's share of a shared batch)."""
        return replace(self, tokens=self.tokens[start:stop], new=self.new[start:stop])


def guided_logits(logits: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Rows [unconditional; conditional] (2B, ..., K) -> l(∅) + s (l(c) - l(∅)) (B, ..., K); scale per sample."""
    uncond, cond = logits.float().chunk(2)
    if isinstance(scale, torch.Tensor):
        scale = scale.to(logits.device).view(-1, *([1] * (cond.dim() - 1)))
    return uncond + scale * (cond - uncond)


def gumbel(shape: tuple[int, ...], generators: list[torch.Generator], device: torch.device) -> torch.Tensor:
    """Gumbel(0, 1) noise (B, *shape), row b from generators[b]."""
    u = torch.stack([torch.rand(shape, generator=g) for g in generators]).to(device)
    return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))


def draw(logits: torch.Tensor, temperature: float, top_k: int, generators: list[torch.Generator]) -> torch.Tensor:
    """One token per row of logits (B, ..., K) from softmax(logits / T) restricted to the top_k (0: all)."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    noise = gumbel(tuple(logits.shape[1:]), generators, logits.device)
    if temperature <= 0:
        return logits.argmax(-1)
    return (logits / temperature + noise).argmax(-1)


def _contexts(cond: tuple[torch.Tensor, torch.Tensor], uncond: tuple[torch.Tensor, torch.Tensor], b: int):
    """Caption contexts (1 or B rows each) -> rows [unconditional; conditional] (2B, L, D), key masks (2B, L)."""
    def rows(t: torch.Tensor) -> torch.Tensor:
        return t.expand(b, *t.shape[1:]) if t.shape[0] == 1 else t

    return (torch.cat([rows(uncond[0]), rows(cond[0])]), torch.cat([rows(uncond[1]), rows(cond[1])]))


@torch.no_grad()
def sample_autoregressive(model: TokenTransformer, cond, uncond, scale: float | torch.Tensor, temperature: float,
                          top_k: int, generators: list[torch.Generator],
                          callback: Callable[[TokenStep], None] | None = None, every: int = 1) -> torch.Tensor:
    """Tokens (B, N) in raster order, one forward per token against a KV cache (EQ MM3.5).

    callback(TokenStep) after every `every` tokens (and after the last), with the grid drawn so far.
    """
    b, n = len(generators), model.config.tokens
    context, keep = _contexts(cond, uncond, b)
    context_kv = model.context_kv(context)
    cache = KVCache(model.config.depth)
    device = context.device
    tokens = torch.full((b, n), UNKNOWN, dtype=torch.long, device=device)
    slot = torch.full((2 * b, 1), model.config.special_token, dtype=torch.long, device=device)
    total = math.ceil(n / every)
    last_reported = 0
    for i in range(n):
        logits = model(slot, context, keep, cache, context_kv)[:, -1]  # (2B, K)
        token = draw(guided_logits(logits, scale), temperature, top_k, generators)  # (B,)
        tokens[:, i] = token
        slot = torch.cat([token, token])[:, None]
        if callback is not None and ((i + 1) % every == 0 or i == n - 1):
            new = torch.zeros_like(tokens, dtype=torch.bool)
            new[:, last_reported:i + 1] = True
            callback(TokenStep((i + 1 - 1) // every, total, tokens.clone(), new, forwards=i + 1))
            last_reported = i + 1
    return tokens


@torch.no_grad()
def sample_masked(model: TokenTransformer, cond, uncond, scale: float | torch.Tensor, temperature: float,
                  top_k: int, rounds: int, generators: list[torch.Generator],
                  callback: Callable[[TokenStep], None] | None = None) -> torch.Tensor:
    """Tokens (B, N) in `rounds` parallel rounds (MaskGIT): predict every masked token, keep the most confident,
    re-mask the rest so that a cosine share of the grid is still masked after each round, none after the last."""
    b, n, mask = len(generators), model.config.tokens, model.config.special_token
    rounds = max(1, min(rounds, n))
    context, keep = _contexts(cond, uncond, b)
    context_kv = model.context_kv(context)
    device = context.device
    slots = torch.full((b, n), mask, dtype=torch.long, device=device)
    for r in range(rounds):
        logits = guided_logits(model(torch.cat([slots, slots]), context, keep, context_kv=context_kv), scale)
        unknown = slots == mask  # (B, N)
        drawn = draw(logits, temperature, top_k, generators)  # (B, N)
        drawn = torch.where(unknown, drawn, slots)
        probs = torch.softmax(logits / max(temperature, 1e-6), dim=-1).gather(-1, drawn[..., None])[..., 0]
        # Still masked after this round: the cosine share, at least one fewer than now, none after the last.
        left = unknown.sum(1)  # (B,)
        target = torch.full_like(left, int(math.floor(n * mask_ratio((r + 1) / rounds))))
        still = torch.minimum(target, left - 1).clamp_min(0) if r < rounds - 1 else torch.zeros_like(left)
        anneal = CHOICE_TEMPERATURE * (1 - (r + 1) / rounds)
        confidence = torch.log(probs.clamp_min(1e-20)) + anneal * gumbel((n,), generators, device)
        confidence = confidence.masked_fill(~unknown, math.inf)  # tokens kept earlier stay
        order = confidence.argsort(dim=1)  # least confident first
        remask = torch.zeros_like(unknown)
        for row in range(b):
            remask[row, order[row, : int(still[row])]] = True
        new_slots = drawn.masked_fill(remask, mask)
        if callback is not None:
            grid = new_slots.masked_fill(new_slots == mask, UNKNOWN)
            callback(TokenStep(r, rounds, grid, unknown & ~remask, forwards=r + 1))
        slots = new_slots
    return slots


@torch.no_grad()
def token_log_probs(model: TokenTransformer, tokens: torch.Tensor, context: torch.Tensor,
                    keep: torch.Tensor) -> torch.Tensor:
    """log p(token_i | tokens_<i, caption) of each token (B, N) in nats: EQ MM3.5's factors, one teacher-forced
    forward of the autoregressive model."""
    logits = model(model.start_slots(tokens), context, keep).float()  # (B, N, K)
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None])[..., 0]
