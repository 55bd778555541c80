"""Video clips (DESIGN.md §1): one shape moving in a straight line at constant speed.

A clip is a scene from `app.world.scenes` plus a velocity: frame k draws the shape at start + k * velocity,
and the start is drawn so that the whole path stays inside the frame. Captions read
`a {size} {colour} {shape} moving {direction} from the {position}`; size, colour, direction and
start may each be left out (partial captions), and the empty caption trains the unconditional model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import torch

from app.world.scenes import (
    BASE_RESOLUTION,
    COLOUR_NAMES,
    COLOURS,
    FILLER_WORDS,
    MAX_PROMPT_CHARS,
    POSITIONS,
    SHAPES,
    SIZES,
    SYNONYMS,
    Prompt,
    PromptError,
    SceneBatch,
    anchor_px,
    parse_object_prompt,
    render,
    sample_scenes,
)

DEFAULT_FRAMES = 8
SPEED_RANGE_PX = (2.0, 4.0)  # per frame at 64 px, along the direction of motion
# (dx, dy) unit steps in image coordinates: y grows downwards, so "up" is dy = -1.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
    "up left": (-1, -1), "up right": (1, -1), "down left": (-1, 1), "down right": (1, 1),
}
DIRECTION_NAMES = tuple(DIRECTIONS)
EDGE_MARGIN_PX = 1.0  # the shape's bounding box keeps this far from every edge in every frame


@dataclass
class ClipBatch:
    """A batch of clips: the first frame's scene, a velocity per clip and the frame count."""

    scenes: SceneBatch  # frame 0; its `position` is the start position's index
    direction: np.ndarray  # (B,) int64 index into DIRECTION_NAMES
    speed_px: np.ndarray  # (B,) float pixels per frame at `scenes.resolution`
    frames: int = DEFAULT_FRAMES

    def __len__(self) -> int:
        return len(self.direction)

    @property
    def velocity(self) -> np.ndarray:
        """(B, 2) pixels per frame (dx, dy); diagonals move at the same speed as straight lines."""
        unit = np.array([DIRECTIONS[d] for d in DIRECTION_NAMES], dtype=np.float64)[self.direction]
        return unit / np.linalg.norm(unit, axis=1, keepdims=True) * self.speed_px[:, None]

    def frame(self, k: int) -> SceneBatch:
        """The scenes of frame k: the same shape, colour, size and background, moved k steps."""
        v = self.velocity
        return replace(self.scenes, cx=self.scenes.cx + k * v[:, 0], cy=self.scenes.cy + k * v[:, 1])

    def centres(self) -> np.ndarray:
        """(B, frames, 2) the shape's bounding-box centre (x, y) in every frame."""
        k = np.arange(self.frames, dtype=np.float64)[None, :, None]
        start = np.stack([self.scenes.cx, self.scenes.cy], 1)[:, None, :]
        return start + k * self.velocity[:, None, :]


def nearest_position(cx: np.ndarray, cy: np.ndarray, resolution: int) -> np.ndarray:
    """Index into POSITIONS of the anchor (1/4, 1/2, 3/4 of each side) nearest to each centre."""
    col = np.clip(np.round(np.asarray(cx) / resolution * 4 - 1), 0, 2)
    row = np.clip(np.round(np.asarray(cy) / resolution * 4 - 1), 0, 2)
    return (3 * row + col).astype(np.int64)


