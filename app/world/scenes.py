"""The scene grammar (DESIGN.md §1): sampling, drawing, captioning and parsing prompts.

One scene is one flat-coloured shape on a light background. Everything here is seeded by a
numpy Generator, so a training run can regenerate any scene from its seed, and every caption
can be checked against its image by `app.measure.judge`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

# ----------------------------------------------------------------------------- the grammar

SHAPES = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 48, 39),
    "orange": (245, 130, 32),
    "yellow": (240, 200, 30),
    "green": (40, 160, 70),
    "blue": (40, 90, 200),
    "purple": (130, 60, 170),
}
COLOUR_NAMES = tuple(COLOURS)
PALETTE = np.array([COLOURS[c] for c in COLOUR_NAMES], dtype=np.float32)  # (6, 3)
SIZES = ("small", "large")
POSITIONS = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # row-major: index = 3 * row + column

BASE_RESOLUTION = 64
SIZE_RANGES_PX = {"small": (10.0, 14.0), "large": (20.0, 26.0)}  # bounding-box side at 64 px
MAX_JITTER_PX = 2.0  # at 64 px
BACKGROUND_RANGE = (224.0, 248.0)  # per channel: a light tint per scene, always >= 200


@dataclass
class SceneBatch:
    """A batch of scenes: attribute indices plus the exact geometry that render() draws."""

    shape: np.ndarray  # (B,) int64 index into SHAPES
    colour: np.ndarray  # (B,) int64 index into COLOUR_NAMES
    size: np.ndarray  # (B,) int64 index into SIZES
    position: np.ndarray  # (B,) int64 index into POSITIONS
    side_px: np.ndarray  # (B,) float bounding-box side in pixels at `resolution`
    cx: np.ndarray  # (B,) float centre of the bounding box, pixels from the left edge
    cy: np.ndarray  # (B,) float centre of the bounding box, pixels from the top edge
    background: np.ndarray  # (B, 3) float, 0..255
    resolution: int = BASE_RESOLUTION

    def __len__(self) -> int:
        return len(self.shape)

    def take(self, index: np.ndarray | slice) -> SceneBatch:
        """The scenes at `index` (an int array or a slice)."""
        return SceneBatch(**{k: (v[index] if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()})


def anchor_px(position: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Nominal centre (x, y) of each position index: 1/4, 1/2 or 3/4 of the side."""
    position = np.asarray(position)
    col, row = position % 3, position // 3
    return (col + 1) * resolution / 4.0, (row + 1) * resolution / 4.0


def sample_scenes(n: int, rng: np.random.Generator, resolution: int = BASE_RESOLUTION) -> SceneBatch:
    """Draw n scenes uniformly over shape, colour, size and position (deterministic per rng)."""
    scale = resolution / BASE_RESOLUTION
    shape = rng.integers(0, len(SHAPES), n)
    colour = rng.integers(0, len(COLOURS), n)
    size = rng.integers(0, len(SIZES), n)
    position = rng.integers(0, len(POSITIONS), n)
    lo = np.array([SIZE_RANGES_PX[s][0] for s in SIZES])[size]
    hi = np.array([SIZE_RANGES_PX[s][1] for s in SIZES])[size]
    side = rng.uniform(lo, hi) * scale
    ax, ay = anchor_px(position, resolution)
    jitter = rng.uniform(-MAX_JITTER_PX, MAX_JITTER_PX, (2, n)) * scale
    background = rng.uniform(*BACKGROUND_RANGE, (n, 3))
    return SceneBatch(
        shape=shape.astype(np.int64), colour=colour.astype(np.int64),
        size=size.astype(np.int64), position=position.astype(np.int64),
        side_px=side, cx=ax + jitter[0], cy=ay + jitter[1],
        background=background, resolution=int(resolution),
    )


def scene_attributes(scenes: SceneBatch, i: int) -> dict:
    """One scene as names (not indices) plus its drawn geometry."""
    return {
        "shape": SHAPES[scenes.shape[i]],
        "colour": COLOUR_NAMES[scenes.colour[i]],
        "size": SIZES[scenes.size[i]],
        "position": POSITIONS[scenes.position[i]],
        "side_px": float(scenes.side_px[i]),
        "cx": float(scenes.cx[i]),
        "cy": float(scenes.cy[i]),
        "background": tuple(float(v) for v in scenes.background[i]),
        "resolution": scenes.resolution,
    }


