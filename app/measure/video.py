"""VBench-style measures of a clip, computed by the app's own judge (no learned feature extractor).

- temporal flickering: mean absolute difference of consecutive frames, as 1 - MAD/255 (1 = no change);
- subject consistency: share of frames whose judged shape, colour and size equal the clip's most
  common triple;
- motion smoothness: how close the tracked centroid stays to the best straight line at constant speed,
  exp(-rms / SMOOTHNESS_SCALE_PX) (1 = on the line; 0.37 when it strays half a latent cell on average);
- mean jump: the tracked object's mean frame-to-frame displacement (pixels and frame widths, as the
  coherence instrument reports it);
- adherence: the fitted motion's direction (8 sectors, or "still") and the judged attributes against
  what the prompt names (the clip's most common value), and "shape_every_frame": the asked shape in every
  frame (a circle drawn as a rounded diamond in a few frames keeps "shape" but fails this).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from app.measure.judge import judge
from app.world.clips import DIRECTION_NAMES, SPEED_RANGE_PX, VideoPrompt
from app.world.scenes import BASE_RESOLUTION

SMOOTHNESS_SCALE_PX = 4.0  # at 64 px: half a latent cell of the f=8 VAE
MIN_SPEED_PX = 1.0  # at 64 px per frame; slower fitted motion counts as "still" (training speeds are 2-4)
# Sector k of the direction circle (45 degrees each, counter-clockwise from "right", y up).
SECTORS = ("right", "up right", "up", "up left", "left", "down left", "down", "down right")
assert set(SECTORS) == set(DIRECTION_NAMES)


@dataclass
class ClipMetrics:
    frames: int
    tracked_frames: int  # frames in which the judge found an object, whether or not it names its shape
    temporal_flickering: float  # 1 - mean |frame k+1 - frame k| / 255
    mean_abs_frame_diff: float  # the same difference, 0..1
    subject_consistency: float
    motion_smoothness: float  # 0 when fewer than 3 frames are tracked
    path_rms_px: float | None
    mean_jump_px: float | None
    mean_jump_frame_widths: float | None
    velocity_px: tuple[float, float] | None  # fitted (dx, dy) per frame, y down
    direction: str | None  # one of DIRECTION_NAMES, "still", or None when untracked
    shape: str | None  # the most common judged value per attribute
    colour: str | None
    size: str | None
    start: str | None  # judged position of the first frame
    frame_shapes: list[str | None]  # the judged shape of every frame
    centroids: list[tuple[float, float] | None]
    adherence: dict[str, bool]

    def to_dict(self) -> dict:
        return asdict(self)


def direction_of(velocity: tuple[float, float], resolution: int = BASE_RESOLUTION) -> str:
    """The 8-way direction of a (dx, dy) per-frame velocity (y down), or "still" below MIN_SPEED_PX."""
    dx, dy = velocity
    if math.hypot(dx, dy) < MIN_SPEED_PX * resolution / BASE_RESOLUTION:
        return "still"
    angle = math.degrees(math.atan2(-dy, dx)) % 360.0
    return SECTORS[int(((angle + 22.5) % 360.0) // 45.0)]


def fit_line(ks: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares p(k) = a + b k through the tracked points: (a (2,), b (2,), rms distance in px)."""
    design = np.stack([np.ones_like(ks), ks], 1)  # (n, 2)
    coef, *_ = np.linalg.lstsq(design, points, rcond=None)  # (2, 2): rows a, b
    residual = points - design @ coef
    return coef[0], coef[1], float(np.sqrt((residual ** 2).sum(1).mean()))