def sample_clips(n: int, rng: np.random.Generator, frames: int = DEFAULT_FRAMES,
                 resolution: int = BASE_RESOLUTION) -> ClipBatch:
    """Draw n clips: shape, colour, size as for images; a direction, a speed and a start that keeps the path inside."""
    if frames < 2:
        raise ValueError("a clip has at least 2 frames")
    scenes = sample_scenes(n, rng, resolution)
    scale = resolution / BASE_RESOLUTION
    direction = rng.integers(0, len(DIRECTIONS), n).astype(np.int64)
    speed = rng.uniform(*SPEED_RANGE_PX, n) * scale
    clips = ClipBatch(scenes, direction, speed, frames)
    travel = clips.velocity * (frames - 1)  # (B, 2) from the first frame's centre to the last's
    half = scenes.side_px / 2 + EDGE_MARGIN_PX * scale
    # The first centre is uniform over the box in which both ends of the path stay inside.
    lo = np.stack([half - np.minimum(travel[:, 0], 0), half - np.minimum(travel[:, 1], 0)], 1)
    hi = np.stack([resolution - half - np.maximum(travel[:, 0], 0),
                   resolution - half - np.maximum(travel[:, 1], 0)], 1)
    start = lo + rng.random((n, 2)) * np.maximum(hi - lo, 0.0)
    scenes.cx, scenes.cy = start[:, 0], start[:, 1]
    scenes.position = nearest_position(start[:, 0], start[:, 1], resolution)
    return clips


OPPOSITE = np.array([DIRECTION_NAMES.index(" ".join(
    {"up": "down", "down": "up", "left": "right", "right": "left"}[w] for w in name.split()))
    for name in DIRECTION_NAMES], dtype=np.int64)


def reverse_clips(clips: ClipBatch) -> ClipBatch:
    """The clips played backwards: they start where they ended and move the opposite way."""
    end = clips.centres()[:, -1]  # (B, 2)
    res = clips.scenes.resolution
    scenes = replace(clips.scenes, cx=end[:, 0], cy=end[:, 1], position=nearest_position(end[:, 0], end[:, 1], res))
    return ClipBatch(scenes, OPPOSITE[clips.direction], clips.speed_px, clips.frames)


def render_clips(clips: ClipBatch, device: str | torch.device = "cpu") -> torch.Tensor:
    """All frames as float32 (B, F, 3, H, W) in [-1, 1]."""
    frames = [render(clips.frame(k), device) for k in range(clips.frames)]  # F x (B, 3, H, W)
    return torch.stack(frames, dim=1)


def clip_attributes(clips: ClipBatch, i: int) -> dict:
    """One clip as names plus its geometry."""
    s = clips.scenes
    return {
        "shape": SHAPES[s.shape[i]], "colour": COLOUR_NAMES[s.colour[i]], "size": SIZES[s.size[i]],
        "direction": DIRECTION_NAMES[clips.direction[i]], "start": POSITIONS[s.position[i]],
        "speed_px": float(clips.speed_px[i]), "frames": clips.frames,
        "centres": clips.centres()[i].round(3).tolist(), "side_px": float(s.side_px[i]),
    }


# ----------------------------------------------------------------------------- captions

CLIP_ATTRIBUTES = ("size", "colour", "direction", "start")  # the ones a caption may leave out


def format_clip_caption(shape: str | None, colour: str | None = None, size: str | None = None,
                        direction: str | None = None, start: str | None = None) -> str:
    """`a {size} {colour} {shape} moving {direction} from the {start}`; "" when no shape."""
    if shape is None:
        return ""
    words = ["a"] + [w for w in (size, colour) if w] + [shape]
    if direction:
        words += ["moving", direction]
    if start:
        words += ["from", "the", start]
    return " ".join(words)


def clip_captions(clips: ClipBatch, keep: dict[str, np.ndarray] | None = None) -> list[str]:
    """Captions for every clip; keep[attr] (bool (B,)) says which of CLIP_ATTRIBUTES are named."""
    n, s = len(clips), clips.scenes
    keep = keep or {}
    mask = {a: np.broadcast_to(np.asarray(keep.get(a, True), dtype=bool), (n,)) for a in CLIP_ATTRIBUTES}
    return [
        format_clip_caption(
            SHAPES[s.shape[i]],
            colour=COLOUR_NAMES[s.colour[i]] if mask["colour"][i] else None,
            size=SIZES[s.size[i]] if mask["size"][i] else None,
            direction=DIRECTION_NAMES[clips.direction[i]] if mask["direction"][i] else None,
            start=POSITIONS[s.position[i]] if mask["start"][i] else None,
        )
        for i in range(n)
    ]


