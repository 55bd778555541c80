"""One step made viewable. A denoising step: the schedule's readouts (EQ MM3.1) and small PNGs of x_t, x̂0 and ε̂;
a token family's step (§3.4): the grid drawn so far, what this step drew, and that grid decoded.

Previews follow image 0 of the batch. x_t and ε̂ are latents: they are shown as they are, channels 0-2 as red,
green and blue over a fixed value range (so a noisier latent looks noisier, rather than being stretched to full
contrast); x̂0 goes through the VAE's decoder, which costs one decode per step. A partly drawn token grid goes
through the VQ decoder, its holes drawn as the background, dimmed (TokenFamily.preview): one decode per step too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.pipelines.image import Pipeline, Step
from app.pipelines.protocol import StepPosition
from app.pipelines.token_sampling import UNKNOWN, TokenStep
from app.pipelines.tokens import UNDRAWN_DIMMING, TokenFamily
from app.service.imaging import encode_png
from app.world.scenes import to_uint8

LATENT_RANGE = 3.0  # a standard normal latent stays inside +-3 for 99.7% of its values
TOKEN_PREVIEW = (f"image 0's token grid drawn so far, decoded by the VQ decoder; a token not drawn yet is shown as "
                 f"the plain background, {UNDRAWN_DIMMING:.0%} darker")
LATENT_PREVIEW = (f"latent channels 0, 1, 2 as red, green, blue; values -{LATENT_RANGE:g}..{LATENT_RANGE:g} "
                  "mapped linearly to 0..255 and clipped; channels beyond the third are not shown")


def latent_to_rgb(z: torch.Tensor) -> np.ndarray:
    """One latent (C, h, w) -> uint8 (h, w, 3): channels 0-2 as RGB over [-LATENT_RANGE, LATENT_RANGE].

    A latent with fewer than three channels is shown in grey from its channel 0.
    """
    z = z.detach().float().cpu()
    rgb = z[:3] if z.shape[0] >= 3 else z[:1].expand(3, -1, -1)  # (3, h, w)
    scaled = (rgb.clamp(-LATENT_RANGE, LATENT_RANGE) + LATENT_RANGE) * (255 / (2 * LATENT_RANGE))
    return scaled.round().to(torch.uint8).permute(1, 2, 0).numpy()


def latent_png(z: torch.Tensor) -> bytes:
    """One latent (C, h, w) -> a latent-size PNG (see latent_to_rgb)."""
    return encode_png(latent_to_rgb(z))


def decoded_png(pipeline: Pipeline, z: torch.Tensor) -> bytes:
    """One normalised latent (C, h, w) -> the VAE's decoding as an image-size PNG."""
    with torch.no_grad():
        image = pipeline.decode(z[None].to(pipeline.device))  # (1, 3, H, W)
    return encode_png(to_uint8(image)[0])


def x0_hat_png(pipeline: Pipeline, step: Step) -> bytes:
    """The step's predicted clean sample x̂0 of image 0, decoded: what a preview of the picture so far shows."""
    return decoded_png(pipeline, step.info.x0_hat[0])


def remaining_seconds(elapsed_s: float, done: int, total: int) -> float:
    """Time left if every remaining step takes the mean time of the steps done so far."""
    if done <= 0:
        return 0.0
    return elapsed_s / done * max(total - done, 0)


def evenly_spaced_steps(total: int, count: int) -> list[int]:
    """The 0-based indices of `count` steps spread evenly over a run of `total`, the last step excluded (its
    image is the result); fewer when the run has too few steps to space them apart."""
    picked = {max(1, total * k // (count + 1)) - 1 for k in range(1, count + 1)}
    return sorted(picked - {total - 1})


@dataclass(frozen=True)
class StepView:
    """What a viewer sees of one step: where it is on the schedule and (optionally) three PNGs."""

    position: StepPosition
    x_t_png: bytes | None = None
    x0_hat_png: bytes | None = None
    eps_hat_png: bytes | None = None


def view_step(pipeline: Pipeline, step: Step, previews: bool = True) -> StepView:
    """A StepView of image 0: the step's position on the schedule (EQ MM3.1) and the previews."""
    info = step.info
    pngs = {}
    if previews:
        pngs = {"x_t_png": latent_png(info.x_t[0]), "x0_hat_png": x0_hat_png(pipeline, step),
                "eps_hat_png": latent_png(info.eps_hat[0])}
    return StepView(StepPosition.of(pipeline.schedule, info), **pngs)


@dataclass(frozen=True)
class TokenStepView:
    """What a viewer sees of a token family's step, for image 0: the grid so far (codebook indices in raster order,
    UNKNOWN where not drawn yet), the raster positions this step drew, and (optionally) the grid decoded."""

    index: int
    total: int
    forwards: int  # sequential network forwards so far
    grid: list[int]
    new_positions: list[int]
    png: bytes | None = None

    @property
    def tokens_drawn(self) -> int:
        return sum(token != UNKNOWN for token in self.grid)


def view_token_step(family: TokenFamily, step: TokenStep, previews: bool = True) -> TokenStepView:
    """A TokenStepView of image 0 of the step's rows."""
    grid = step.tokens[0]
    return TokenStepView(step.index, step.total, step.forwards, grid.tolist(),
                         step.new[0].nonzero().flatten().tolist(),
                         encode_png(family.preview(grid)) if previews else None)
