"""How a VQ tokenizer uses its codebook (chapter §3.4): codes used, dead codes, perplexity."""

from __future__ import annotations

import torch


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Of token indices (any shape) in [0, K): codes used at least once, codes never used, and the perplexity
    exp(H) of the code frequencies (K when every code is equally used, 1 when one code takes everything)."""
    counts = torch.bincount(indices.reshape(-1).long().cpu(), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    used = int((counts > 0).sum())
    return {"codes_used": used, "dead_codes": codebook_size - used, "perplexity": float(entropy.exp())}
