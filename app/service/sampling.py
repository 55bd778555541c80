"""Runs the generators off the event loop: a bounded queue that is fair between clients, shared batches, time limits.

Admission: at most `workers + queue_size` jobs are admitted at once (running or waiting); one more gets QueueFull,
which the API answers with 429 and Retry-After. A job holds its slot from submit() until the batch it ran in
returns (not merely until its client stops waiting), so a timed-out job still finishing its step keeps counting.

Fairness: waiting jobs are kept per client key (an X-Client-Id header, else the client's address). A free worker
serves the client that was served least recently (round robin), so one client's many jobs, or big batches,
wait behind one job of every other client instead of in front of them.

Generators: a job names the generator that samples it (app/pipelines/protocol.py); the default is the one the
service was made with, the image model. A clip (app/pipelines/video.py) is a job like any other: it takes one
slot of the same queue, waits its turn by the same rules, and, as its parts say, runs alone.

Batching: the worker then adds waiting jobs that share the first one's batch key (the same generator, and for
images steps, sampler, eta: the same timestep sequence), again in round-robin order across clients, up to
`batch_rows` images, and runs them as one generate_batch call: one network forward per step for all of them,
each job with its own prompt, seeds, scale and rescale. Each job gets its own results and, at every step, a Step
holding only its own rows. batch_rows = 1 turns merging off (a job then always runs alone).

Cancelling is cooperative: at every step a job that was cancelled or ran past its deadline is dropped: its client
is answered at once and its rows finish silently with the batch and are discarded; a batch with no job left stops.
Nothing here outlives a request: a replica holds no job state another one would need.

One thread for torch: on a small CPU every thread that runs a parallel torch operation keeps an OpenMP thread pool
of its own, and while two such pools exist each runs about half as fast (measured: 20 guided steps took 0.42 s
instead of 0.24 s on 2 cores). So torch work outside sampling runs on the sampler's threads too: a live timing a
client asks for as a job of the queue (run_call()), judging a finished job's images through run_in_worker(); and
one-off work before the service exists (loading the weights) runs in_passing_thread(), whose thread, and pool,
end with it.

Shutting down: drain(grace_s) refuses new jobs (`closing`) and cancels whatever is still admitted after grace_s;
close() does so at once. `listeners` are called as listener(job, results, seconds) in the worker once each job
that a worker picked up ends, with job.outcome "done", "cancelled" or "failed" and the seconds it ran.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import InvalidStateError, ThreadPoolExecutor
from typing import Any

from app.diffusion.samplers import SamplingCancelled
from app.pipelines.protocol import GenerationParts, Generator
from app.service.jobs import Call, Calls, Job, QueueFull, StepCallback

CANCELLED_BY_SHUTDOWN = "generation was cancelled: the server is shutting down"
CALLS = Calls()
REMEMBERED_CLIENTS = 1024  # last-served times kept for fairness; older idle clients are forgotten
Listener = Callable[[Job, "list | None", float], None]  # the job, its results (None unless done), seconds
log = logging.getLogger("diffusion_lab")


async def in_passing_thread(fn: Callable, *args):
    """fn(*args) in a thread of its own that ends with it, so no OpenMP pool outlives it (see the module doc)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-once")
    try:
        return await asyncio.wrap_future(executor.submit(fn, *args))
    finally:
        executor.shutdown(wait=True)  # the task is done: the thread exits at once


