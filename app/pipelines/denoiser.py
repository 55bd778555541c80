"""What every diffusion family's pipeline stands on: a caption encoder and a denoising network on one device,
with their noise schedule and the VAE that decodes their latents (chapter §3.3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from app.diffusion.schedule import NoiseSchedule, as_eps_model
from app.nets.io import read_metadata
from app.nets.text import TextEncoder
from app.nets.vae import VAE
from app.pipelines.protocol import words_beyond
from app.world.scenes import tokenize


@dataclass(frozen=True)
class DenoisingSettings:
    """What decides a sample in every diffusion family besides the weights: the captions, the starting noise's
    seed, the sampler and its steps, and classifier-free guidance (EQ MM3.4)."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    guidance_scale: float = 5.0
    guidance_rescale: float = 0.0
    sampler: str = "dpmpp_2m"
    eta: float = 0.0


class CaptionedDenoiser:
    """The loaded networks of one family; `_model_eps(x_t, t, context)` is its noise estimate (EQ MM3.2), whatever
    the network predicts (v or eps)."""

    def __init__(self, vae: VAE, text: TextEncoder, dit: nn.Module, schedule: NoiseSchedule, prediction: str = "v",
                 metadata: dict | None = None):
        self.vae, self.text, self.dit, self.schedule = vae.eval(), text.eval(), dit.eval(), schedule
        self.prediction = prediction
        self.metadata = metadata or {}
        self.device = next(dit.parameters()).device
        self._model_eps = as_eps_model(self._network, schedule, prediction)

    def _network(self, x_t: torch.Tensor, t: int, context: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        tokens_context, mask = context
        t_batch = torch.full((x_t.shape[0],), int(t), dtype=torch.long, device=x_t.device)
        return self.dit(x_t, t_batch, tokens_context, mask)

    def unlearned_words(self, caption: str) -> list[str]:
        """The words of a canonical caption whose token ids lie beyond this caption encoder's embedding."""
        return words_beyond(caption, self.text.config.vocab_size)

    @torch.no_grad()
    def encode_captions(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Canonical captions -> (context (B, L, D), key mask (B, L))."""
        return self.text(torch.from_numpy(tokenize(captions)).to(self.device))


def weights_metadata(model_dir: str | Path, files: dict[str, str]) -> dict:
    """The metadata of each named weights file in model_dir (WeightsError names a bad one)."""
    return {name: read_metadata(Path(model_dir) / file) for name, file in files.items()}
