"""The two-shape prompts the card and the guidance lab measure, by category, and their adherence.

Categories (T2I-CompBench's, in this world): *colour binding* `a red circle and a blue square` (each colour on its
own shape), *size binding* `a small circle and a large square` (each size word on its own shape; CompBench counts
size words among its "shape" attributes), *relation* `a red circle left of a blue square`, *counting*
`two red circles`.
"""

from __future__ import annotations

import numpy as np

from app.measure.pair_judge import PairVerdict, pair_matches
from app.world.compose import PairPrompt
from app.world.scenes import COLOUR_NAMES, RELATIONS, SHAPES, SIZES, Prompt

CATEGORIES = ("colour binding", "size binding", "relation", "counting")
CHECKS = ("count", "binding", "relation", "all")  # what pair_matches reports that a prompt asks for


def category_prompts(category: str, n: int, seed: int = 0) -> list[PairPrompt]:
    """n prompts of one category, drawn from seed (the same for every run)."""
    rng = np.random.default_rng([seed, CATEGORIES.index(category)])
    out = []
    for _ in range(n):
        s1, s2 = rng.choice(len(SHAPES), 2, replace=False)
        c1, c2 = rng.choice(len(COLOUR_NAMES), 2, replace=False)
        z1 = int(rng.integers(0, 2))
        a, b = SHAPES[s1], SHAPES[s2]
        if category == "colour binding":
            prompt = PairPrompt("and", Prompt(a, COLOUR_NAMES[c1]), Prompt(b, COLOUR_NAMES[c2]))
        elif category == "size binding":
            prompt = PairPrompt("and", Prompt(a, size=SIZES[z1]), Prompt(b, size=SIZES[1 - z1]))
        elif category == "relation":
            relation = RELATIONS[int(rng.integers(0, len(RELATIONS)))]
            prompt = PairPrompt(relation, Prompt(a, COLOUR_NAMES[c1]), Prompt(b, COLOUR_NAMES[c2]))
        elif category == "counting":
            prompt = PairPrompt("two", Prompt(a, COLOUR_NAMES[c1]), Prompt(a, COLOUR_NAMES[c1]))
        else:
            raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
        out.append(prompt)
    return out


def pair_adherence(verdicts: list[PairVerdict], prompts: list[PairPrompt]) -> dict[str, float]:
    """Share of images passing each check their prompts ask for: count, binding, relation (relation prompts
    only) and all."""
    hits = [(p, pair_matches(v, p)) for v, p in zip(verdicts, prompts, strict=True)]
    out = {k: float(np.mean([m[k] for _, m in hits])) for k in ("count", "binding")}
    if any(p.relation for p, _ in hits):
        out["relation"] = float(np.mean([m["relation"] for p, m in hits if p.relation]))
    out["all"] = float(np.mean([m["all"] for _, m in hits]))
    return out
