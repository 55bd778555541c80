"""Training on several processes: torchrun and DistributedDataParallel (gloo on the CPU, NCCL on CUDA).

Under torchrun (its RANK, WORLD_SIZE and LOCAL_RANK in the environment) every rank runs the same trainer. --batch
stays the global batch. Every rank draws the same global batch from identically seeded generators, which is only a
few numbers per sample (a scene's shape, colour, size and place, a caption, a timestep, the noise), and keeps its own
slice of it (`Shard`), before the costly work: rendering, encoding, the forward and backward. So rank r trains on
samples r*b .. (r+1)*b - 1 of exactly the batch a single process would draw, gradients are averaged across ranks
by DDP, and a run on N processes follows the same path as one process with the same --batch, up to the rounding
of the averaged gradients (tests/unit/training/test_distributed.py). Because the generators stay identical on
every rank, rank 0's checkpoint holds the state every rank resumes from. Only rank 0 validates and writes
checkpoints and weights; the other ranks end once the last step is taken.

One process without torchrun is the plain single-process run, untouched: no process group, no wrapper, every
slice the whole batch.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_world = World()


def world() -> World:
    return _world


def world_from_env(environ=os.environ) -> World:
    """What torchrun tells a process; a lone process is rank 0 of 1."""
    if "WORLD_SIZE" not in environ:
        return World()
    return World(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0)))


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group when there is one; returns the device this rank trains on (its own GPU)."""
    global _world
    _world = world_from_env()
    if not _world.distributed:
        return device
    if device.type == "cuda":
        torch.cuda.set_device(_world.local_rank)
        device = torch.device("cuda", _world.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(_close)
    return device


def _close() -> None:
    """At exit: the ranks that ended early wait for rank 0's validation and files, then all leave together (a rank
    tearing the group down while rank 0 still works was aborted by gloo)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """The module the training step calls: DDP around it when distributed, else the module itself."""
    if not _world.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    # No buffer changes in training (the VAE's latent statistics are measured after it): nothing to broadcast.
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


@dataclass(frozen=True)
class Shard:
    """This rank's slice of a global batch of `total` samples: the whole batch on a lone process."""

    total: int
    rank: int = 0
    size: int = 1

    def __post_init__(self):
        if self.total % self.size:
            raise SystemExit(f"--batch {self.total} does not split evenly over {self.size} processes")

    @property
    def slice(self) -> slice:
        per = self.total // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def __call__(self, batch):
        """The rank's part of a tensor, array or list of `total` rows, or of a dataclass holding such fields."""
        if self.size == 1:
            return batch
        if dataclasses.is_dataclass(batch):
            return dataclasses.replace(batch, **{f.name: self(getattr(batch, f.name)) for f in dataclasses.fields(batch)
                                                 if _rows(getattr(batch, f.name)) == self.total})
        if _rows(batch) != self.total:
            raise ValueError(f"cannot shard {type(batch).__name__} of {_rows(batch)} rows: the batch is {self.total}")
        return batch[self.slice]


def _rows(value) -> int | None:
    if isinstance(value, torch.Tensor | np.ndarray):
        return value.shape[0] if value.ndim else None
    return len(value) if isinstance(value, list | tuple) else None


def shard(total: int) -> Shard:
    return Shard(total, _world.rank, _world.size)


def rank_zero_first(fn):
    """fn() on rank 0, then on the other ranks: rank 0 builds and saves a cache (the clip bank) that they then read
    instead of all writing it at once."""
    if not _world.distributed:
        return fn()
    result = fn() if _world.is_main else None
    dist.barrier()
    return result if _world.is_main else fn()


def rank_generator(generator: torch.Generator, seed: int) -> torch.Generator:
    """A generator for draws each rank makes on its own shard inside a network (the VAE's posterior sample): the
    shared one on a lone process, else one seeded per rank, so ranks do not repeat each other's noise."""
    if not _world.distributed:
        return generator
    return torch.Generator(device=generator.device).manual_seed(seed + 1_000_003 * _world.rank)


def agree(stop: bool, fraction: float, device: torch.device) -> tuple[bool, float]:
    """Rank 0's clock decides for every rank whether to stop and how far the time budget is spent (--max-minutes,
    --lr-by-time): ranks that disagreed would take different steps and wait on each other for ever."""
    if not _world.distributed:
        return stop, fraction
    values = torch.tensor([float(stop), fraction], dtype=torch.float64, device=device)
    dist.broadcast(values, src=0)
    return bool(values[0]), float(values[1])


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (the logged loss: the global batch's, not rank 0's half)."""
    if not _world.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / _world.size
