"""A programmatic judge: read a scene image and name its shape, colour, size and position.

It measures prompt adherence without a human: the images a model draws for a prompt are judged
and compared with what the prompt named (`matches`). All measurements run batched in torch.

Method, per image: the background is the median of the border pixels; foreground is what lies
far from it (threshold at half the shape's own contrast, so anti-aliased edges count as they
would in an area measurement); connected components (8-neighbour) pick the main shape; its
bounding box gives size and position; its fill ratio, how much of its area sits in the top half,
how much of the box's corners it covers and how round it is (`four_fold`, below) give the shape;
the median of its interior gives the colour.

Roundness: fill ratio and corners alone call a rounded diamond a circle (both fill ~0.7 of their box
and leave its corners empty). The four-fold moment |sum a z^4| / sum a |z|^4 of the shape's coverage a
(z: pixel offset from the centroid, as a complex number) is 0 for a disc and 0.43 for a square at any
angle, a diamond included; it is computed from the anti-aliased coverage, not the thresholded mask,
so a 10 px disc on the pixel grid or blurred stays near 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.world.scenes import BASE_RESOLUTION, COLOUR_NAMES, PALETTE, POSITIONS, SHAPES, SIZES, Prompt, SceneBatch

MIN_CONTRAST = 40.0  # 0..255 units; below this nothing counts as a shape
COLOUR_TOLERANCE = 60.0  # farther from every palette entry: colour unknown (red-orange are 88 apart)
CLEAN_COLOUR_DISTANCE = 45.0  # a clean image's shape is this close to a palette colour
FLAT_TOLERANCE = 40.0  # a shape pixel this close to the background-colour segment counts as flat
MIN_FLATNESS, MIN_MAIN_FRACTION, MIN_BACKGROUND = 0.9, 0.95, 180.0
SMALL_LARGE_THRESHOLD_PX = 17.0  # at 64 px: small is 10-14, large 20-26
# Shape: a triangle (apex up) holds a quarter of its area in the top half of its bounding box,
# a disc and a square half. Between those two, "squareness" = fill ratio + corner fill tells them
# apart (disc ~0.8 + 0, square 1 + 1); corners are the box pixels outside |u| + |v| <= 1.5.
TRIANGLE_MAX_TOP, SYMMETRIC_MAX_TOP = 0.39, 0.61
TRIANGLE_FILL = (0.4, 0.85)
MIN_ROUND_FILL, SQUARENESS_THRESHOLD = 0.6, 1.13
CORNER_DIAMOND = 1.5
# A circle's four-fold moment is at most this. Measured at 10-26 px: rendered discs <= 0.03 (blurred
# with sigma up to 1 px too), the VAE's reconstructions of them <= 0.055; a diamond whose corners are
# rounded with a radius of 0.8 of its half side >= 0.084 (0.7: >= 0.15), a square at any angle 0.40-0.46.
MAX_ROUND_FOUR_FOLD = 0.08
CHUNK = 128  # images per pass: small passes stay in the CPU cache


@dataclass
class Verdict:
    """What the judge sees in one image; attribute names are None where it cannot tell."""

    shape: str | None
    colour: str | None
    size: str | None
    position: str | None
    clean: bool  # one shape, flat palette colour, light background
    centroid: tuple[float, float] | None  # (x, y) pixels
    bbox_center: tuple[float, float] | None  # (x, y) pixels
    bbox_side: float  # pixels, max of width and height
    fill_ratio: float
    top_fraction: float  # share of the area in the top half of the bounding box
    corner_fill: float  # share of the bounding box's four corners that the shape covers
    four_fold: float  # 0 for a disc, 0.43 for a square at any angle (module docstring)
    colour_distance: float  # median colour to its nearest palette entry, 0..255 units
    rgb: tuple[float, float, float] | None  # the median colour of the shape's interior, 0..255
    flatness: float  # share of the shape's pixels on the background-colour segment
    n_components: int  # foreground components big enough to be a shape
    main_fraction: float  # share of the foreground in the largest component
    background: tuple[float, float, float]


def as_batch(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 numpy (B, H, W, 3) or float torch (B, 3, H, W) in [-1, 1] -> float32 (B, 3, H, W) in 0..255."""
    if isinstance(images, torch.Tensor):
        x = images.detach().float().cpu()
        if x.dim() == 3:
            x = x.unsqueeze(0)
        return ((x.clamp(-1, 1) + 1) * 127.5).contiguous()  # (B, 3, H, W)
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.dtype != np.uint8:
        raise TypeError(f"numpy images must be uint8 (B, H, W, 3), got {x.dtype}")
    return torch.from_numpy(x).permute(0, 3, 1, 2).float().contiguous()  # (B, 3, H, W)


