"""The transformer of chapter §3.4's two token families, over a VQ tokenizer's codes, conditioned on a caption.

One architecture, two ways of reading the grid of N = grid² codebook indices:
- autoregressive (`causal=True`, EQ MM3.5): slot i holds token i-1 (a start token at slot 0) and predicts token i,
  each slot seeing only the slots before it, so p(tokens) = prod_i p(token_i | tokens_<i, caption) in raster order;
  sampling takes N sequential forwards, each one new slot against a cache of the earlier slots' keys and values;
- masked (`causal=False`, MaskGIT, Chang et al. 2022): every slot holds its token or the mask token, every slot
  sees every other, and the logits at masked slots predict what is hidden; sampling fills the grid in a few
  parallel rounds.
Each block: causal or full self-attention, cross-attention to the caption encoder's context, MLP (pre-norm).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from app.nets.dit import Attention
from app.nets.text import TextEncoder, TextEncoderConfig


@dataclass
class TokenTransformerConfig:
    """Sizes; token id `codebook_size` is the start token (autoregressive) or the mask token (masked)."""

    codebook_size: int = 512
    grid: int = 16  # tokens per side: N = grid * grid
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    context_dim: int = 128  # the caption encoder's width
    causal: bool = True

    @property
    def tokens(self) -> int:
        return self.grid * self.grid

    @property
    def special_token(self) -> int:
        return self.codebook_size

    @property
    def family(self) -> str:
        return "autoregressive" if self.causal else "masked"

    def to_dict(self) -> dict:
        return asdict(self)


def mask_ratio(progress: torch.Tensor | float) -> torch.Tensor | float:
    """MaskGIT's cosine schedule: the share of tokens masked at progress in [0, 1] (1 at 0, 0 at 1)."""
    if isinstance(progress, torch.Tensor):
        return torch.cos(0.5 * math.pi * progress)
    return math.cos(0.5 * math.pi * progress)


class KVCache:
    """The keys and values of the slots seen so far, per block: (B, heads, n, d) each."""

    def __init__(self, depth: int):
        self.keys: list[torch.Tensor | None] = [None] * depth
        self.values: list[torch.Tensor | None] = [None] * depth

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class SelfAttention(nn.Module):
    """Multi-head self-attention, causal or full, optionally against a KV cache of earlier slots."""

    def __init__(self, width: int, heads: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B,h,n,d)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        # With a cache the new slots come last, so a causal mask aligned to the end is needed for n > 1.
        causal = self.causal and n > 1
        if causal and cache is not None and k.shape[2] != n:
            mask = torch.ones(n, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - n)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class TokenBlock(nn.Module):
    """x + self-attention, x + cross-attention to the caption, x + MLP; each on a LayerNorm of x."""

    def __init__(self, config: TokenTransformerConfig):
        super().__init__()
        width = config.width
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, config.heads, config.causal)
        self.norm2 = nn.LayerNorm(width)
        self.cross_attn = Attention(width, config.heads, config.context_dim)
        self.norm3 = nn.LayerNorm(width)
        hidden = int(width * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, context_kv: torch.Tensor, keep: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache, layer)
        x = x + self.cross_attn(self.norm2(x), keep=keep, kv=context_kv)
        return x + self.mlp(self.norm3(x))


class TokenTransformer(nn.Module):
    """Slot tokens (B, n) in [0, K] -> logits over the K codes (B, n, K), given a caption context (B, L, D)."""

    def __init__(self, config: TokenTransformerConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.codebook_size + 1, config.width)
        self.pos_embed = nn.Parameter(torch.zeros(config.tokens, config.width))
        self.blocks = nn.ModuleList(TokenBlock(config) for _ in range(config.depth))
        self.norm_out = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.codebook_size)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def context_kv(self, context: torch.Tensor) -> list[torch.Tensor]:
        """Each block's cross-attention keys and values of a caption context, computed once per sample."""
        return [block.cross_attn.kv(context) for block in self.blocks]

    def forward(self, slots: torch.Tensor, context: torch.Tensor, keep: torch.Tensor,
                cache: KVCache | None = None, context_kv: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (B, n, K) for slots (B, n) placed after the cache's slots (at positions cache.length...)."""
        start = 0 if cache is None else cache.length
        x = self.embed(slots) + self.pos_embed[start:start + slots.shape[1]]
        kvs = self.context_kv(context) if context_kv is None else context_kv
        for layer, (block, kv) in enumerate(zip(self.blocks, kvs)):
            x = block(x, kv, keep, cache, layer)
        return self.head(self.norm_out(x))

    def start_slots(self, tokens: torch.Tensor) -> torch.Tensor:
        """Autoregressive inputs for target tokens (B, N): the start token, then tokens shifted right by one."""
        start = torch.full_like(tokens[:, :1], self.config.special_token)
        return torch.cat([start, tokens[:, :-1]], dim=1)


def _sized(**base):
    return lambda **kw: TokenTransformerConfig(**{**base, **kw})


TOKEN_SIZES = {
    "tiny": _sized(width=32, depth=1, heads=2, context_dim=32),
    "small": _sized(width=128, depth=4, heads=4),
    "base": _sized(width=192, depth=6, heads=6),
}


@dataclass
class CaptionedTokensConfig:
    """A token family's two networks, saved in one file: its caption encoder and its transformer."""

    text: TextEncoderConfig
    transformer: TokenTransformerConfig

    def __post_init__(self) -> None:  # JSON gives back dicts
        if isinstance(self.text, dict):
            self.text = TextEncoderConfig(**self.text)
        if isinstance(self.transformer, dict):
            self.transformer = TokenTransformerConfig(**self.transformer)

    def to_dict(self) -> dict:
        return asdict(self)


class CaptionedTokens(nn.Module):
    """Caption token ids (B, L) and slots (B, n) -> logits (B, n, K): the caption encoder, then the transformer."""

    def __init__(self, config: CaptionedTokensConfig):
        super().__init__()
        self.config = config
        self.text = TextEncoder(config.text)
        self.transformer = TokenTransformer(config.transformer)

    def forward(self, slots: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        context, keep = self.text(captions)
        return self.transformer(slots, context, keep)
