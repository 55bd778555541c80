"""Floating-point operations of one call of the networks here, attention included (a multiply-add counts two).

torch's own FlopCounterMode would do, but on the CPU it counts scaled_dot_product_attention as free (it does not
know the CPU kernel), and its first use imports torch._dynamo, seconds of a live request. The networks here spend
their arithmetic in three functions (app/nets: linear layers, the patch-embedding convolution, attention), so
those are counted as they are called, from their shapes, the way FlopCounterMode counts them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def _linear(input, weight, bias=None) -> int:
    out_features, in_features = weight.shape
    return 2 * math.prod(input.shape[:-1]) * in_features * out_features


def _attention(query, key, value, *args, **kwargs) -> int:
    """Scores q kᵀ and the weighted sum of values: 2 N_q N_k (d_k + d_v) per batch row and head."""
    return 2 * math.prod(query.shape[:-2]) * query.shape[-2] * key.shape[-2] * (query.shape[-1] + value.shape[-1])


class _Counter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is F.linear:
            self.flops += _linear(*args, **kwargs)
        elif func is F.scaled_dot_product_attention:
            self.flops += _attention(*args, **kwargs)
        elif func is F.conv2d:  # multiply-adds per output value: the kernel's size over the input channels
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.flops += 2 * out.numel() * math.prod(weight.shape[1:])
        return out


def count_flops(run: Callable[[], object]) -> int:
    """The FLOPs of run()'s linear layers, convolutions and attention."""
    with _Counter() as counter:
        run()
    return counter.flops