def components(mask: torch.Tensor) -> torch.Tensor:
    """8-neighbour connected components of a bool (B, H, W) mask -> int64 labels (0 = background).

    Each component ends labelled with its largest 1-based pixel index: labels spread by a 3x3 max
    and jump along the pointer label -> that pixel's label, which converges in a few dozen steps.
    """
    b, h, w = mask.shape
    index = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, h, w)  # exact in float32
    labels = torch.where(mask, index, torch.zeros(()))  # (B, H, W)
    for _ in range(h * w):
        spread = F.max_pool2d(labels.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
        spread = torch.where(mask, spread, torch.zeros(()))
        flat = spread.view(b, -1)
        jumped = torch.gather(flat, 1, (flat.long() - 1).clamp(min=0)).view(b, h, w)
        spread = torch.where(mask, torch.maximum(spread, jumped), spread)
        if torch.equal(spread, labels):
            break
        labels = spread
    return labels.long()


def _channel_norm(d: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over dim 1 (several times faster on a CPU than .norm(dim=1) on this layout)."""
    return (d * d).sum(1).sqrt()


def min_component_area(h: int, w: int) -> float:
    """Pixels a foreground component needs to count as a shape: a quarter of the smallest legal triangle."""
    return 12.0 * (h * w) / BASE_RESOLUTION**2


def foreground(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Of a (B, 3, H, W) 0..255 batch: the background colour (B, 3), the foreground mask (B, H, W), its
    component labels (B, HW) and each label's pixel count (B, HW + 1; label 0, the background, counts 0)."""
    b, _, h, w = x.shape
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]], 2)  # (B, 3, P)
    bg = border.median(2).values  # (B, 3)
    dist = _channel_norm(x - bg[:, :, None, None])  # (B, H, W)

    # Threshold at half the contrast of the shape's colour: anti-aliased edges then count by area.
    # The contrast is the median over pixels beyond half the largest distance (the shape's core).
    peak = dist.flatten(1).amax(1)[:, None, None]  # (B, 1, 1)
    rough = (dist > peak / 2) & (dist > MIN_CONTRAST)
    far = torch.where(rough, dist, torch.full_like(dist, float("nan"))).flatten(1)
    contrast = far.nanmedian(1).values.nan_to_num(0.0)  # (B,)
    fg = dist > torch.clamp(contrast / 2, min=MIN_CONTRAST)[:, None, None]  # (B, H, W)

    labels = components(fg).view(b, -1)  # (B, HW)
    sizes = torch.zeros(b, h * w + 1).scatter_add_(1, labels, torch.ones(b, h * w))
    sizes[:, 0] = 0
    return bg, fg, labels, sizes


