"""Shapes outside the scene grammar, drawn the way app/world/scenes.py draws its own (anti-aliased signed
distances), for testing what the judge must refuse or still accept: rotated squares, diamonds, rounded
diamonds, and blurred discs."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from app.world.scenes import COLOURS


def _box(u: torch.Tensor, v: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Signed distance to the axis-aligned square |u|, |v| <= half."""
    qx, qy = u.abs() - half, v.abs() - half
    return torch.hypot(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0)


def signed_distance(kind: str, side: float, cx: float, cy: float, angle_deg: float = 0.0, rounding: float = 0.0,
                    resolution: int = 64) -> torch.Tensor:
    """(H, W) signed distance in pixels (negative inside) of one shape.

    kind "disc": diameter side. "square": side `side`, turned by angle_deg. "diamond": a square turned by 45 + angle_deg
    degrees whose corners are rounded with radius rounding * its half side (0: sharp, 1: a disc); its tip-to-tip
    extent is `side`, so its bounding box matches a grammar shape of that side.
    """
    grid = torch.arange(resolution, dtype=torch.float64) + 0.5
    x, y = grid.view(1, -1) - cx, grid.view(-1, 1) - cy
    if kind == "disc":
        return torch.hypot(x, y) - side / 2
    turn = math.radians(angle_deg + (45.0 if kind == "diamond" else 0.0))
    u, v = math.cos(turn) * x + math.sin(turn) * y, -math.sin(turn) * x + math.cos(turn) * y
    if kind == "square":
        return _box(u, v, torch.tensor(side / 2))
    half = (side / 2) / (math.sqrt(2) - rounding * (math.sqrt(2) - 1))  # tip = (half - r) sqrt 2 + r = side / 2
    radius = rounding * half
    return _box(u, v, torch.tensor(half - radius)) - radius


def draw(kind: str, side: float, cx: float, cy: float, colour: str = "yellow", angle_deg: float = 0.0,
         rounding: float = 0.0, blur_sigma: float = 0.0, background: float = 236.0,
         resolution: int = 64) -> np.ndarray:
    """One uint8 (H, W, 3) image; blur_sigma > 0 blurs the coverage with a Gaussian of that sigma (pixels)."""
    alpha = (0.5 - signed_distance(kind, side, cx, cy, angle_deg, rounding, resolution)).clamp(0, 1).float()
    if blur_sigma > 0:
        taps = torch.arange(-4, 5, dtype=torch.float32)
        kernel = torch.exp(-taps * taps / (2 * blur_sigma**2))
        kernel = kernel[:, None] * kernel[None] / kernel.sum() ** 2
        alpha = F.conv2d(F.pad(alpha[None, None], (4,) * 4, mode="replicate"), kernel[None, None])[0, 0]
    fg, bg = torch.tensor(COLOURS[colour], dtype=torch.float32), torch.full((3,), background)
    image = bg[:, None, None] + (fg - bg)[:, None, None] * alpha
    return image.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
