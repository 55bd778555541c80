"""A small caption encoder, trained jointly with the denoiser (the 'text embedding c' of §3.2)."""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TextEncoderConfig:
    """Sizes of the caption encoder; token id 0 is padding."""

    vocab_size: int = 32
    max_tokens: int = 12
    width: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a key padding mask."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B,h,N,d)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # (B,h,N,d)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), keep)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Token ids (B, L) -> context (B, L, D) and a key mask (B, L), True where a key is real.

    An empty caption (all padding) maps to a learned null context with every position valid, so
    classifier-free guidance (EQ MM3.4) extrapolates away from a trained "nothing", and cross
    attention never sees a fully masked row.
    """

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = config
        self.token_embed = nn.Embedding(config.vocab_size, config.width)
        self.pos_embed = nn.Parameter(torch.zeros(config.max_tokens, config.width))
        self.blocks = nn.ModuleList(
            EncoderBlock(config.width, config.heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm_out = nn.LayerNorm(config.width)
        self.null_context = nn.Parameter(torch.zeros(config.max_tokens, config.width))
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        # The null context starts at the scale of a real (layer-normed) context, not at zero.
        nn.init.normal_(self.null_context, std=1.0)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = tokens != 0  # (B, L)
        empty = ~keep.any(dim=1)  # (B,)
        # Empty rows attend everywhere inside the encoder (their output is replaced below).
        attend = keep | empty[:, None]
        x = self.token_embed(tokens) + self.pos_embed[: tokens.shape[1]]  # (B, L, D)
        for block in self.blocks:
            x = block(x, attend)
        x = self.norm_out(x)
        null = self.null_context[: tokens.shape[1]].to(x.dtype).expand_as(x)
        context = torch.where(empty[:, None, None], null, x)  # (B, L, D)
        return context, attend


def _sized(**base):
    return lambda **kw: TextEncoderConfig(**{**base, **kw})


TEXT_SIZES = {
    "tiny": _sized(width=32, depth=1, heads=2),
    "small": _sized(width=128, depth=2, heads=4),
    "base": _sized(width=128, depth=2, heads=4),
}
