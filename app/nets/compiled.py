"""A network's forward compiled by torch.compile (inductor, dynamic=False), in a few fixed batch sizes.

`CompiledBuckets` stands where the network stood (it keeps the network as its submodule and exposes its config),
and answers each call the compiled way only once that call's shape has been warmed up: the batch (the first
dimension of every tensor argument that has it) is padded up to the next bucket, by repeating its last row, and the
answer cut back to the real rows. Every row is computed on its own, so padding changes no real row. A call whose
shape is not warm, or that is larger than the largest bucket, runs the network eagerly: the eager path stays the
reference, and the compiled one only ever replaces it for shapes it has already run.

`warm(args)` compiles (or loads from inductor's on-disk cache) the graph for args, whose batch must be a bucket, and
marks that shape ready; the server does so in the background once it is ready (app/service/compiled.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import torch
from torch import nn

# Every bucket of every compiled network is a separate graph of the same forward: above dynamo's default of 8
# graphs per function it would stop compiling and fall back for good.
RECOMPILE_LIMIT = 64


def _rows_of(args: Sequence) -> int:
    return args[0].shape[0]


def _pad(arg, rows: int, bucket: int):
    """arg with its batch padded from rows to bucket by repeating its last row; anything else untouched."""
    if not isinstance(arg, torch.Tensor) or arg.dim() == 0 or arg.shape[0] != rows or bucket == rows:
        return arg
    return torch.cat([arg, arg[-1:].expand(bucket - rows, *arg.shape[1:])])


def signature(args: Sequence, bucket: int) -> tuple:
    """What decides the compiled graph of a call padded to bucket: every argument's shape past the batch, dtype."""
    return (bucket, *((tuple(a.shape[1:]), a.dtype, a.device.type) if isinstance(a, torch.Tensor) else a
                      for a in args))


class CompiledBuckets(nn.Module):
    """`module` with its forward compiled per batch bucket, falling back to eager for shapes not yet warm."""

    def __init__(self, module: nn.Module, buckets: Sequence[int], mode: str | None = None,
                 options: dict | None = None):
        super().__init__()
        self.module = module
        self.buckets = tuple(sorted(set(buckets)))
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        # Not a registered submodule: its parameters are the module's own, once is enough.
        object.__setattr__(self, "_compiled", torch.compile(module, dynamic=False, mode=mode, options=options))
        self._ready: set[tuple] = set()
        self._lock = threading.Lock()
        self.compiled_calls = 0  # calls answered by a compiled graph (the rest ran eagerly)
        self.warm_seconds: dict[int, float] = {}

    @property
    def config(self):
        return self.module.config

    def bucket_for(self, rows: int) -> int | None:
        return next((b for b in self.buckets if b >= rows), None)

    @property
    def ready_buckets(self) -> list[int]:
        return sorted({key[0] for key in self._ready})

    def forward(self, *args):
        rows = _rows_of(args)
        bucket = self.bucket_for(rows)
        if bucket is None or signature(args, bucket) not in self._ready:
            return self.module(*args)
        self.compiled_calls += 1
        return self._compiled(*(_pad(a, rows, bucket) for a in args))[:rows]

    @torch.no_grad()
    def warm(self, args: Sequence) -> float:
        """Compile the graph for args (their batch a bucket) and mark that shape ready; returns the seconds taken."""
        rows = _rows_of(args)
        if rows not in self.buckets:
            raise ValueError(f"warm-up batch {rows} is not a bucket ({self.buckets})")
        with self._lock:  # one compile at a time per network
            started = time.perf_counter()
            self._compiled(*args)
            seconds = time.perf_counter() - started
            self._ready.add(signature(args, rows))
            self.warm_seconds[rows] = round(seconds, 3)
        return seconds
