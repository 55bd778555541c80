"""A network's forward compiled for a few fixed batch sizes, falling back to eager for every other shape.

`CompiledBuckets` stands where the network stood (it keeps the network as its submodule and exposes its config) and
answers a call the compiled way only once that call's shape has been warmed up: the batch (the first dimension of
every tensor argument that has it) is padded up to the next bucket by repeating its last row, and the answer cut
back to the real rows. Every row is computed on its own, so padding changes no real row. A shape that is not warm,
or larger than the largest bucket, runs the network eagerly: the eager path stays the reference.

Two compilers, measured side by side on the DiT (bench/compiled.py, BENCHMARKS.md "Compiled inference"):
- `AOTInductor`: torch.export, then AOTInductor into one package per shape, kept on disk and loaded by later
  starts in a few hundredths of a second. No Python between the kernels: the fastest on the CPU.
- `TorchCompile`: torch.compile (inductor, dynamic=False), optionally with CUDA graphs (mode="reduce-overhead").
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

# torch.compile keeps one graph per shape of the same forward: above dynamo's default of 8 it would stop compiling.
RECOMPILE_LIMIT = 64


def _rows_of(args: Sequence) -> int:
    return args[0].shape[0]


def _pad(arg, rows: int, bucket: int):
    """arg with its batch padded from rows to bucket by repeating its last row, laid out contiguously as the graph
    was compiled for (an expanded context has stride 0); anything else untouched."""
    if not isinstance(arg, torch.Tensor):
        return arg
    if arg.dim() == 0 or arg.shape[0] != rows or bucket == rows:
        return arg.contiguous()
    return torch.cat([arg, arg[-1:].expand(bucket - rows, *arg.shape[1:])])


def signature(args: Sequence, bucket: int) -> tuple:
    """What decides the compiled graph of a call padded to bucket: every argument's shape past the batch, dtype."""
    return (bucket, *((tuple(a.shape[1:]), a.dtype, a.device.type) if isinstance(a, torch.Tensor) else a
                      for a in args))


def fingerprint(module: nn.Module) -> str:
    """A short hash of the module's weights and class: a package compiled from other weights is never loaded."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class AOTInductor:
    """torch.export + AOTInductor, one package per (weights, shape, torch, device) in cache_dir."""

    def __init__(self, cache_dir: Path, name: str, options: dict | None = None):
        self.cache_dir, self.name, self.options = Path(cache_dir), name, dict(options or {})
        self._fingerprint: str | None = None

    def package_path(self, module: nn.Module, args: Sequence) -> Path:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(module)
        shape = "_".join("x".join(map(str, a.shape)) if isinstance(a, torch.Tensor) else str(a) for a in args)
        options = hashlib.sha256(repr(sorted(self.options.items())).encode()).hexdigest()[:8]
        return self.cache_dir / (f"{self.name}-{self._fingerprint}-{shape}-{args[0].device.type}-{options}-"
                                 f"torch{torch.__version__}.pt2")

    def __call__(self, module: nn.Module, args: Sequence) -> Callable:
        path = self.package_path(module, args)
        if not path.is_file():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            exported = torch.export.export(module, tuple(args))
            partial = path.with_name(f"partial-{path.name}")  # AOTInductor insists on a name ending in .pt2
            torch._inductor.aoti_compile_and_package(exported, package_path=str(partial),
                                                     inductor_configs=dict(self.options))  # it adds to the dict
            partial.replace(path)  # whole or not at all: a start killed mid-compile leaves no broken package
        return torch._inductor.aoti_load_package(str(path))


class TorchCompile:
    """torch.compile (inductor, dynamic=False); `mode="reduce-overhead"` adds CUDA graphs."""

    def __init__(self, mode: str | None = None, options: dict | None = None):
        self.mode, self.options = mode, options
        self._compiled = None
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)

    def __call__(self, module: nn.Module, args: Sequence) -> Callable:
        if self._compiled is None:
            self._compiled = torch.compile(module, dynamic=False, mode=self.mode, options=self.options)
        compiled = self._compiled
        if self.mode != "reduce-overhead":
            compiled(*args)  # compiles this shape now, not at the first real call
            return compiled

        def step(*call_args):  # CUDA graphs: the previous call's outputs may now be overwritten
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(*call_args)

        step(*args)
        return step


def eager_of(module: nn.Module) -> nn.Module:
    """The network itself, whether or not it is served compiled: what a measurement comparing architectures times."""
    return module.module if isinstance(module, CompiledBuckets) else module


class CompiledBuckets(nn.Module):
    """`module` with its forward compiled per batch bucket, eager for shapes not yet warm."""

    def __init__(self, module: nn.Module, buckets: Sequence[int], compiler: Callable[[nn.Module, Sequence], Callable]):
        super().__init__()
        self.module = module
        self.buckets = tuple(sorted(set(buckets)))
        self.compiler = compiler
        self._runners: dict[tuple, Callable] = {}
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
        return sorted({key[0] for key in self._runners})

    def forward(self, *args):
        rows = _rows_of(args)
        bucket = self.bucket_for(rows)
        runner = None if bucket is None else self._runners.get(signature(args, bucket))
        if runner is None:
            return self.module(*args)
        self.compiled_calls += 1
        return runner(*(_pad(a, rows, bucket) for a in args))[:rows]

    @torch.no_grad()
    def warm(self, args: Sequence) -> float:
        """Compile (or load) the graph for args (their batch a bucket) and mark that shape ready; returns seconds."""
        rows = _rows_of(args)
        if rows not in self.buckets:
            raise ValueError(f"warm-up batch {rows} is not a bucket ({self.buckets})")
        with self._lock:  # one compile at a time per network
            started = time.perf_counter()
            runner = self.compiler(self.module, args)
            if args[0].device.type == "cuda":
                torch.cuda.synchronize(args[0].device)
            seconds = time.perf_counter() - started
            self._runners[signature(args, rows)] = runner
            self.warm_seconds[rows] = round(seconds, 3)
        return seconds
