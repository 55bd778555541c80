"""A VQ tokenizer: the VAE's convolutional encoder and decoder with a codebook between them (chapter §3.4).

Each latent vector of the encoder's (h, w) grid is snapped to the nearest of K codebook entries, so an image
becomes h*w integers in [0, K): the tokens the autoregressive and masked models of EQ MM3.5 predict. Gradients
pass the snap unchanged (the straight-through estimator of van den Oord et al. 2017, "Neural Discrete
Representation Learning"); the encoder is pulled towards its codes by the commitment loss, and the codebook
follows the encoder outputs assigned to it as exponential moving averages of k-means updates (VQ-VAE-2,
Razavi et al. 2019). Codes no vector picks any more are reset to encoder outputs of the current batch (the
dead-code restart of Jukebox, Dhariwal et al. 2020), and the codebook starts from encoder outputs too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from app.nets.vae import Decoder, Encoder, VAEConfig


@dataclass
class VQConfig(VAEConfig):
    """The autoencoder's sizes (latent_channels is the code dimension) and the codebook's size K."""

    codebook_size: int = 512
    ema_decay: float = 0.99  # of the codebook's k-means statistics
    dead_below: float = 0.03  # a code whose EMA assignment count per batch falls below this is restarted


class VectorQuantizer(nn.Module):
    """z (B, D, h, w) -> (its nearest codes with a straight-through gradient, indices (B, h, w), commitment)."""

    def __init__(self, codebook_size: int, dim: int, decay: float = 0.99, dead_below: float = 0.03):
        super().__init__()
        self.decay, self.dead_below = decay, dead_below
        self.register_buffer("codebook", torch.randn(codebook_size, dim))
        self.register_buffer("cluster_size", torch.ones(codebook_size))  # EMA of vectors assigned per batch
        self.register_buffer("code_sum", self.codebook.clone())  # EMA of their sum
        self.register_buffer("initialised", torch.tensor(False))
        self.restarts = 0  # codes restarted by this process (a training diagnostic, not saved)

    @property
    def size(self) -> int:
        return self.codebook.shape[0]

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) of each row of flat (N, D)."""
        distance = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
                    + self.codebook.pow(2).sum(1)[None])  # (N, K)
        return distance.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (B, h, w) -> code vectors (B, D, h, w)."""
        return self.codebook[indices].permute(0, 3, 1, 2)

    @torch.no_grad()
    def _learn(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        if not bool(self.initialised):  # data-dependent init: K encoder outputs of the first batch
            self._restart(torch.ones(self.size, dtype=torch.bool, device=flat.device), flat)
            self.initialised.fill_(True)
            return
        counts = torch.bincount(indices, minlength=self.size).to(flat.dtype)  # (K,)
        sums = torch.zeros_like(self.code_sum).index_add_(0, indices, flat)  # (K, D)
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.code_sum.lerp_(sums, 1 - self.decay)
        self.codebook.copy_(self.code_sum / self.cluster_size.clamp_min(1e-5)[:, None])
        dead = self.cluster_size < self.dead_below
        if bool(dead.any()):
            self._restart(dead, flat)

    def _restart(self, which: torch.Tensor, flat: torch.Tensor) -> None:
        """Move the codes `which` (K,) bool onto random rows of flat, with fresh statistics."""
        n = int(which.sum())
        picks = flat[torch.randint(0, len(flat), (n,), device=flat.device)]
        self.codebook[which] = picks
        self.code_sum[which] = picks
        self.cluster_size[which] = 1.0
        self.restarts += n

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()  # (B*h*w, D)
        if self.training:
            with torch.no_grad():
                self._learn(flat, self.nearest(flat))
        indices = self.nearest(flat).view(b, h, w)
        quantized = self.lookup(indices).to(z.dtype)
        commitment = F.mse_loss(z, quantized.detach())
        return z + (quantized - z).detach(), indices, commitment


class VQTokenizer(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] <-> tokens (B, H/f, W/f) in [0, K)."""

    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, out_channels=config.latent_channels)
        self.quantizer = VectorQuantizer(config.codebook_size, config.latent_channels, config.ema_decay,
                                         config.dead_below)
        self.decoder = Decoder(config)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, unclamped; token indices (B, h, w); commitment loss)."""
        quantized, indices, commitment = self.quantizer(self.encoder(x))
        return self.decoder(quantized), indices, commitment

    @torch.no_grad()
    def encode(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Images (B, 3, H, W) -> token indices (B, h, w), `chunk` images at a time."""
        parts = []
        for i in range(0, len(x), chunk):
            z = self.encoder(x[i:i + chunk])
            flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float()
            parts.append(self.quantizer.nearest(flat).view(z.shape[0], z.shape[2], z.shape[3]))
        return torch.cat(parts)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Token indices (B, h, w) -> images (B, 3, H, W) clamped to [-1, 1]."""
        return torch.cat([self.decoder(self.quantizer.lookup(indices[i:i + chunk])).clamp(-1, 1)
                          for i in range(0, len(indices), chunk)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Images through their tokens and back: what every model on these tokens can at best draw."""
        return self.decode(self.encode(x, chunk), chunk)


def _sized(**base):
    return lambda **kw: VQConfig(**{**base, **kw})


VQ_SIZES = {
    "tiny": _sized(base_channels=8, channel_mult=(1, 2, 2), norm_groups=4, latent_channels=8, codebook_size=64),
    "small": _sized(base_channels=32, channel_mult=(1, 2, 2), latent_channels=8, codebook_size=512),
    "base": _sized(base_channels=48, channel_mult=(1, 2, 2), latent_channels=8, codebook_size=1024),
}
