"""A small KL-regularised convolutional VAE: Stable Diffusion's autoencoder, shrunk (EQ MM3.3)."""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEConfig:
    """Sizes of the autoencoder; the downsampling factor f is 2 ** (len(channel_mult) - 1)."""

    in_channels: int = 3
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2, 2)  # one entry per resolution level
    latent_channels: int = 4  # c_z in EQ MM3.3
    num_res_blocks: int = 1  # per level in the encoder; the decoder gets one more
    mid_attention: bool = True  # one self-attention at the lowest resolution
    norm_groups: int = 8

    def __post_init__(self) -> None:
        self.channel_mult = tuple(self.channel_mult)  # JSON gives back a list

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, twice, with a 1x1 skip when the width changes."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SpatialAttention(nn.Module):
    """Single-head self-attention over the pixels of a feature map (the VAE's mid block)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)  # (B, HW, C)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Halve the resolution with a strided 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _mid(channels: int, cfg: VAEConfig) -> nn.Sequential:
    attn = SpatialAttention(channels, cfg.norm_groups) if cfg.mid_attention else nn.Identity()
    return nn.Sequential(ResnetBlock(channels, channels, cfg.norm_groups), attn,
                         ResnetBlock(channels, channels, cfg.norm_groups))


# ---------------------------------------------------------------------------------------------
# Encoder and decoder
# ---------------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """x (B,3,H,W) -> moments (B, 2*c_z, H/f, W/f), or `out_channels` features."""

    def __init__(self, cfg: VAEConfig, out_channels: int | None = None):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        cin = widths[0]
        for level, cout in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResnetBlock(cin, cout, cfg.norm_groups))
                cin = cout
            if level < len(widths) - 1:
                layers.append(Downsample(cin))
        self.down = nn.Sequential(*layers)
        self.mid = _mid(cin, cfg)
        self.norm_out = _norm(cin, cfg.norm_groups)
        self.conv_out = nn.Conv2d(cin, out_channels or 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """z (B, c_z, H/f, W/f) -> x (B,3,H,W), unbounded (clamp to [-1, 1] at use)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mult][::-1]
        cin = widths[0]
        self.conv_in = nn.Conv2d(cfg.latent_channels, cin, 3, padding=1)
        self.mid = _mid(cin, cfg)
        layers: list[nn.Module] = []
        for level, cout in enumerate(widths):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResnetBlock(cin, cout, cfg.norm_groups))
                cin = cout
            if level < len(widths) - 1:
                layers.append(Upsample(cin))
        self.up = nn.Sequential(*layers)
        self.norm_out = _norm(cin, cfg.norm_groups)
        self.conv_out = nn.Conv2d(cin, cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------------------------
# The VAE
# ---------------------------------------------------------------------------------------------


class VAE(nn.Module):
    """E(x) -> z, D(z) -> x with a diagonal-Gaussian posterior (EQ MM3.3: z is H/f x W/f x c_z).

    The per-channel latent shift and scale (measured on data after training, Stable Diffusion's
    1/std "scaling factor" made per channel) are buffers, so they travel inside the weights file.
    The diffusion model works on `normalize(z) = (z - shift) * scale`, which has zero mean and unit
    variance per channel.
    """

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.register_buffer("latent_shift", torch.zeros(config.latent_channels))
        self.register_buffer("latent_scale", torch.ones(config.latent_channels))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (B, c_z, H/f, W/f)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latent (B, c_z, h, w) -> image (B, 3, h*f, w*f), roughly in [-1, 1]."""
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Images through the posterior mean and back, clamped to [-1, 1], `chunk` at a time: (B, 3, H, W)."""
        return torch.cat([self.decode(self.encode(x[i:i + chunk])[0]).clamp(-1, 1) for i in range(0, len(x), chunk)])

    def sample_latent(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One reparameterised draw z = mean + std * eps from the posterior."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Reconstruction through a posterior sample; returns (x_hat, mean, logvar)."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return self.decode(mean + torch.exp(0.5 * logvar) * eps), mean, logvar

    # -- the latent space the diffusion model sees --------------------------------------------

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latent -> unit-variance diffusion latent."""
        return (z - self.latent_shift.view(1, -1, 1, 1)) * self.latent_scale.view(1, -1, 1, 1)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Diffusion latent -> raw latent for the decoder."""
        return z / self.latent_scale.view(1, -1, 1, 1) + self.latent_shift.view(1, -1, 1, 1)

    def encode_for_diffusion(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B,3,H,W) -> normalised posterior mean (B, c_z, H/f, W/f)."""
        return self.normalize(self.encode(x)[0])

    def decode_from_diffusion(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latent -> image clamped to [-1, 1]."""
        return self.decode(self.denormalize(z)).clamp(-1.0, 1.0)

    @torch.no_grad()
    def set_latent_stats(self, means: torch.Tensor) -> None:
        """Measure shift = per-channel mean and scale = 1/std on posterior means (B, c_z, h, w)."""
        flat = means.transpose(0, 1).reshape(means.shape[1], -1).float()  # (c_z, N)
        self.latent_shift.copy_(flat.mean(dim=1))
        self.latent_scale.copy_(1.0 / flat.std(dim=1).clamp_min(1e-6))


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)), averaged per latent element."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------

def _sized(**base):
    return lambda **kw: VAEConfig(**{**base, **kw})


VAE_SIZES = {
    "tiny": _sized(base_channels=8, channel_mult=(1, 2, 2, 2), norm_groups=4),
    "small": _sized(base_channels=32, channel_mult=(1, 2, 2, 2)),
    "base": _sized(base_channels=48, channel_mult=(1, 2, 2, 2)),
}
