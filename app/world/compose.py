"""Two-shape scenes (DESIGN.md §1, the compositional grammar): sampling, drawing, captions and prompts.

Two shapes sit in cells of the 3 x 3 grid two apart along one axis (columns 1/4 and 3/4, or rows 1/4
and 3/4; the other coordinate any of the three), so even two large shapes never touch. Captions name
them with a relation (`a red circle left of a blue square`), with `and`, or as `two red circles`
(two identical shapes). These are the categories text-to-image models are known to fail: attribute
binding, spatial relations and counting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.world.scenes import (
    BACKGROUND_RANGE,
    BASE_RESOLUTION,
    COLOUR_NAMES,
    COLOURS,
    FILLER_WORDS,
    MAX_JITTER_PX,
    PLURALS,
    PROMPT_VOCABULARY,
    RELATIONS,
    SHAPES,
    SIZE_RANGES_PX,
    SIZES,
    Prompt,
    PromptError,
    SceneBatch,
    anchor_px,
    format_caption,
    render_layers,
)

KINDS = ("relation", "and", "two")
HORIZONTAL, VERTICAL = 0, 1


@dataclass
class PairBatch:
    """Two-shape scenes: `first` and `second` share one background; `identical` pairs are the `two ...s` kind."""

    first: SceneBatch
    second: SceneBatch
    axis: np.ndarray  # (B,) HORIZONTAL: columns 1/4 and 3/4; VERTICAL: rows 1/4 and 3/4
    identical: np.ndarray  # (B,) bool: same shape, colour, size and side

    def __len__(self) -> int:
        return len(self.first)

    @property
    def resolution(self) -> int:
        return self.first.resolution

    def take(self, index: np.ndarray | slice) -> PairBatch:
        """The pairs at `index` (an int array or a slice)."""
        return PairBatch(self.first.take(index), self.second.take(index), self.axis[index], self.identical[index])


def _cells(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis and the two position indices: 0 and 2 along the axis in random order, the other coordinate free."""
    axis = rng.integers(0, 2, n)
    along_first = 2 * rng.integers(0, 2, n)  # 0 or 2
    along = np.stack([along_first, 2 - along_first])  # (2, B)
    across = rng.integers(0, 3, (2, n))
    col = np.where(axis == HORIZONTAL, along, across)
    row = np.where(axis == HORIZONTAL, across, along)
    position = 3 * row + col  # (2, B)
    return axis, position[0], position[1]


def _attributes(n: int, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, ...]:
    shape = rng.integers(0, len(SHAPES), n)
    colour = rng.integers(0, len(COLOURS), n)
    size = rng.integers(0, len(SIZES), n)
    lo = np.array([SIZE_RANGES_PX[s][0] for s in SIZES])[size]
    hi = np.array([SIZE_RANGES_PX[s][1] for s in SIZES])[size]
    return shape, colour, size, rng.uniform(lo, hi) * scale


def sample_pairs(n: int, rng: np.random.Generator, resolution: int = BASE_RESOLUTION,
                 identical_share: float = 1 / 3) -> PairBatch:
    """Draw n two-shape scenes (deterministic per rng); about `identical_share` of them are identical pairs."""
    scale = resolution / BASE_RESOLUTION
    axis, pos_a, pos_b = _cells(n, rng)
    identical = rng.random(n) < identical_share
    first = _attributes(n, rng, scale)
    other = _attributes(n, rng, scale)
    second = tuple(np.where(identical, a, b) for a, b in zip(first, other))
    background = rng.uniform(*BACKGROUND_RANGE, (n, 3))

    def batch(attrs: tuple[np.ndarray, ...], position: np.ndarray) -> SceneBatch:
        shape, colour, size, side = attrs
        ax, ay = anchor_px(position, resolution)
        jitter = rng.uniform(-MAX_JITTER_PX, MAX_JITTER_PX, (2, n)) * scale
        return SceneBatch(shape=shape.astype(np.int64), colour=colour.astype(np.int64), size=size.astype(np.int64),
                          position=position.astype(np.int64), side_px=side, cx=ax + jitter[0], cy=ay + jitter[1],
                          background=background, resolution=int(resolution))

    return PairBatch(batch(first, pos_a), batch(second, pos_b), axis.astype(np.int64), identical)