# ----------------------------------------------------------------------------- drawing


def render(scenes: SceneBatch, device: str | torch.device = "cpu", noise: float = 0.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the scenes as float32 (B, 3, H, W) in [-1, 1], anti-aliased, in vectorised passes.

    Each shape is a signed distance d (pixels, negative inside) and a pixel's coverage is
    clamp(0.5 - d, 0, 1): interior pixels hold the exact palette colour, edge pixels blend.
    `noise` adds Gaussian noise of that standard deviation (in [-1, 1] units) when > 0.
    """
    return render_layers([scenes], device, noise, generator)


def render_layers(layers: list[SceneBatch], device: str | torch.device = "cpu", noise: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw several shapes per image: layer k's scene i is painted over image i, on layers[0]'s background."""
    dev = torch.device(device)
    f32 = dict(device=dev, dtype=torch.float32)
    first = layers[0]
    geometry = np.stack([np.stack([s.cx, s.cy, s.side_px, s.shape], 1) for s in layers], 1)  # (B, K, 4)
    geometry = torch.as_tensor(geometry, **f32)
    fills = torch.as_tensor(np.stack([PALETTE[s.colour] for s in layers], 1), **f32)  # (B, K, 3)
    background = torch.as_tensor(first.background, **f32)  # (B, 3)
    # On a CPU, chunks that stay in cache draw about 3x faster than one big pass.
    chunk = len(first) if dev.type == "cuda" else 256
    img = torch.cat([
        _draw(geometry[i:i + chunk], fills[i:i + chunk], background[i:i + chunk], first.resolution)
        for i in range(0, len(first), max(chunk, 1))
    ]) if len(first) else torch.empty(0, 3, first.resolution, first.resolution, **f32)
    if noise > 0:
        img = img + noise * torch.randn(img.shape, generator=generator, **f32)
    return img.clamp(-1.0, 1.0)


def _draw(geometry: torch.Tensor, fills: torch.Tensor, background: torch.Tensor, res: int) -> torch.Tensor:
    """geometry (B, K, 4) = cx, cy, side, shape index; fills (B, K, 3) and background (B, 3) rgb -> (B, 3, H, W)."""
    grid = torch.arange(res, device=geometry.device, dtype=torch.float32) + 0.5  # pixel centres
    img = background[:, :, None, None].expand(-1, -1, res, res)  # (B, 3, H, W)
    for k in range(geometry.shape[1]):
        cx, cy, side, shape = (geometry[:, k, j].view(-1, 1, 1) for j in range(4))  # (B, 1, 1) each
        dx = grid.view(1, 1, res) - cx  # (B, 1, W)
        dy = grid.view(1, res, 1) - cy  # (B, H, 1)
        half = side / 2
        circle = torch.sqrt(dx * dx + dy * dy) - half  # (B, H, W)
        square = torch.maximum(dx.abs(), dy.abs()) - half  # (B, H, W)
        # Isosceles, apex up: base s, height s; the max of the three edges' half-plane distances.
        slant = (2 * dx.abs() - (dy + half)) / 5 ** 0.5  # (B, H, W)
        triangle = torch.maximum(slant, dy - half)  # (B, H, W)
        dist = torch.where(shape == 0, circle, torch.where(shape == 1, square, triangle))
        alpha = (0.5 - dist).clamp(0.0, 1.0).unsqueeze(1)  # (B, 1, H, W)
        img = torch.lerp(img, fills[:, k, :, None, None], alpha)
    return img / 127.5 - 1.0  # (B, 3, H, W)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> uint8 numpy (B, H, W, 3)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------- captions

ATTRIBUTES = ("size", "colour", "position")  # the ones a caption may leave out


def format_caption(shape: str | None, colour: str | None = None, size: str | None = None,
                   position: str | None = None) -> str:
    """`a {size} {colour} {shape} at the {position}` (`in the center`); "" when no shape."""
    if shape is None:
        return ""
    words = ["a"] + [w for w in (size, colour) if w] + [shape]
    if position == "center":
        words += ["in", "the", "center"]
    elif position:
        words += ["at", "the", position]
    return " ".join(words)


def caption(scenes: SceneBatch, keep: dict[str, np.ndarray] | None = None) -> list[str]:
    """Captions for every scene; keep[attr] (bool (B,)) says which of size/colour/position are named."""
    n = len(scenes)
    keep = keep or {}
    mask = {a: np.broadcast_to(np.asarray(keep.get(a, True), dtype=bool), (n,)) for a in ATTRIBUTES}
    return [
        format_caption(
            SHAPES[scenes.shape[i]],
            colour=COLOUR_NAMES[scenes.colour[i]] if mask["colour"][i] else None,
            size=SIZES[scenes.size[i]] if mask["size"][i] else None,
            position=POSITIONS[scenes.position[i]] if mask["position"][i] else None,
        )
        for i in range(n)
    ]


def random_captions(scenes: SceneBatch, rng: np.random.Generator, p_partial: float = 0.3,
                    p_drop: float = 0.1) -> list[str]:
    """The training mix: full captions, partial ones (a non-empty subset left out) and "" (dropout)."""
    n = len(scenes)
    u = rng.random(n)
    drop = u < p_drop
    partial = (u >= p_drop) & (u < p_drop + p_partial)
    # Codes 0..6 of a 3-bit keep mask exclude 7 (= all kept), so a partial caption always omits something.
    code = rng.integers(0, 7, n)
    keep = {a: ~partial | ((code >> k) & 1).astype(bool) for k, a in enumerate(ATTRIBUTES)}
    return ["" if d else c for d, c in zip(drop, caption(scenes, keep))]


# ----------------------------------------------------------------------------- tokens

DIRECTION_WORDS = ("moving", "from", "up", "down")  # the video captions' extra words (DESIGN §1)
RELATIONS = ("left of", "right of", "above", "below")  # two-object captions: the first shape relative to the second
PAIR_WORDS = ("of", "above", "below", "and", "two")  # the two-object captions' extra words (DESIGN §1)
PLURALS = {f"{shape}s": shape for shape in SHAPES}  # `two red circles`: a token reads the plural as its shape
# Appended, never inserted: a word's id is its row in every trained caption encoder's embedding.
VOCAB = (
    "<pad>", "a", "at", "in", "the",
    *SIZES, *COLOUR_NAMES, *SHAPES,
    "top", "bottom", "left", "right", "center",
    *DIRECTION_WORDS,
    *PAIR_WORDS,
)
MAX_TOKENS = 12
TOKEN_ID = {w: i for i, w in enumerate(VOCAB)}


def tokenize(captions: list[str]) -> np.ndarray:
    """Canonical captions -> int64 (B, MAX_TOKENS) word ids, right-padded with 0; "" gives all zeros."""
    out = np.zeros((len(captions), MAX_TOKENS), dtype=np.int64)
    for i, text in enumerate(captions):
        words = [PLURALS.get(w, w) for w in text.split()]
        unknown = [w for w in words if w not in TOKEN_ID or w == "<pad>"]
        if unknown:
            raise PromptError(f"not a canonical caption: unknown word(s) {unknown}", unknown)
        if len(words) > MAX_TOKENS:
            raise PromptError(f"caption has {len(words)} words, at most {MAX_TOKENS} fit", [])
        out[i, : len(words)] = [TOKEN_ID[w] for w in words]
    return out


def detokenize(ids: np.ndarray) -> list[str]:
    """Inverse of tokenize(): (B, MAX_TOKENS) ids -> captions (`two ... circles` comes back plural)."""
    out = []
    for row in np.asarray(ids):
        words = [VOCAB[j] for j in row if j != 0]
        if words[:1] == ["two"]:
            words[-1] += "s"
        out.append(" ".join(words))
    return out


# ----------------------------------------------------------------------------- prompts

MAX_PROMPT_CHARS = 200
FILLER_WORDS = ("a", "an", "the", "at", "in", "on", "to")  # "to": `to the left of`
SYNONYMS = {
    "big": "large", "huge": "large", "tiny": "small", "little": "small",
    "violet": "purple",
    "box": "square", "disc": "circle", "disk": "circle", "dot": "circle",
    "middle": "center", "centre": "center", "centered": "center", "centred": "center",
    "central": "center", "upper": "top", "lower": "bottom",
    "over": "above", "under": "below", "beneath": "below", "2": "two",
}
_VERTICAL, _HORIZONTAL = ("top", "bottom"), ("left", "right")
_KIND = {**{w: "shape" for w in SHAPES}, **{w: "colour" for w in COLOURS}, **{w: "size" for w in SIZES},
         **{w: "position" for w in (*_VERTICAL, *_HORIZONTAL, "center")}}
PROMPT_VOCABULARY = sorted({*FILLER_WORDS, *_KIND, *PAIR_WORDS, *PLURALS})


class PromptError(ValueError):
    """A prompt the model cannot draw; the message lists the words it knows."""

    def __init__(self, problem: str, unknown_words: list[str] | None = None):
        self.unknown_words = list(unknown_words or [])
        self.vocabulary = list(PROMPT_VOCABULARY)
        self.problem = problem
        super().__init__(f"{problem}. {vocabulary_help()}")


def vocabulary_help() -> str:
    """One sentence naming every word a prompt may use."""
    return (
        f"The model knows: shapes {', '.join(SHAPES)}; colours {', '.join(COLOURS)}; "
        f"sizes {', '.join(SIZES)}; positions {', '.join(POSITIONS)}; "
        f"and the words {', '.join(FILLER_WORDS)} (also accepted: {', '.join(sorted(SYNONYMS))}). "
        f"Two shapes: 'a red circle left of a blue square' (also right of, above, below), "
        f"'a red circle and a blue square', 'two red circles'"
    )


@dataclass(frozen=True)
class Prompt:
    """A parsed image prompt: each attribute a name, or None when the prompt leaves it open."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    position: str | None = None

    @property
    def canonical(self) -> str:
        """The caption form that tokenize() expects ("" for the unconditional prompt)."""
        return format_caption(self.shape, self.colour, self.size, self.position)

    def named(self) -> dict[str, str]:
        """The attributes this prompt names."""
        return {k: v for k, v in vars(self).items() if v is not None}


def _position(words: list[str]) -> str | None:
    """Combine position words: 'top'+'left' -> 'top left'; 'center' with one side -> that side."""
    vertical = sorted({w for w in words if w in _VERTICAL})
    horizontal = sorted({w for w in words if w in _HORIZONTAL})
    if len(vertical) > 1 or len(horizontal) > 1:
        raise PromptError(f"a prompt names one position, got {' and '.join(vertical + horizontal)}")
    named = vertical + horizontal
    if named:
        return " ".join(named)
    return "center" if "center" in words else None


def prompt_words(text: str) -> list[str]:
    """A prompt as lower-case words with punctuation dropped and synonyms replaced; refuses an over-long one."""
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(f"the prompt has {len(text)} characters, at most {MAX_PROMPT_CHARS} are allowed")
    words = re.sub(r"[\s\-_,.;:!?\"']+", " ", text.lower()).split()
    return [SYNONYMS.get(w, w) for w in words]


def parse_object_prompt(text: str) -> Prompt:
    """Parse a one-shape prompt forgivingly (case, punctuation, articles, synonyms, word order).

    Rules: every word must be known (PromptError lists the vocabulary otherwise); at most one
    value per attribute; a prompt naming any attribute must name a shape, since training captions
    always do; the empty prompt is the unconditional one. `app.world.prompts.parse_prompt` reads
    two-shape prompts as well.
    """
    words = prompt_words(text)
    unknown = list(dict.fromkeys(w for w in words if w not in _KIND and w not in FILLER_WORDS))
    if unknown:
        video = [w for w in unknown if w in DIRECTION_WORDS]
        note = f" ({', '.join(video)}: words of video captions, not of images)" if video else ""
        plural = "s" if len(unknown) > 1 else ""
        raise PromptError(f"unknown word{plural}: {', '.join(unknown)}{note}", unknown)
    found: dict[str, str | None] = {}
    for kind in ("shape", "colour", "size"):
        values = list(dict.fromkeys(w for w in words if _KIND.get(w) == kind))
        if len(values) > 1:
            raise PromptError(f"a prompt names one {kind}, got {' and '.join(values)}")
        found[kind] = values[0] if values else None
    found["position"] = _position([w for w in words if _KIND.get(w) == "position"])
    prompt = Prompt(**found)
    if prompt.shape is None and prompt.named():
        named = ", ".join(prompt.named().values())
        raise PromptError(f"name a shape ({', '.join(SHAPES)}) along with {named}")
    return prompt