def random_clip_captions(clips: ClipBatch, rng: np.random.Generator, p_partial: float = 0.3,
                         p_drop: float = 0.1, p_start: float = 0.5) -> list[str]:
    """The training mix: "" (dropout), partial captions (a non-empty subset left out) and full ones.

    The start is named in only p_start of the otherwise full captions, since most prompts will not
    say where the shape begins.
    """
    n = len(clips)
    u = rng.random(n)
    drop = u < p_drop
    partial = (u >= p_drop) & (u < p_drop + p_partial)
    code = rng.integers(0, 2 ** len(CLIP_ATTRIBUTES) - 1, n)  # never all-kept
    keep = {a: ~partial | ((code >> k) & 1).astype(bool) for k, a in enumerate(CLIP_ATTRIBUTES)}
    keep["start"] &= partial | (rng.random(n) < p_start)
    return ["" if d else c for d, c in zip(drop, clip_captions(clips, keep))]


# ----------------------------------------------------------------------------- prompts

MOTION_SYNONYMS = {
    "upward": "up", "upwards": "up", "downward": "down", "downwards": "down",
    "leftward": "left", "leftwards": "left", "rightward": "right", "rightwards": "right",
    "goes": "moving", "going": "moving", "moves": "moving", "move": "moving", "travelling": "moving",
    "traveling": "moving", "sliding": "moving", "drifting": "moving",
}
_DIRECTION_WORDS = {"up", "down", "left", "right"}
VIDEO_VOCABULARY = sorted({*FILLER_WORDS, *SHAPES, *COLOURS, *SIZES, "top", "bottom", "left", "right",
                           "center", "moving", "from", "up", "down"})


@dataclass(frozen=True)
class VideoPrompt:
    """A parsed clip prompt: the image attributes, the direction and the start (None = left open)."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    direction: str | None = None
    start: str | None = None

    @property
    def canonical(self) -> str:
        return format_clip_caption(self.shape, self.colour, self.size, self.direction, self.start)

    @property
    def image_prompt(self) -> Prompt:
        """What the image model can be asked for: the attributes, with the start as the position."""
        return Prompt(shape=self.shape, colour=self.colour, size=self.size, position=self.start)

    def named(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


def video_vocabulary_help() -> str:
    return (f"A clip prompt reads like 'a small red circle moving up right from the bottom left': "
            f"shapes {', '.join(SHAPES)}; colours {', '.join(COLOURS)}; sizes {', '.join(SIZES)}; "
            f"directions {', '.join(DIRECTION_NAMES)}; starts (after 'from the') {', '.join(POSITIONS)}")


class VideoPromptError(PromptError):
    """A clip prompt the model cannot draw; the message shows the prompt's form and its words."""

    def __init__(self, problem: str, unknown_words: list[str] | None = None):
        self.unknown_words = list(unknown_words or [])
        self.vocabulary = list(VIDEO_VOCABULARY)
        self.problem = problem
        ValueError.__init__(self, f"{problem}. {video_vocabulary_help()}")


def _direction(words: list[str]) -> str | None:
    vertical = sorted({w for w in words if w in ("up", "down")})
    horizontal = sorted({w for w in words if w in ("left", "right")})
    if len(vertical) > 1 or len(horizontal) > 1:
        raise VideoPromptError(f"a clip moves in one direction, got {' and '.join(vertical + horizontal)}")
    named = " ".join(vertical + horizontal)
    return named or None