def measure_clip(frames: np.ndarray, prompt: VideoPrompt | None = None) -> ClipMetrics:
    """Measure one clip: frames uint8 (F, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise ValueError(f"a clip is uint8 (F >= 2, H, W, 3), got shape {frames.shape}")
    f, h, w = frames.shape[:3]
    verdicts = judge(frames)
    diff = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean() / 255.0
    triples = [(v.shape, v.colour, v.size) for v in verdicts]
    common, count = Counter(triples).most_common(1)[0]
    consistency = count / f if common[0] is not None else 0.0
    # Motion is measured on whatever object the judge finds, so a shape it cannot name (a rounded diamond asked
    # to be a circle) costs the shape measures, not the direction and smoothness as well.
    centroids = [v.centroid for v in verdicts]
    ks = np.array([k for k, c in enumerate(centroids) if c is not None], dtype=np.float64)
    points = np.array([c for c in centroids if c is not None], dtype=np.float64).reshape(-1, 2)
    jumps = [math.dist(a, b) for a, b in zip(centroids, centroids[1:]) if a is not None and b is not None]
    mean_jump = float(np.mean(jumps)) if jumps else None
    velocity = rms = direction = None
    smoothness = 0.0
    if len(ks) >= 2:
        _, slope, rms = fit_line(ks, points)
        velocity = (float(slope[0]), float(slope[1]))
        direction = direction_of(velocity, w)
        if len(ks) >= 3:
            smoothness = math.exp(-rms / (SMOOTHNESS_SCALE_PX * w / BASE_RESOLUTION))
    shape, colour, size = common
    start = verdicts[0].position if centroids[0] is not None else None
    metrics = ClipMetrics(
        frames=f, tracked_frames=len(ks), temporal_flickering=float(1.0 - diff), mean_abs_frame_diff=float(diff),
        subject_consistency=float(consistency), motion_smoothness=float(smoothness), path_rms_px=rms,
        mean_jump_px=mean_jump, mean_jump_frame_widths=None if mean_jump is None else mean_jump / w,
        velocity_px=velocity, direction=direction, shape=shape, colour=colour, size=size, start=start,
        frame_shapes=[v.shape for v in verdicts],
        centroids=[None if c is None else (round(c[0], 2), round(c[1], 2)) for c in centroids], adherence={},
    )
    metrics.adherence = adherence(metrics, prompt) if prompt is not None else {}
    return metrics


def adherence(metrics: ClipMetrics, prompt: VideoPrompt) -> dict[str, bool]:
    """Per attribute the prompt names, whether the clip shows it, and whether every frame shows the asked shape;
    "all" needs every one and a consistent subject."""
    seen = {"shape": metrics.shape, "colour": metrics.colour, "size": metrics.size,
            "direction": metrics.direction, "start": metrics.start}
    result = {k: seen[k] == v for k, v in prompt.named().items()}
    if prompt.shape is not None:
        result["shape_every_frame"] = all(s == prompt.shape for s in metrics.frame_shapes)
    result["all"] = metrics.subject_consistency == 1.0 and all(result.values())
    return result


def summarise(metrics: list[ClipMetrics]) -> dict:
    """Means over clips (None-valued measures skipped) and the share of clips right per named attribute."""
    def mean(name: str) -> float | None:
        values = [getattr(m, name) for m in metrics if getattr(m, name) is not None]
        return float(np.mean(values)) if values else None

    keys = sorted({k for m in metrics for k in m.adherence})
    return {
        "clips": len(metrics),
        **{name: mean(name) for name in ("temporal_flickering", "mean_abs_frame_diff", "subject_consistency",
                                         "motion_smoothness", "path_rms_px", "mean_jump_px",
                                         "mean_jump_frame_widths")},
        "tracked_share": float(np.mean([m.tracked_frames / m.frames for m in metrics])) if metrics else None,
        "adherence": {k: float(np.mean([m.adherence[k] for m in metrics if k in m.adherence])) for k in keys},
    }


def expected_speed_px(resolution: int = BASE_RESOLUTION) -> tuple[float, float]:
    """The training clips' speed range at this resolution (px per frame)."""
    return tuple(s * resolution / BASE_RESOLUTION for s in SPEED_RANGE_PX)
