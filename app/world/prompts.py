"""Every image prompt, one shape or two: `parse_prompt` reads either form (DESIGN.md §1), and `matching_scene`
draws a scene of the grammar that fits one."""

from __future__ import annotations

import numpy as np
import torch

from app.world.compose import (
    PairBatch,
    PairPrompt,
    is_pair_prompt,
    parse_pair_words,
    relation_index,
    render_pairs,
    sample_pairs,
)
from app.world.scenes import (
    COLOUR_NAMES,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    Prompt,
    SceneBatch,
    parse_object_prompt,
    prompt_words,
    render,
    sample_scenes,
)

ImagePrompt = Prompt | PairPrompt
DRAWS = 8192  # scenes drawn at a time; the rarest prompt (two full objects and a relation) fits about 1 in 8,000
MAX_DRAWS = 16  # batches of DRAWS before giving up: every prompt of the grammar fits long before
_NAMES = {"shape": SHAPES, "colour": COLOUR_NAMES, "size": SIZES, "position": POSITIONS}


def parse_prompt(text: str) -> ImagePrompt:
    """Parse a prompt forgivingly: `a large red circle at the top left`, `a red circle left of a blue square`,
    `a red circle and a blue square`, `two red circles`; the empty prompt is the unconditional one.
    PromptError says what is wrong and lists the words the model knows."""
    words = prompt_words(text)
    if is_pair_prompt(words):
        return parse_pair_words(words)
    return parse_object_prompt(text)


def _fits(scenes: SceneBatch, prompt: Prompt) -> np.ndarray:
    """(B,) bool: which scenes show every attribute the prompt names."""
    hits = np.ones(len(scenes), dtype=bool)
    for attribute, name in prompt.named().items():
        hits &= getattr(scenes, attribute) == _NAMES[attribute].index(name)
    return hits


def _drawn(scenes: SceneBatch, i: int, position: bool) -> Prompt:
    """Scene i's shape as a full prompt (with its position for a one-shape scene)."""
    return Prompt(SHAPES[scenes.shape[i]], COLOUR_NAMES[scenes.colour[i]], SIZES[scenes.size[i]],
                  POSITIONS[scenes.position[i]] if position else None)


def _pair_fits(pairs: PairBatch, prompt: PairPrompt) -> tuple[np.ndarray, np.ndarray]:
    """(B,) bool: which pairs fit the prompt, and (B,) bool: which fit it with their two shapes named the other way
    round (an `and` prompt names them in any order)."""
    in_order = _fits(pairs.first, prompt.first) & _fits(pairs.second, prompt.second)
    if prompt.kind == "two":
        return in_order & pairs.identical, np.zeros(len(pairs), dtype=bool)
    if prompt.kind == "and":
        swapped = _fits(pairs.first, prompt.second) & _fits(pairs.second, prompt.first) & ~in_order
        return in_order | swapped, swapped
    relation = np.array(RELATIONS)[relation_index(pairs)] == prompt.kind
    return in_order & relation, np.zeros(len(pairs), dtype=bool)


def matching_scene(prompt: ImagePrompt, seed: int, resolution: int) -> tuple[torch.Tensor, str]:
    """The first scene drawn from the grammar (by sample_scenes or sample_pairs, from `seed`) that shows what the
    prompt names: the image (1, 3, H, W) in [-1, 1] and its full caption. Whatever the prompt leaves open is
    drawn like any training scene; the empty prompt takes the first one-shape scene. ValueError if none fits."""
    rng = np.random.default_rng(seed)
    for _ in range(MAX_DRAWS):
        if isinstance(prompt, PairPrompt):
            pairs = sample_pairs(DRAWS, rng, resolution)
            fits, swapped = _pair_fits(pairs, prompt)
            if fits.any():
                i = int(np.flatnonzero(fits)[0])
                a, b = _drawn(pairs.first, i, False), _drawn(pairs.second, i, False)
                shown = PairPrompt(prompt.kind, *((b, a) if swapped[i] else (a, b)))
                return render_pairs(pairs.take(np.array([i]))), shown.canonical
        else:
            scenes = sample_scenes(DRAWS, rng, resolution)
            fits = _fits(scenes, prompt)
            if fits.any():
                i = int(np.flatnonzero(fits)[0])
                return render(scenes.take(np.array([i]))), _drawn(scenes, i, True).canonical
    raise ValueError(f"no scene of {MAX_DRAWS * DRAWS} drawn fits {prompt.canonical!r}")