class SamplingService:
    """`workers` threads running shared batches from a fair queue that admits at most `workers + queue_size` jobs."""

    def __init__(self, pipeline: Generator, workers: int = 1, queue_size: int = 16, timeout_s: float = 120.0,
                 batch_rows: int = 32):
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        self.pipeline = pipeline  # the generator of jobs that name none (the image model)
        self.workers, self.queue_size, self.timeout_s, self.batch_rows = workers, queue_size, timeout_s, batch_rows
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sampler")
        self._lock = threading.Lock()
        self._jobs: set[Job] = set()  # admitted: waiting or running
        self._waiting: dict[str, deque[Job]] = {}  # client -> its waiting jobs, oldest first
        self._last_served: dict[str, int] = {}  # client -> tick of its last job taken
        self._tick = 0
        self._running = 0
        self._mean_job_s = 1.0  # running estimate of the worker time per job (a shared batch's split), for Retry-After
        self._closing = False
        self._drain_timer: threading.Timer | None = None
        self.listeners: list[Listener] = []
        self.batches_run = self.jobs_run = self.images_run = 0

    @property
    def capacity(self) -> int:
        """Jobs admitted at once (running plus waiting); one more gets QueueFull."""
        return self.workers + self.queue_size

    @property
    def closing(self) -> bool:
        """True once drain() or close() was called: no new job is admitted."""
        return self._closing

    @property
    def running(self) -> int:
        """Jobs a worker is sampling now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Admitted jobs not yet picked up by a worker."""
        with self._lock:
            return len(self._jobs) - self._running

    def stats(self) -> dict[str, float]:
        """Counters since start: batches, jobs and images sampled, and jobs per batch on average."""
        return {"batches": self.batches_run, "jobs": self.jobs_run, "images": self.images_run,
                "jobs_per_batch": self.jobs_run / self.batches_run if self.batches_run else 0.0}

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the jobs ahead at the measured throughput (worker seconds per job,
        so jobs that share a batch count for their share of it), spread over the workers."""
        with self._lock:
            ahead = len(self._jobs) - self.workers + 1
        return int(min(3600, max(1, math.ceil(self._mean_job_s * max(ahead, 1) / self.workers))))

    # ------------------------------------------------------------------------------------------ submitting

    def submit(self, settings: GenerationParts, on_step: StepCallback | None = None, client: str = "",
               generator: Generator | None = None) -> Job:
        """Queue a job, or raise QueueFull; on_step(step) runs in the worker thread after every step, own rows only."""
        return self.submit_many((settings,), on_step, client, generator)

    def submit_many(self, parts: Sequence[GenerationParts], on_step: StepCallback | None = None, client: str = "",
                    generator: Generator | None = None) -> Job:
        """Queue several parts as one job (one slot, sampled together); its future gives one result per part."""
        if len({p.batch_key() for p in parts}) > 1:
            raise ValueError("the parts of one job must share steps, sampler and eta (their batch key)")
        generator = generator or self.pipeline
        if check := getattr(generator, "check", None):
            check(parts)  # PromptNotLearned: refused before it takes a place in the queue
        return self._admit(Job(generator, parts, self.timeout_s, on_step, client))

    async def run(self, settings: GenerationParts, on_step: StepCallback | None = None, client: str = "",
                  generator: Generator | None = None) -> tuple[Any, Job]:
        """Submit and wait: (the result, its job with the queue time); QueueFull or JobTimeout otherwise."""
        job = self.submit(settings, on_step, client, generator)
        [result] = await job.result()
        return result, job

    async def run_many(self, parts: Sequence[GenerationParts], on_step: StepCallback | None = None, client: str = "",
                       generator: Generator | None = None) -> tuple[list, Job]:
        """submit_many and wait: (one result per part, the job)."""
        job = self.submit_many(parts, on_step, client, generator)
        return await job.result(), job

    async def run_call(self, fn: Callable[[], Any], client: str = "") -> Any:
        """fn() as a job: it waits its turn in the fair queue, takes a slot (QueueFull when none is free), runs alone
        on a sampler thread, never beside a batch, and is bound by the time limit."""
        result, _ = await self.run(Call(fn), client=client, generator=CALLS)
        return result

    async def run_in_worker(self, fn: Callable, *args):
        """fn(*args) on a sampler thread, after the batches already queued there; not counted against the queue.

        For short torch work outside sampling (judging images, timing a forward): it then shares the sampler's
        OpenMP pool instead of starting a second one (see the module doc).
        """
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def _admit(self, job: Job) -> Job:
        if self._closing:
            raise SamplingCancelled("the server is shutting down and takes no new generation jobs")
        job._withdraw = self._withdraw
        job.future.add_done_callback(lambda f: self._withdraw(job) if f.cancelled() else None)
        with self._lock:
            full = len(self._jobs) >= self.capacity
            if not full:
                self._jobs.add(job)
                self._waiting.setdefault(job.client, deque()).append(job)
        if full:
            raise QueueFull(self.capacity, self.retry_after_s())
        try:
            self._executor.submit(self._drain)  # one task per job: a task finding the queue empty just returns
        except RuntimeError:  # the executor was shut down
            self._withdraw(job)
            raise
        return job

    def _withdraw(self, job: Job) -> None:
        """Take a job that is still waiting off the queue, free its slot and answer it; no-op once it runs."""
        with self._lock:
            line = self._waiting.get(job.client)
            if line is None or job not in line:
                return
            line.remove(job)
            if not line:
                del self._waiting[job.client]
            self._jobs.discard(job)
        try:
            job.future.set_exception(SamplingCancelled("the job was cancelled before it started"))
        except InvalidStateError:  # its future was cancelled (the client's wait timed out): already answered
            pass

    # ------------------------------------------------------------------------------------------ scheduling

    def _next_client(self, key: Hashable | None, room: int) -> tuple[str, Job] | None:
        """The least recently served client with a waiting job that fits (same key, at most room images)."""
        order = sorted(self._waiting, key=lambda c: self._last_served.get(c, -1))  # stable: arrival breaks ties
        for client in order:
            for job in self._waiting[client]:
                if key is None or (job.batch_key() == key and job.rows <= room):
                    return client, job
        return None

    def _take_batch(self) -> list[Job]:
        """Pop the next batch: the fair next job, then compatible jobs round robin up to batch_rows images."""
        batch: list[Job] = []
        with self._lock:
            key, room = None, self.batch_rows  # the first job is taken whatever its size
            while room > 0 and (found := self._next_client(key, room)) is not None:
                client, job = found
                line = self._waiting[client]
                line.remove(job)
                if not line:
                    del self._waiting[client]
                self._tick += 1
                self._last_served[client] = self._tick
                batch.append(job)
                key, room = job.batch_key(), room - job.rows
            if len(self._last_served) > REMEMBERED_CLIENTS:
                recent = sorted(self._last_served, key=self._last_served.get)[-REMEMBERED_CLIENTS // 2:]
                self._last_served = {c: self._last_served[c] for c in {*recent, *self._waiting}
                                     if c in self._last_served}
        return batch

    def _start(self, batch: list[Job]) -> list[Job]:
        """Mark the batch's jobs running; answer and drop those cancelled or expired while they waited."""
        live, now = [], time.monotonic()
        for job in batch:
            job.started = now
            if not job.future.set_running_or_notify_cancel():
                continue  # cancelled while queued: its done-callback freed the slot
            try:
                job.check()
            except SamplingCancelled as err:
                job.future.set_exception(err)
                continue
            live.append(job)
        with self._lock:
            self._jobs.difference_update(set(batch) - set(live))
            self._running += len(live)
        return live

    def _drain(self) -> None:
        batch = self._take_batch()
        if batch and (live := self._start(batch)):
            self._run_batch(live)

    def _release(self, batch: list[Job], started: float, images: int) -> None:
        """A batch has let go of its worker: free the slots and update the counters and the mean duration."""
        elapsed = time.monotonic() - started
        with self._lock:
            self._running -= len(batch)
            self._jobs.difference_update(batch)
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * elapsed / len(batch)
            self.batches_run += 1
            self.jobs_run += len(batch)
            self.images_run += images

    def _run_batch(self, batch: list[Job]) -> None:
        """Run the jobs as one generate_batch call; answer each with its own results or its own error."""
        started = time.monotonic()
        spans, row = [], 0
        for job in batch:
            job.batch_jobs = len(batch)
            spans.append((job, row, row + job.rows))
            row += job.rows
        live = set(batch)
        errors: dict[Job, BaseException] = {}

        def on_step(step) -> None:
            dropped = []
            for job, lo, hi in spans:
                if job in live:
                    try:
                        job.step(step if len(batch) == 1 else step.rows(lo, hi))  # only batchable steps
                    except Exception as err:  # cancelled, expired, or its consumer failed: only this job ends
                        live.discard(job)
                        dropped.append((job, err))
            if live:
                for job, err in dropped:  # answered now; its rows finish silently with the batch
                    self._finish(job, "cancelled" if isinstance(err, SamplingCancelled) else "failed", None, started)
                    job.future.set_exception(err)
                return
            errors.update(dropped)  # answered once the batch has let go of the worker
            raise SamplingCancelled("every job of the batch was cancelled")

        results, parts = None, [p for job in batch for p in job.parts]
        try:
            results = batch[0].generator.generate_batch(parts, callback=on_step)
        except Exception as err:  # SamplingCancelled once no job is left; else a bad request that got past
            errors.update({job: err for job in live})  # validation: fail its batch, not the worker
            live.clear()
        finally:
            self._release(batch, started, row)
        for job, err in errors.items():
            self._finish(job, "cancelled" if isinstance(err, SamplingCancelled) else "failed", None, started)
            job.future.set_exception(err)
        part = 0
        for job in batch:
            mine = results[part:part + len(job.parts)] if results is not None else None
            part += len(job.parts)
            if job in live and mine is not None:
                self._finish(job, "done", mine, started)
                job.future.set_result(mine)

    def _finish(self, job: Job, outcome: str, results: list | None, started: float) -> None:
        """Record how a job ended and tell the listeners (a failing listener is logged, never fatal)."""
        job.outcome = outcome
        for listener in list(self.listeners):
            try:
                listener(job, results, time.monotonic() - started)
            except Exception:
                log.exception("a sampling-service listener failed")

    def drain(self, grace_s: float) -> None:
        """Admit nothing new; whatever is still admitted after grace_s seconds is cancelled (close())."""
        self._closing = True
        if self._drain_timer is None:
            self._drain_timer = threading.Timer(max(0.0, grace_s), self.close)
            self._drain_timer.daemon = True
            self._drain_timer.start()

    def close(self) -> None:
        """Answer every waiting job, cancel every running one at its next step, stop the threads without waiting."""
        self._closing = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        with self._lock:
            waiting = [job for line in self._waiting.values() for job in line]
            self._waiting.clear()
            self._jobs.difference_update(waiting)
            running = list(self._jobs)
        for job in waiting:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(SamplingCancelled(CANCELLED_BY_SHUTDOWN))
        for job in running:
            job.cancel(CANCELLED_BY_SHUTDOWN)
        self._executor.shutdown(wait=False, cancel_futures=True)