def _refuse_image_position(head: list[str]) -> None:
    """'at the top' / 'in the center' is an image prompt's position; read as motion it would silently turn
    'a circle at the top moving left' into 'moving up left', so ask for 'from the ...' instead."""
    places = {"top", "bottom", "left", "right", "center"}
    for i, word in enumerate(head):
        if word not in ("at", "in"):
            continue
        place = []
        for w in head[i + 1:]:
            if SYNONYMS.get(w, w) not in places | set(FILLER_WORDS):
                break
            place.append(SYNONYMS.get(w, w))
        named = [w for w in place if w in places]
        if named:
            raise VideoPromptError(f"say where the clip starts with 'from the {' '.join(named)}', "
                                   f"not '{word} the {' '.join(named)}'")


def parse_video_prompt(text: str) -> VideoPrompt:
    """Parse a clip prompt forgivingly: '{attributes} [moving {direction}] [from the {start}]'.

    Before 'from', left/right/up/down name the direction (up/down first for diagonals: 'right up'
    becomes 'up right'); after it, the words name where the shape starts, as positions do in image
    prompts. 'top'/'bottom' before 'from' mean up/down.
    """
    if len(text) > MAX_PROMPT_CHARS:
        raise VideoPromptError(f"the prompt has {len(text)} characters, at most {MAX_PROMPT_CHARS} are allowed")
    words = re.sub(r"[\s\-_,.;:!?\"']+", " ", text.lower()).split()
    words = [MOTION_SYNONYMS.get(w, w) for w in words]
    if words.count("from") > 1:
        raise VideoPromptError("a clip starts in one place: say 'from the ...' once")
    head, start_words = (words[:words.index("from")], words[words.index("from") + 1:]) if "from" in words \
        else (words, [])
    if "from" in words and not [w for w in start_words if w not in FILLER_WORDS]:
        raise VideoPromptError("'from' must be followed by a start position, e.g. 'from the top left'")
    _refuse_image_position(head)
    vertical_alias = {"top": "up", "bottom": "down", "upper": "up", "lower": "down"}
    head = [vertical_alias.get(w, w) for w in head if w != "moving"]
    direction = _direction([w for w in head if w in _DIRECTION_WORDS])
    attributes = [w for w in head if w not in _DIRECTION_WORDS]
    known = {*SHAPES, *COLOURS, *SIZES, *FILLER_WORDS, *SYNONYMS}
    unknown = list(dict.fromkeys(w for w in attributes + start_words
                                 if w not in known and w not in ("top", "bottom", "left", "right", "center")))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise VideoPromptError(f"unknown word{plural}: {', '.join(unknown)}", unknown)
    if any(SYNONYMS.get(w, w) == "center" for w in attributes):
        raise VideoPromptError("say where the clip starts with 'from the center'")
    place_words = {"top", "bottom", "left", "right", "center", *FILLER_WORDS}
    if any(SYNONYMS.get(w, w) not in place_words for w in start_words):
        raise VideoPromptError("after 'from the' only a start position may follow, e.g. 'from the top left'")
    try:
        image = parse_object_prompt(" ".join(attributes))
        start = parse_object_prompt("circle " + " ".join(start_words)).position if start_words else None
    except PromptError as err:
        raise VideoPromptError(err.problem, err.unknown_words) from err
    prompt = VideoPrompt(shape=image.shape, colour=image.colour, size=image.size, direction=direction, start=start)
    if prompt.shape is None and prompt.named():
        raise VideoPromptError(f"name a shape ({', '.join(SHAPES)}) along with {', '.join(prompt.named().values())}")
    return prompt


def start_anchor_px(start: str, resolution: int = BASE_RESOLUTION) -> tuple[float, float]:
    """The nominal centre of a named start position."""
    x, y = anchor_px(np.array([POSITIONS.index(start)]), resolution)
    return float(x[0]), float(y[0])


def select(clips: ClipBatch, index: np.ndarray | slice) -> ClipBatch:
    """The clips at `index` (an int array or a slice)."""
    return ClipBatch(clips.scenes.take(index), clips.direction[index], clips.speed_px[index], clips.frames)
