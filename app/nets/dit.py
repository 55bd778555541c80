"""A diffusion transformer over latent patches (Peebles & Xie, 2023) with caption cross-attention."""

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiTConfig:
    """Sizes of the denoiser; the latent is latent_channels x latent_size x latent_size."""

    latent_size: int = 8
    latent_channels: int = 4
    patch: int = 1
    width: int = 192
    depth: int = 6
    heads: int = 6
    mlp_ratio: float = 4.0
    context_dim: int = 128  # the text encoder's width
    pooled_text: bool = True  # also add the mean caption vector to the adaLN conditioning

    def to_dict(self) -> dict:
        return asdict(self)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, with per-sample (B, D) shift and scale."""
    return x * (1 + scale[:, None]) + shift[:, None]


# ---------------------------------------------------------------------------------------------
# Embedders
# ---------------------------------------------------------------------------------------------


def sincos_2d(width: int, grid: int) -> np.ndarray:
    """Fixed 2-D sine-cosine positions (grid*grid, width): half the channels per axis."""
    assert width % 4 == 0, "width must be divisible by 4 for 2-D sin-cos positions"
    omega = 1.0 / 10000 ** (np.arange(width // 4, dtype=np.float64) / (width / 4.0))  # (D/4,)
    ys, xs = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")

    def axis(pos: np.ndarray) -> np.ndarray:
        out = np.outer(pos.reshape(-1), omega)  # (N, D/4)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (N, D/2)

    return np.concatenate([axis(ys), axis(xs)], axis=1).astype(np.float32)  # (N, D)


class TimestepEmbedder(nn.Module):
    """Scalar timestep -> sinusoidal features -> MLP -> (B, D)."""

    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]  # (B, D/2)
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, D)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(t, self.freq_dim))


# ---------------------------------------------------------------------------------------------
# Attention and the DiT block
# ---------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head attention; self-attention when no context is given, else cross-attention."""

    def __init__(self, width: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.cross = context_dim is not None
        if self.cross:
            self.q = nn.Linear(width, width)
            self.kv = nn.Linear(context_dim, 2 * width)
        else:
            self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def _split(self, x: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
        b, n, _ = x.shape
        return x.reshape(b, n, parts, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # each (B,h,N,d)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                keep: torch.Tensor | None = None, kv: torch.Tensor | None = None) -> torch.Tensor:
        """kv: self.kv(context) computed beforehand (B, L, 2D), when many rows share one context."""
        b, n, d = x.shape
        if self.cross:
            (q,) = self._split(self.q(x), 1)
            k, v = self._split(self.kv(context) if kv is None else kv, 2)
        else:
            q, k, v = self._split(self.qkv(x), 3)
        mask = None if keep is None else keep[:, None, None, :]  # (B,1,1,L): True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B,h,N,d)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """adaLN-Zero block: gated self-attention, gated cross-attention to the caption, gated MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, context_dim: int):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.cross_attn = Attention(width, heads, context_dim)
        self.norm3 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        # shift, scale and gate for each of the three sub-layers
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(width, 9 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        s1, sc1, g1, s2, sc2, g2, s3, sc3, g3 = self.adaLN(c).chunk(9, dim=-1)  # each (B, D)
        x = x + g1[:, None] * self.attn(modulate(self.norm1(x), s1, sc1))
        x = x + g2[:, None] * self.cross_attn(modulate(self.norm2(x), s2, sc2), context, keep)
        return x + g3[:, None] * self.mlp(modulate(self.norm3(x), s3, sc3))


class FinalLayer(nn.Module):
    """adaLN, then a linear map from each token to its patch of the output."""

    def __init__(self, width: int, patch: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, patch * patch * out_channels)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class DiT(nn.Module):
    """v_hat = DiT(x_t, t, caption context): the denoiser of EQ MM3.2, run in the VAE latent (EQ MM3.3)."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        c, p, d = config.latent_channels, config.patch, config.width
        grid = config.latent_size // p
        self.patch_embed = nn.Conv2d(c, d, kernel_size=p, stride=p)
        self.register_buffer("pos_embed", torch.from_numpy(sincos_2d(d, grid))[None], persistent=False)  # (1,N,D)
        self.t_embed = TimestepEmbedder(d)
        self.text_pool = nn.Linear(config.context_dim, d) if config.pooled_text else None
        self.blocks = nn.ModuleList(
            DiTBlock(d, config.heads, config.mlp_ratio, config.context_dim) for _ in range(config.depth)
        )
        self.final = FinalLayer(d, p, c)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Xavier for linear layers, then the adaLN-Zero rule."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        for layer in self.t_embed.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: every modulation layer starts at zero, so each gate is 0 and a fresh block is
        # the identity (the residual stream passes through untouched); the output layer is zero too,
        # so a fresh DiT predicts 0. Training then opens each block gradually (Peebles & Xie, §3.2).
        for block in self.blocks:
            nn.init.zeros_(block.adaLN[-1].weight)
            nn.init.zeros_(block.adaLN[-1].bias)
        nn.init.zeros_(self.final.adaLN[-1].weight)
        nn.init.zeros_(self.final.adaLN[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, p*p*C) -> (B, C, H, W)."""
        p, c = self.config.patch, self.config.latent_channels
        g = self.config.latent_size // p
        x = x.reshape(x.shape[0], g, g, p, p, c)
        return torch.einsum("bhwpqc->bchpwq", x).reshape(x.shape[0], c, g * p, g * p)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x_t (B,C,H,W), t (B,) or a scalar, context (B,L,Dc), mask (B,L) True = real key -> v_hat (B,C,H,W)."""
        t = torch.as_tensor(t, device=x_t.device).expand(x_t.shape[0])  # (B,)
        x = self.patch_embed(x_t).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, D)
        c = self.t_embed(t)  # (B, D)
        if self.text_pool is not None:
            m = mask.to(context.dtype)[..., None]  # (B, L, 1)
            c = c + self.text_pool((context * m).sum(1) / m.sum(1).clamp_min(1.0))
        for block in self.blocks:
            x = block(x, c, context, mask)  # (B, N, D)
        return self.unpatchify(self.final(x, c))  # (B, C, H, W)


def _sized(**base):
    return lambda **kw: DiTConfig(**{**base, **kw})


# "small" is sized for the CPU server: 20 guided steps (batch 2) took 0.16-0.20 s on 2 shared cores.
DIT_SIZES = {
    "tiny": _sized(width=32, depth=2, heads=2, context_dim=32),
    "small": _sized(width=160, depth=6, heads=5, context_dim=128),
    "base": _sized(width=192, depth=6, heads=6, context_dim=128),
}