def render_pairs(pairs: PairBatch, device: str | torch.device = "cpu", noise: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the pairs as float32 (B, 3, H, W) in [-1, 1]."""
    return render_layers([pairs.first, pairs.second], device, noise, generator)


def relation_index(pairs: PairBatch) -> np.ndarray:
    """Index into RELATIONS of how the first shape sits relative to the second, along the pair's axis."""
    col_a, col_b = pairs.first.position % 3, pairs.second.position % 3
    row_a, row_b = pairs.first.position // 3, pairs.second.position // 3
    horizontal = np.where(col_a < col_b, 0, 1)  # left of / right of
    vertical = np.where(row_a < row_b, 2, 3)  # above / below
    return np.where(pairs.axis == HORIZONTAL, horizontal, vertical)


# ----------------------------------------------------------------------------- captions


def _object(scenes: SceneBatch, i: int, keep_size: bool, keep_colour: bool) -> Prompt:
    return Prompt(shape=SHAPES[scenes.shape[i]], colour=COLOUR_NAMES[scenes.colour[i]] if keep_colour else None,
                  size=SIZES[scenes.size[i]] if keep_size else None)


def pair_captions(pairs: PairBatch, rng: np.random.Generator, p_partial: float = 0.3,
                  p_drop: float = 0.1) -> list[str]:
    """The training mix for pairs: `two ...s` for identical pairs; otherwise a relation or `and` (half each, `and`
    naming the two in random order); p_partial of them leave out a non-empty subset of the sizes and colours,
    p_drop are "" (caption dropout)."""
    n = len(pairs)
    u = rng.random(n)
    drop = u < p_drop
    partial = (u >= p_drop) & (u < p_drop + p_partial)
    code = rng.integers(0, 15, n)  # a 4-bit keep mask (size, colour of each shape) that is never all-kept
    keep = [~partial | ((code >> k) & 1).astype(bool) for k in range(4)]
    use_and = rng.random(n) < 0.5
    swap = rng.random(n) < 0.5
    relation = relation_index(pairs)
    out = []
    for i in range(n):
        a = _object(pairs.first, i, keep[0][i], keep[1][i])
        b = _object(pairs.second, i, keep[2][i], keep[3][i])
        if pairs.identical[i]:
            prompt = PairPrompt("two", a, a)
        elif use_and[i]:
            prompt = PairPrompt("and", *((b, a) if swap[i] else (a, b)))
        else:
            prompt = PairPrompt(RELATIONS[relation[i]], a, b)
        out.append("" if drop[i] else prompt.canonical)
    return out


# ----------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PairPrompt:
    """A parsed two-shape prompt: `kind` is a relation (RELATIONS), "and" or "two"; `two` has first == second."""

    kind: str
    first: Prompt
    second: Prompt

    @property
    def canonical(self) -> str:
        if self.kind == "two":
            return format_caption(self.first.shape, self.first.colour, self.first.size).replace("a ", "two ", 1) + "s"
        return f"{self.first.canonical} {self.kind} {self.second.canonical}"

    @property
    def relation(self) -> str | None:
        return self.kind if self.kind in RELATIONS else None

    @property
    def category(self) -> str:
        """The evaluation category: `counting` (two), `relation`, or `binding` (and)."""
        return {"two": "counting", "and": "binding"}.get(self.kind, "relation")


_CONNECTORS = {"and": "and", "above": "above", "below": "below"}


def is_pair_prompt(words: list[str]) -> bool:
    """Whether normalised prompt words ask for two shapes."""
    return any(w in ("two", "and", "above", "below", "of") or w in PLURALS for w in words)


def _connector(words: list[str]) -> tuple[int, int, str]:
    """(start, end, relation) of the one connector: `and`, `above`, `below`, `left of`, `right of`."""
    found = []
    for i, w in enumerate(words):
        if w in _CONNECTORS:
            found.append((i, i + 1, _CONNECTORS[w]))
        elif w == "of":
            if i == 0 or words[i - 1] not in ("left", "right"):
                raise PromptError("'of' follows 'left' or 'right': 'a red circle left of a blue square'")
            found.append((i - 1, i + 1, f"{words[i - 1]} of"))
    if len(found) != 1:
        named = ", ".join(repr(f[2]) for f in found) or "none"
        raise PromptError(f"a two-shape prompt joins two shapes with one of 'left of', 'right of', 'above', "
                          f"'below', 'and'; found {named}")
    return found[0]


def _pair_object(words: list[str], which: str) -> Prompt:
    """One side of a two-shape prompt: size, colour and shape, no position."""
    words = [w for w in words if w not in FILLER_WORDS]
    places = [w for w in words if w in ("top", "bottom", "left", "right", "center")]
    if places:
        raise PromptError(f"a two-shape prompt places its shapes with its relation, not with "
                          f"'{' '.join(places)}' ({which} shape)")
    prompt = _single(words, which)
    if prompt.shape is None:
        raise PromptError(f"name the {which} shape ({', '.join(SHAPES)})")
    return prompt


def _single(words: list[str], which: str) -> Prompt:
    """Size, colour and shape from a list of words with nothing else in it."""
    kinds = {"shape": SHAPES, "colour": tuple(COLOURS), "size": SIZES}
    unknown = [w for w in words if not any(w in v for v in kinds.values())]
    if unknown:
        raise PromptError(f"'{' '.join(unknown)}' is not a size, colour or shape ({which} shape)", unknown)
    found = {}
    for kind, values in kinds.items():
        named = list(dict.fromkeys(w for w in words if w in values))
        if len(named) > 1:
            raise PromptError(f"the {which} shape has one {kind}, got {' and '.join(named)}")
        found[kind] = named[0] if named else None
    return Prompt(**found)


def parse_pair_words(words: list[str]) -> PairPrompt:
    """Parse normalised words of a two-shape prompt (see is_pair_prompt); PromptError says what is wrong."""
    unknown = list(dict.fromkeys(w for w in words if w not in PROMPT_VOCABULARY))
    if unknown:
        raise PromptError(f"unknown word{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}", unknown)
    if "two" in words:
        before = [w for w in words[:words.index("two")] if w not in FILLER_WORDS]
        if words.count("two") > 1 or before:
            raise PromptError("a counting prompt starts with 'two': 'two red circles'")
        rest = [PLURALS.get(w, w) for w in words if w != "two"]
        if any(w in rest for w in ("and", "above", "below", "of")):
            raise PromptError("'two ...' names two identical shapes; for two different ones write "
                              "'a red circle and a blue square'")
        shape = _pair_object(rest, "counted")
        return PairPrompt("two", shape, shape)
    plural = [w for w in words if w in PLURALS]
    if plural:
        raise PromptError(f"'{plural[0]}' needs 'two' before it: 'two {plural[0]}'")
    start, end, relation = _connector(words)
    first = _pair_object(words[:start], "first")
    second = _pair_object(words[end:], "second")
    return PairPrompt(relation, first, second)
