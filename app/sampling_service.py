"""Runs the pipeline off the event loop: a few worker threads, a bounded queue, a time limit per job.

A job holds a slot from submit() until its worker returns (not merely until its client stops waiting),
so a timed-out job that is still finishing its current step keeps counting against the queue.
Cancelling is cooperative: the per-step callback raises SamplingCancelled at the next step.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from app.diffusion.samplers import SamplingCancelled
from app.pipeline import GenerationResult, GenerationSettings, Pipeline, Step

MAX_SEED = 2**31 - 1
StepCallback = Callable[[Step], None]


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


class Job:
    """One submitted generation: its settings, deadline, progress and cooperative cancel flag."""

    def __init__(self, settings: GenerationSettings, timeout_s: float, on_step: StepCallback | None):
        self.settings = settings
        self.timeout_s = timeout_s
        self.on_step = on_step
        self.submitted = time.monotonic()
        self.deadline = self.submitted + timeout_s
        self.started: float | None = None  # monotonic time a worker picked it up
        self.steps_done = 0
        self.future: Future[GenerationResult] | None = None
        self._cancel = threading.Event()

    @property
    def queue_s(self) -> float:
        """Seconds spent waiting for a worker."""
        return (self.started or time.monotonic()) - self.submitted

    def cancel(self) -> None:
        """Ask the worker to stop at the next step (or not to start)."""
        self._cancel.set()

    def check(self) -> None:
        """Raise SamplingCancelled when cancelled or past the deadline (called in the worker)."""
        if self._cancel.is_set():
            raise SamplingCancelled("the job was cancelled")
        if time.monotonic() > self.deadline:
            raise SamplingCancelled(f"the job ran past its {self.timeout_s:g} s limit")

    def step(self, step: Step) -> None:
        """The pipeline's per-step callback: count, check, then hand the step on."""
        self.steps_done = step.info.index + 1
        self.check()
        if self.on_step is not None:
            self.on_step(step)

    def _timeout(self) -> JobTimeout:
        return JobTimeout(self.timeout_s, self.steps_done, self.settings.steps, self.started is not None)

    async def result(self) -> GenerationResult:
        """Wait for the images; JobTimeout (and a cancelled worker) once the deadline passes."""
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


class SamplingService:
    """A ThreadPoolExecutor of `workers` threads that admits at most `workers + queue_size` jobs at once."""

    def __init__(self, pipeline: Pipeline, workers: int = 1, queue_size: int = 16, timeout_s: float = 120.0):
        self.pipeline = pipeline
        self.workers, self.queue_size, self.timeout_s = workers, queue_size, timeout_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sampler")
        self._lock = threading.Lock()
        self._jobs: set[Job] = set()
        self._running = 0
        self._mean_job_s = 1.0  # running estimate of a job's duration, for Retry-After

    @property
    def capacity(self) -> int:
        """Jobs admitted at once (running plus waiting); one more gets QueueFull."""
        return self.workers + self.queue_size

    @property
    def running(self) -> int:
        """Jobs a worker is sampling now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Admitted jobs not yet picked up by a worker."""
        with self._lock:
            return len(self._jobs) - self._running

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the line ahead times the mean job duration, per worker."""
        with self._lock:
            ahead = len(self._jobs) - self.workers + 1
        return int(min(3600, max(1, math.ceil(self._mean_job_s * max(ahead, 1) / self.workers))))

    def submit(self, settings: GenerationSettings, on_step: StepCallback | None = None) -> Job:
        """Queue a job, or raise QueueFull; on_step(Step) runs in the worker thread after every step."""
        job = Job(settings, self.timeout_s, on_step)
        with self._lock:
            full = len(self._jobs) >= self.capacity
            if not full:
                self._jobs.add(job)
        if full:
            raise QueueFull(self.capacity, self.retry_after_s())
        try:
            job.future = self._executor.submit(self._work, job)
        except RuntimeError:  # the executor was shut down
            self._release(job)
            raise
        job.future.add_done_callback(lambda _: self._release(job))
        return job

    async def run(self, settings: GenerationSettings,
                  on_step: StepCallback | None = None) -> tuple[GenerationResult, Job]:
        """Submit and wait: (the result, its job with the queue time); QueueFull or JobTimeout otherwise."""
        job = self.submit(settings, on_step)
        return await job.result(), job

    def _work(self, job: Job) -> GenerationResult:
        job.started = time.monotonic()
        with self._lock:
            self._running += 1
        try:
            job.check()
            return self.pipeline.generate(job.settings, callback=job.step)
        finally:
            elapsed = time.monotonic() - job.started
            with self._lock:
                self._running -= 1
                self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * elapsed

    def _release(self, job: Job) -> None:
        with self._lock:
            self._jobs.discard(job)

    def close(self) -> None:
        """Cancel every job at its next step and stop the threads without waiting."""
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
