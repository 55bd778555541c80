"""Torch modules of the latent diffusion model: VAE, caption encoder, diffusion transformer."""

from app.nets.dit import DIT_SIZES, DiT, DiTConfig
from app.nets.io import WeightsError, load_module, read_metadata, save_module
from app.nets.text import TEXT_SIZES, TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAE_SIZES, VAEConfig

__all__ = [
    "DIT_SIZES", "DiT", "DiTConfig",
    "TEXT_SIZES", "TextEncoder", "TextEncoderConfig",
    "VAE", "VAE_SIZES", "VAEConfig",
    "WeightsError", "load_module", "read_metadata", "save_module",
]
