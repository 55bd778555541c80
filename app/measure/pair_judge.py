"""The judge for two-shape images: how many shapes, each one's attributes, and where they sit.

Each of the two largest foreground components is judged on its own by `app.measure.judge`, on a copy
of the image where every other component is painted over with the background; the count is the
number of components big enough to be a shape. A prompt is then matched object by object: binding
asks that some assignment of the drawn shapes to the named ones gives each its own named attributes,
the relation is read from the centres of that assignment, and the failures worth naming are told
apart: a swap (both drawn, the two colours or shapes exchanged), a leak (both drawn in one of the
two asked colours) and a copy (both drawn as one of the two asked shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.measure.judge import CHUNK, Verdict, as_batch, foreground, judge, min_component_area
from app.world.compose import PairBatch, PairPrompt, relation_index
from app.world.scenes import COLOUR_NAMES, RELATIONS, SHAPES, SIZES, Prompt

RELATION_MARGIN = 1 / 8  # of the side: centres closer than this along the axis are neither left nor right of


@dataclass
class PairVerdict:
    """What the judge sees in one image that should hold two shapes."""

    count: int  # components big enough to be a shape
    objects: list[Verdict]  # the largest two (fewer when fewer were drawn), largest first
    resolution: int

    @property
    def clean(self) -> bool:
        """Exactly two shapes, each one flat palette-coloured shape on the light background."""
        return self.count == 2 and len(self.objects) == 2 and all(o.clean for o in self.objects)


def _isolated(x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """For a (B, 3, H, W) 0..255 batch: two copies holding only the largest and only the second largest
    component (every other component painted with the background colour), whether each exists (B,), and the
    number of components big enough to be a shape (B,)."""
    b, _, h, w = x.shape
    bg, _, labels, sizes = foreground(x)
    min_area = min_component_area(h, w)
    order = sizes.argsort(1, descending=True)
    copies, exists = [], []
    for rank in (0, 1):
        label = order[:, rank]
        others = (labels != label[:, None]) & (labels > 0)  # (B, HW)
        # One pixel of margin takes the other shape's anti-aliased rim with it.
        others = F.max_pool2d(others.view(b, 1, h, w).float(), 3, stride=1, padding=1).bool()
        copies.append(torch.where(others, bg[:, :, None, None].expand_as(x), x))
        exists.append(sizes.gather(1, label[:, None]).squeeze(1) >= min_area)
    return copies, exists, (sizes >= min_area).sum(1)


def judge_pairs(images: np.ndarray | torch.Tensor) -> list[PairVerdict]:
    """Judge a batch of two-shape images (the formats `app.measure.judge.judge` takes)."""
    x = as_batch(images)
    n, h, w = len(x), *x.shape[-2:]
    out = []
    for i in range(0, n, CHUNK):
        (first, second), (has_first, has_second), count = _isolated(x[i:i + CHUNK])
        verdicts = judge(torch.cat([first, second]) / 127.5 - 1)
        k = len(first)
        for j in range(k):
            drawn = ((verdicts[j], has_first[j]), (verdicts[k + j], has_second[j]))
            out.append(PairVerdict(count=int(count[j]), objects=[v for v, present in drawn if present],
                                   resolution=int(min(h, w))))
    return out


# ----------------------------------------------------------------------------- matching a prompt


def _fits(verdict: Verdict, wanted: Prompt) -> bool:
    return all(getattr(verdict, k) == v for k, v in wanted.named().items())


def _holds(relation: str, a: Verdict, b: Verdict, resolution: int) -> bool:
    """Whether shape a sits `relation` shape b, by their centroids."""
    (ax, ay), (bx, by) = a.centroid, b.centroid
    margin = RELATION_MARGIN * resolution
    return {"left of": bx - ax > margin, "right of": ax - bx > margin,
            "above": by - ay > margin, "below": ay - by > margin}[relation]


def pair_matches(verdict: PairVerdict, prompt: PairPrompt) -> dict[str, bool]:
    """Per category, whether the image does what the prompt asks; `all` needs every one of them.

    count: exactly two clean shapes. binding: the two named shapes drawn, each with its named attributes.
    relation (relation prompts only): it holds between the shapes bound to the first and second names.
    swap / leak / copy: the failures of binding named in the module docstring (False when they do not apply).
    """
    count = verdict.clean
    objects = verdict.objects
    result = {"count": count, "binding": False, "swap": False, "leak": False, "copy": False}
    if prompt.relation:
        result["relation"] = False
    if len(objects) == 2:
        a, b = objects
        bound = [(x, y) for x, y in ((a, b), (b, a)) if _fits(x, prompt.first) and _fits(y, prompt.second)]
        result["binding"] = bool(bound)
        if prompt.relation and bound:
            result["relation"] = any(_holds(prompt.relation, x, y, verdict.resolution) for x, y in bound)
        result |= _binding_failures(a, b, prompt)
    result["all"] = count and all(v for k, v in result.items() if k in ("binding", "relation"))
    return result


def possible_failures(prompt: PairPrompt) -> dict[str, bool]:
    """Which binding failures a prompt can show: a leak needs two different colours named, a copy two different
    shapes, a swap both."""
    p, q = prompt.first, prompt.second
    colours = p.colour is not None and q.colour is not None and p.colour != q.colour
    shapes = p.shape != q.shape
    return {"swap": colours and shapes, "leak": colours, "copy": shapes}


def _binding_failures(a: Verdict, b: Verdict, prompt: PairPrompt) -> dict[str, bool]:
    """Swap, leak and copy, where the prompt can show them (possible_failures)."""
    p, q = prompt.first, prompt.second
    possible = possible_failures(prompt)
    swap = possible["swap"] and any(
        x.shape == p.shape and x.colour == q.colour and y.shape == q.shape and y.colour == p.colour
        for x, y in ((a, b), (b, a)))
    leak = possible["leak"] and a.colour == b.colour and a.colour in (p.colour, q.colour)
    copy = possible["copy"] and a.shape == b.shape and a.shape in (p.shape, q.shape)
    return {"swap": swap, "leak": leak, "copy": copy}


def pair_agreement(verdicts: list[PairVerdict], pairs: PairBatch) -> dict[str, float]:
    """Share of images whose two judged shapes are the scenes' own (count, per attribute, relation, all):
    how well the judge reads rendered pairs, or an autoencoder keeps them."""
    rows = {"count": [], "shape": [], "colour": [], "size": [], "relation": [], "all": []}
    rel = relation_index(pairs)
    for i, v in enumerate(verdicts):
        truth = [_truth(pairs.first, i), _truth(pairs.second, i)]
        hits = {k: False for k in ("shape", "colour", "size", "relation")}
        if len(v.objects) == 2:
            for x, y in ((v.objects[0], v.objects[1]), (v.objects[1], v.objects[0])):
                if _near(x, pairs.first, i) and _near(y, pairs.second, i):
                    for k in ("shape", "colour", "size"):
                        hits[k] = getattr(x, k) == truth[0][k] and getattr(y, k) == truth[1][k]
                    hits["relation"] = _holds(RELATIONS[rel[i]], x, y, v.resolution)
        rows["count"].append(v.clean)
        for k, hit in hits.items():
            rows[k].append(hit)
        rows["all"].append(v.clean and all(hits.values()))
    return {k: float(np.mean(vals)) if vals else 0.0 for k, vals in rows.items()}


def _truth(scenes, i: int) -> dict[str, str]:
    return {"shape": SHAPES[scenes.shape[i]], "colour": COLOUR_NAMES[scenes.colour[i]], "size": SIZES[scenes.size[i]]}


def _near(v: Verdict, scenes, i: int) -> bool:
    """Whether a judged shape sits where scene i's shape was drawn (within half a grid cell)."""
    cx, cy = v.centroid
    return abs(cx - scenes.cx[i]) < scenes.resolution / 8 and abs(cy - scenes.cy[i]) < scenes.resolution / 8
