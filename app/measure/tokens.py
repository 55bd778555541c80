"""How well a VQ tokenizer serves the models on its tokens (chapter §3.4): its codebook's usage (codes used, dead
codes, perplexity) and what survives the round trip through its tokens."""

from __future__ import annotations

import torch

from app.measure.image import psnr
from app.measure.judge import agreement, judge
from app.measure.pair_judge import judge_pairs, pair_agreement


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Of token indices (any shape) in [0, K): codes used at least once, codes never used, and the perplexity
    exp(H) of the code frequencies (K when every code is equally used, 1 when one code takes everything)."""
    counts = torch.bincount(indices.reshape(-1).long().cpu(), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    used = int((counts > 0).sum())
    return {"codes_used": used, "dead_codes": codebook_size - used, "perplexity": float(entropy.exp())}


def reconstruction_ceiling(recon: torch.Tensor, x: torch.Tensor, scenes, pair_recon: torch.Tensor,
                           pair_x: torch.Tensor, pairs) -> dict[str, float]:
    """Mean PSNR of reconstructions of one-shape scenes (x, drawn from `scenes`) and two-shape ones (pair_x, from
    `pairs`), and the share the judges read exactly as drawn: what an autoencoder lets any model on its codes draw."""
    return {"psnr_db": psnr(recon, x).mean().item(), "pair_psnr_db": psnr(pair_recon, pair_x).mean().item(),
            "judge_all": agreement(judge(recon), scenes)["all"],
            "pair_judge_all": pair_agreement(judge_pairs(pair_recon), pairs)["all"]}


@torch.no_grad()
def tokenizer_ceiling(tokenizer, val_scenes, val_x: torch.Tensor, val_pairs,
                      val_pair_x: torch.Tensor) -> dict[str, float]:
    """PSNR, codebook usage and the judges' agreement on a VQ tokenizer's (encode, decode, codebook_size)
    reconstructions of one- and two-shape scenes (val_x, val_pair_x: their renders): the ceiling every model on
    its tokens inherits; reconstruction_ceiling's figures, through its tokens."""
    tokens, pair_tokens = tokenizer.encode(val_x), tokenizer.encode(val_pair_x)
    usage = codebook_usage(torch.cat([tokens.flatten(), pair_tokens.flatten()]), tokenizer.codebook_size)
    return {**reconstruction_ceiling(tokenizer.decode(tokens), val_x, val_scenes, tokenizer.decode(pair_tokens),
                                     val_pair_x, val_pairs),
            **{k: float(v) for k, v in usage.items()}}