def _measure(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """All per-image measurements of a (B, 3, H, W) 0..255 batch, as (B, ...) tensors."""
    b, _, h, w = x.shape
    bg, fg, labels, sizes = foreground(x)
    main_label = sizes.argmax(1)  # (B,)
    n_components = (sizes >= min_component_area(h, w)).sum(1)
    main = (labels == main_label[:, None]).view(b, h, w) & fg  # (B, H, W)
    total_fg = fg.flatten(1).sum(1).float()
    area = main.flatten(1).sum(1).float()

    rows, cols = main.any(2), main.any(1)  # (B, H), (B, W)
    ys, xs = torch.arange(h).float(), torch.arange(w).float()
    y0 = torch.where(rows, ys, float("inf")).min(1).values
    y1 = torch.where(rows, ys, -1.0).max(1).values + 1  # exclusive edge
    x0 = torch.where(cols, xs, float("inf")).min(1).values
    x1 = torch.where(cols, xs, -1.0).max(1).values + 1
    bw, bh = (x1 - x0).clamp(min=0), (y1 - y0).clamp(min=0)
    mid = (y0 + y1) / 2
    row_weight = (mid[:, None] - ys[None]).clamp(0, 1)  # (B, H): share of each row above the middle
    top = (main.sum(2).float() * row_weight).sum(1)
    # Corners: bounding-box pixels outside the diamond |u| + |v| <= CORNER_DIAMOND (u, v in [-1, 1]
    # across the box). A square fills them, a disc leaves them empty.
    u = (xs[None, None, :] + 0.5 - ((x0 + x1) / 2)[:, None, None]) / (bw / 2).clamp(min=0.5)[:, None, None]
    v = (ys[None, :, None] + 0.5 - ((y0 + y1) / 2)[:, None, None]) / (bh / 2).clamp(min=0.5)[:, None, None]
    corner = (u.abs() <= 1) & (v.abs() <= 1) & (u.abs() + v.abs() > CORNER_DIAMOND)  # (B, H, W)
    corner_fill = (corner & main).flatten(1).sum(1) / corner.flatten(1).sum(1).clamp(min=1)
    mf = main.float()
    cx = (mf.sum(1) * (xs + 0.5)).sum(1) / area.clamp(min=1)
    cy = (mf.sum(2) * (ys + 0.5)).sum(1) / area.clamp(min=1)

    # Colour: the median over the interior (pixels whose neighbours are all in the shape), else the shape.
    shrunk = -F.max_pool2d(-mf.unsqueeze(1), 3, stride=1, padding=1).squeeze(1) > 0.5
    interior = torch.where(shrunk.flatten(1).any(1)[:, None, None], shrunk, main)  # (B, H, W)
    pix = torch.where(interior.unsqueeze(1), x, torch.full_like(x, float("nan"))).flatten(2)  # (B, 3, HW)
    colour = pix.nanmedian(2).values.nan_to_num(1e4)  # (B, 3)
    colour_distance, colour_index = torch.cdist(colour, torch.from_numpy(PALETTE)).min(1)
    # Flat colour: anti-aliased or blurred edges lie on the segment background -> colour, so
    # flatness counts the shape's pixels within FLAT_TOLERANCE of that segment.
    axis = colour - bg  # (B, 3)
    rel = x.flatten(2) - bg[:, :, None]  # (B, 3, HW)
    t = ((rel * axis[:, :, None]).sum(1) / (axis * axis).sum(1, keepdim=True).clamp(min=1)).clamp(0, 1)
    off = _channel_norm(rel - t.unsqueeze(1) * axis[:, :, None])  # (B, HW)
    flatness = ((off < FLAT_TOLERANCE) & main.flatten(1)).sum(1).float() / area.clamp(min=1)
    # Coverage for the roundness moment: t within 2 px of the shape, where its (blurred) edge fades out.
    near = F.max_pool2d(mf.unsqueeze(1), 5, stride=1, padding=2).flatten(1) > 0
    four_fold = _four_fold(torch.where(near, t, torch.zeros(())).view(b, h, w))

    return dict(
        bg=bg, area=area, total_fg=total_fg, n_components=n_components,
        main_fraction=area / total_fg.clamp(min=1), bw=bw, bh=bh,
        bbox_cx=(x0 + x1) / 2, bbox_cy=(y0 + y1) / 2, cx=cx, cy=cy,
        fill=area / (bw * bh).clamp(min=1), top=top / area.clamp(min=1), corner=corner_fill,
        colour_distance=colour_distance, colour_index=colour_index, rgb=colour, flatness=flatness,
        four_fold=four_fold,
    )


def _four_fold(alpha: torch.Tensor) -> torch.Tensor:
    """|sum a z^4| / sum a |z|^4 of a coverage map a (B, H, W), z = pixel centre - centroid as x + iy: (B,)."""
    _, h, w = alpha.shape
    ys, xs = torch.arange(h).float() + 0.5, torch.arange(w).float() + 0.5
    mass = alpha.flatten(1).sum(1).clamp(min=1e-6)
    x = xs[None, None, :] - ((alpha.sum(1) * xs).sum(1) / mass)[:, None, None]  # (B, 1, W)
    y = ys[None, :, None] - ((alpha.sum(2) * ys).sum(1) / mass)[:, None, None]  # (B, H, 1)
    re2, im2 = x * x - y * y, 2 * x * y  # z^2
    real = (alpha * (re2 * re2 - im2 * im2)).flatten(1).sum(1)  # z^4 = (z^2)^2
    imag = (alpha * (2 * re2 * im2)).flatten(1).sum(1)
    norm = (alpha * (x * x + y * y) ** 2).flatten(1).sum(1).clamp(min=1e-6)
    return torch.sqrt(real * real + imag * imag) / norm


def classify_shape(fill: torch.Tensor, top: torch.Tensor, corner: torch.Tensor,
                   four_fold: torch.Tensor) -> torch.Tensor:
    """Index into SHAPES from fill ratio, top-half share, corner fill and four-fold moment (each (B,)); -1 where
    none fits (a diamond, a rotated square, a rounded diamond)."""
    triangle = (top < TRIANGLE_MAX_TOP) & (fill >= TRIANGLE_FILL[0]) & (fill < TRIANGLE_FILL[1])
    upright = (top >= TRIANGLE_MAX_TOP) & (top <= SYMMETRIC_MAX_TOP)
    square = upright & (fill + corner >= SQUARENESS_THRESHOLD)
    circle = upright & ~square & (fill >= MIN_ROUND_FILL) & (four_fold <= MAX_ROUND_FOUR_FOLD)
    out = torch.full_like(fill, -1, dtype=torch.long)
    for index, hit in enumerate((circle, square, triangle)):
        out[hit] = index
    return out


def _verdicts(m: dict[str, torch.Tensor], h: int, w: int) -> list[Verdict]:
    """Turn a batch of measurements into names and a clean flag."""
    side = torch.maximum(m["bw"], m["bh"])
    scale = min(h, w) / BASE_RESOLUTION
    min_side, max_side = 7 * scale, 30 * scale
    present = m["area"] > 0
    shape = classify_shape(m["fill"], m["top"], m["corner"], m["four_fold"])
    shape = torch.where(present & (side <= max_side), shape, -1)
    col = ((m["bbox_cx"] / w * 4).round() - 1).clamp(0, 2)  # nearest of 1/4, 1/2, 3/4
    row = ((m["bbox_cy"] / h * 4).round() - 1).clamp(0, 2)
    colour = torch.where(present & (m["colour_distance"] <= COLOUR_TOLERANCE), m["colour_index"], -1)
    clean = (
        present & (m["n_components"] == 1) & (m["main_fraction"] >= MIN_MAIN_FRACTION)
        & (m["colour_distance"] <= CLEAN_COLOUR_DISTANCE) & (m["flatness"] >= MIN_FLATNESS)
        & (m["bg"].min(1).values >= MIN_BACKGROUND) & (side >= min_side) & (side <= max_side)
        & (shape >= 0)
    )
    n = {k: v.tolist() for k, v in m.items()}  # python scalars: far faster to index than tensors
    large = (side > SMALL_LARGE_THRESHOLD_PX * scale).tolist()
    position = (3 * row + col).long().tolist()
    out = []
    rows = zip(present.tolist(), shape.tolist(), colour.tolist(), clean.tolist())
    for i, (seen, s, c, ok) in enumerate(rows):
        out.append(Verdict(
            shape=SHAPES[s] if s >= 0 else None,
            colour=COLOUR_NAMES[c] if c >= 0 else None,
            size=SIZES[large[i]] if seen else None,
            position=POSITIONS[position[i]] if seen else None,
            clean=ok,
            centroid=(n["cx"][i], n["cy"][i]) if seen else None,
            bbox_center=(n["bbox_cx"][i], n["bbox_cy"][i]) if seen else None,
            bbox_side=max(n["bw"][i], n["bh"][i]), fill_ratio=n["fill"][i], top_fraction=n["top"][i],
            corner_fill=n["corner"][i], four_fold=n["four_fold"][i], colour_distance=n["colour_distance"][i],
            rgb=tuple(n["rgb"][i]) if seen else None,
            flatness=n["flatness"][i],
            n_components=n["n_components"][i], main_fraction=n["main_fraction"][i],
            background=tuple(n["bg"][i]),
        ))
    return out


def judge(images: np.ndarray | torch.Tensor) -> list[Verdict]:
    """Judge a batch: uint8 numpy (B, H, W, 3), or float torch (B, 3, H, W) in [-1, 1] (any device)."""
    x = as_batch(images)
    h, w = x.shape[-2:]
    verdicts: list[Verdict] = []
    for i in range(0, len(x), CHUNK):
        verdicts += _verdicts(_measure(x[i:i + CHUNK]), h, w)
    return verdicts


def matches(verdict: Verdict, prompt: Prompt) -> dict[str, bool]:
    """Per attribute the prompt names, whether the image shows it; "all" also needs a clean image.

    A clean image is part of "all" because every prompt asks for exactly one flat shape.
    """
    result = {k: getattr(verdict, k) == v for k, v in prompt.named().items()}
    result["all"] = verdict.clean and all(result.values())
    return result


def agreement(verdicts: list[Verdict], scenes: SceneBatch) -> dict[str, float]:
    """Share of images whose judged attributes equal the scenes' own (per attribute, "all", "clean")."""
    truth = {"shape": (SHAPES, scenes.shape), "colour": (COLOUR_NAMES, scenes.colour),
             "size": (SIZES, scenes.size), "position": (POSITIONS, scenes.position)}
    hits = {k: np.array([getattr(v, k) == names[j] for v, j in zip(verdicts, idx)])
            for k, (names, idx) in truth.items()}
    clean = np.array([v.clean for v in verdicts])
    result = {k: float(v.mean()) for k, v in hits.items()}
    result["clean"] = float(clean.mean())
    result["all"] = float((np.all(list(hits.values()), axis=0) & clean).mean())
    return result
