"""One request to the sampling service as the worker sees it: its settings, deadline, progress and cancel flag;
the refusals a client can get (QueueFull, JobTimeout); and how a request's seed and fair-queue key are chosen."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from app.diffusion.samplers import SamplingCancelled
from app.pipelines.protocol import GenerationParts, Generator

MAX_SEED = 2**31 - 1
CLIENT_HEADER = "x-client-id"
MAX_CLIENT_KEY_CHARS = 64
StepCallback = Callable[[Any], None]  # called with each step of the generator (the image pipeline: a Step)


class QueueFull(Exception):
    """Every worker is busy and the waiting line is full."""

    def __init__(self, capacity: int, retry_after_s: int):
        self.capacity, self.retry_after_s = capacity, retry_after_s
        super().__init__(f"the sampler is busy: {capacity} jobs are running or waiting; retry in {retry_after_s} s")


class JobTimeout(Exception):
    """A job ran past the time limit and was cancelled."""

    def __init__(self, limit_s: float, steps_done: int, steps_total: int, started: bool):
        self.limit_s, self.steps_done, self.steps_total, self.started = limit_s, steps_done, steps_total, started
        where = f"after step {steps_done} of {steps_total}" if started else "before it left the queue"
        super().__init__(f"generation exceeded the server's time limit of {limit_s:g} s and was cancelled {where}; "
                         "try fewer steps or a smaller batch")


def random_seed(batch_size: int = 1) -> int:
    """A seed such that every image seed of the batch (seed + i) stays in [0, MAX_SEED]."""
    return secrets.randbelow(MAX_SEED - batch_size + 2)


def client_key(headers: Mapping[str, str], address: str | None) -> str:
    """Whose turn a request counts against: its X-Client-Id header (trimmed, 64 characters at most), else its address."""
    given = (headers.get(CLIENT_HEADER) or "").strip()[:MAX_CLIENT_KEY_CHARS]
    if given and given.isprintable():
        return f"id:{given}"
    return f"ip:{address or 'unknown'}"


class Job:
    """One submitted request: its generator and parts (sampled together), deadline, progress and cancel flag.

    `future` resolves to the generator's results, one per part.
    """

    def __init__(self, generator: Generator, parts: Sequence[GenerationParts], timeout_s: float,
                 on_step: StepCallback | None, client: str = ""):
        if not parts:
            raise ValueError("no settings to sample")
        self.generator, self.parts = generator, tuple(parts)
        self.total_steps = generator.total_steps(self.parts)
        self.client = client
        self.rows = sum(p.rows for p in self.parts)  # images this job adds to a batch
        self.timeout_s = timeout_s
        self.on_step = on_step
        self.submitted = time.monotonic()
        self.deadline = self.submitted + timeout_s
        self.started: float | None = None  # monotonic time a worker picked it up
        self.steps_done = 0
        self.batch_jobs = 0  # how many jobs shared its batch (itself included)
        self.outcome: str | None = None  # "done", "cancelled" or "failed" once a worker has finished with it
        self.future: Future = Future()
        self._cancel = threading.Event()
        self._cancel_reason = "the job was cancelled"
        self._withdraw: Callable[[Job], None] | None = None  # set by the service: take a waiting job off the queue

    @property
    def queue_s(self) -> float:
        """Seconds spent waiting for a worker."""
        return (self.started or time.monotonic()) - self.submitted

    def cancel(self, reason: str | None = None) -> None:
        """Stop at the next step; a job still waiting leaves the queue (and frees its slot) at once.

        The reason becomes the SamplingCancelled message its client is answered with, if it is still there.
        """
        if reason is not None and not self._cancel.is_set():
            self._cancel_reason = reason
        self._cancel.set()
        if self._withdraw is not None:
            self._withdraw(self)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise SamplingCancelled when cancelled or past the deadline (called in the worker)."""
        if self._cancel.is_set():
            raise SamplingCancelled(self._cancel_reason)
        if time.monotonic() > self.deadline:
            raise SamplingCancelled(f"the job ran past its {self.timeout_s:g} s limit")

    def batch_key(self) -> Hashable:
        """Jobs with equal keys may share a batch: the same generator, parts that say they may."""
        key = self.parts[0].batch_key()
        return ("alone", id(self)) if key is None else (id(self.generator), key)

    def step(self, step: object) -> None:
        """This job's share of one step: count, check, then hand it on."""
        self.steps_done += 1
        self.check()
        if self.on_step is not None:
            self.on_step(step)

    def _timeout(self) -> JobTimeout:
        return JobTimeout(self.timeout_s, self.steps_done, self.total_steps, self.started is not None)

    async def result(self) -> list:
        """Wait for the results, one per part; JobTimeout (and a cancelled job) once the deadline passes."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.future), max(0.0, self.deadline - time.monotonic()))
        except TimeoutError as err:  # wait_for also cancels the future if it is still queued
            self.cancel()
            raise self._timeout() from err
        except SamplingCancelled as err:
            if time.monotonic() > self.deadline:
                raise self._timeout() from err
            raise
        except asyncio.CancelledError:  # the client went away: free the worker
            self.cancel()
            raise


@dataclass(frozen=True)
class Call:
    """A job part that is one call of torch work a client asked for outside sampling (a live timing)."""

    fn: Callable[[], Any]
    rows: int = 0  # no images

    def batch_key(self) -> None:
        return None  # runs alone


class Calls:
    """The generator of Call parts (app/pipelines/protocol.py): each is called on the sampler's thread."""

    def total_steps(self, parts: Sequence[Call]) -> int:
        return 0

    def generate_batch(self, parts: Sequence[Call], callback: StepCallback | None = None) -> list[Any]:
        return [part.fn() for part in parts]
