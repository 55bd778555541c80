"""A space-time diffusion transformer: the image DiT's blocks, run over the tokens of every frame (EQ MM3.6).

Two ways to let frames see each other:
- "joint": one self-attention over all T_f x H' x W' tokens of the clip. Cost grows with N^2.
- "factorised": each image block attends within its frame (spatial), then a temporal block attends
  across the frames at each spatial position. Cost T_f * (H'W')^2 + H'W' * T_f^2.
The temporal blocks start with a zero gate (adaLN-Zero), so a fresh factorised model built from the
image DiT's weights is exactly the image model run frame by frame. A joint model built from them
starts with a zero frame embedding: every token placed as in the image model, but attending across
frames. At 8 frames of 8x8 latents (512 tokens) a joint step costs a little less than a factorised
one on this CPU (the temporal blocks' projections outweigh the bigger attention; bench/video.py), but
joint attention over image weights starts far from a good model: on the same 64 training clips the
loss was 0.337 for joint at step 0, 0.058 after 1,000 joint steps, and 0.052 for factorised at step 0.
So the committed video model is factorised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from app.nets.dit import Attention, DiT, DiTConfig, modulate

ATTENTION_KINDS = ("factorised", "joint")


@dataclass
class VideoDiTConfig:
    """The image DiT's sizes plus the clip length and how frames attend to each other."""

    latent_size: int = 8
    latent_channels: int = 4
    patch: int = 1
    width: int = 160
    depth: int = 6
    heads: int = 5
    mlp_ratio: float = 4.0
    context_dim: int = 128
    pooled_text: bool = True
    frames: int = 8  # the longest clip (frame positions are defined up to it)
    attention: str = "factorised"

    def __post_init__(self):
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")

    def image_config(self) -> DiTConfig:
        names = {f.name for f in fields(DiTConfig)}
        return DiTConfig(**{k: v for k, v in asdict(self).items() if k in names})

    @classmethod
    def from_image(cls, image: DiTConfig, frames: int = 8, attention: str = "factorised") -> VideoDiTConfig:
        return cls(**asdict(image), frames=frames, attention=attention)

    def to_dict(self) -> dict:
        return asdict(self)

    def tokens(self, frames: int | None = None) -> dict[str, int]:
        """EQ MM3.6 with p_t = 1: tokens per frame and per clip."""
        per_frame = (self.latent_size // self.patch) ** 2
        return {"per_frame": per_frame, "per_clip": per_frame * (frames or self.frames)}


def sincos_1d(width: int, length: int) -> np.ndarray:
    """Fixed sine-cosine positions (length, width) for frame indices 0..length-1."""
    omega = 1.0 / 10000 ** (np.arange(width // 2, dtype=np.float64) / (width / 2.0))
    angles = np.outer(np.arange(length, dtype=np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


class TemporalBlock(nn.Module):
    """Across frames at one spatial position: gated self-attention, then gated cross-attention to the caption.

    The caption reaches the temporal blocks directly (not only pooled into the adaLN vector): a model
    trained with the pooled path alone learned smooth motion in a random direction, never the one asked.
    """

    def __init__(self, width: int, heads: int, context_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        self.norm_cross = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.cross_attn = Attention(width, heads, context_dim)
        self.adaLN_cross = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        for layer in (self.adaLN[-1], self.adaLN_cross[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, frame_pos: torch.Tensor, context: torch.Tensor,
                keep: torch.Tensor, positions: int) -> torch.Tensor:
        """x (B*N, F, D); c (B, D) per clip; frame_pos (F, D); context (B, L, Dc), keep (B, L); positions = N."""
        shift, scale, gate = self.adaLN(c).repeat_interleave(positions, dim=0).chunk(3, dim=-1)  # (B*N, D) each
        h = modulate(self.norm(x), shift, scale) + frame_pos  # frame order enters only here
        x = x + gate[:, None] * self.attn(h)
        shift, scale, gate = self.adaLN_cross(c).repeat_interleave(positions, dim=0).chunk(3, dim=-1)
        kv = self.cross_attn.kv(context).repeat_interleave(positions, dim=0)  # once per clip, shared by its rows
        h = modulate(self.norm_cross(x) + frame_pos, shift, scale)
        return x + gate[:, None] * self.cross_attn(h, keep=keep.repeat_interleave(positions, dim=0), kv=kv)


class VideoDiT(nn.Module):
    """v_hat = VideoDiT(x_t, t, caption): x_t (B, F, C, h, w) latents of F frames -> (B, F, C, h, w)."""

    def __init__(self, config: VideoDiTConfig):
        super().__init__()
        self.config = config
        self.image = DiT(config.image_config())
        d = config.width
        if config.attention == "factorised":
            self.register_buffer("frame_pos", torch.from_numpy(sincos_1d(d, config.frames)), persistent=False)
            self.temporal = nn.ModuleList(TemporalBlock(d, config.heads, config.context_dim)
                                          for _ in range(config.depth))
        else:
            # Learned, from zero: a joint model built from image weights starts with every frame's tokens
            # placed as the image model places them, and learns what tells frames apart.
            self.frame_embed = nn.Parameter(torch.zeros(config.frames, d))

    @classmethod
    def from_image_dit(cls, image: DiT, frames: int = 8, attention: str = "factorised") -> VideoDiT:
        """A video DiT whose image part starts as a copy of `image` (and is, for factorised, the same model)."""
        video = cls(VideoDiTConfig.from_image(image.config, frames, attention))
        video.image.load_state_dict(image.state_dict())
        return video

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x_t (B,F,C,h,w), t (B,) or a scalar, context (B,L,Dc), mask (B,L) -> v_hat (B,F,C,h,w)."""
        b, f = x_t.shape[:2]
        if f > self.config.frames:
            raise ValueError(f"the model knows frame positions up to {self.config.frames}, got {f} frames")
        net = self.image
        t = torch.as_tensor(t, device=x_t.device).expand(b)  # (B,)
        x = net.patch_embed(x_t.flatten(0, 1)).flatten(2).transpose(1, 2) + net.pos_embed  # (B*F, N, D)
        n, d = x.shape[1:]
        c = net.t_embed(t)  # (B, D)
        if net.text_pool is not None:
            m = mask.to(context.dtype)[..., None]  # (B, L, 1)
            c = c + net.text_pool((context * m).sum(1) / m.sum(1).clamp_min(1.0))
        if self.config.attention == "joint":
            x = (x.view(b, f, n, d) + self.frame_embed[:f, None]).reshape(b, f * n, d)  # (B, F*N, D)
            for block in net.blocks:
                x = block(x, c, context, mask)
            x = x.reshape(b * f, n, d)
            c_frames = c.repeat_interleave(f, dim=0)  # (B*F, D)
        else:
            c_frames = c.repeat_interleave(f, dim=0)  # (B*F, D)
            context_frames = context.repeat_interleave(f, dim=0)  # (B*F, L, Dc)
            mask_frames = mask.repeat_interleave(f, dim=0)  # (B*F, L)
            frame_pos = self.frame_pos[:f]  # (F, D)
            for block, temporal in zip(net.blocks, self.temporal):
                x = block(x, c_frames, context_frames, mask_frames)  # (B*F, N, D) within each frame
                x = x.view(b, f, n, d).transpose(1, 2).reshape(b * n, f, d)  # (B*N, F, D)
                x = temporal(x, c, frame_pos, context, mask, n)  # across frames
                x = x.view(b, n, f, d).transpose(1, 2).reshape(b * f, n, d)  # back to (B*F, N, D)
        out = net.unpatchify(net.final(x, c_frames))  # (B*F, C, h, w)
        return out.view(b, f, *out.shape[1:])
