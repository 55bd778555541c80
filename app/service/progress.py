"""The jobs each client is waiting for, for clients that ask how far their job is and stop it (AUTOMATIC1111's
progress and interrupt): steps done, the time left, the x̂0 preview on request, and cancelling.

Entries are kept by the fair queue's client key, so nothing of one client is visible to another, and each lives only
as long as its request: a replica still holds no state another would need. A preview costs one VAE decode, so it is
made only when asked for: a progress request that wants one marks the job, and its next step decodes it on the
sampler's thread (the previous one is answered meanwhile).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.service.jobs import Job, StepCallback
from app.service.previews import remaining_seconds

INTERRUPTED = "the job was interrupted by its client (POST /sdapi/v1/interrupt)"


class Tracked:
    """One request's job as the board sees it; `interrupted` once its client stopped it."""

    def __init__(self, client: str, render: Callable[[object], bytes]):
        self.client, self._render = client, render
        self.job: Job | None = None  # set once submitted
        self.interrupted = False
        self.preview: bytes | None = None
        self._wanted = threading.Event()

    def on_step(self, step: object) -> None:
        """In the worker, after each step: render the preview if one was asked for since the last."""
        if self._wanted.is_set():
            self._wanted.clear()
            self.preview = self._render(step)

    def want_preview(self) -> None:
        self._wanted.set()


@dataclass(frozen=True)
class Progress:
    """How far a client's job is; all zeros and no job when it has none."""

    fraction: float  # steps done / steps
    eta_s: float  # seconds of sampling left at the mean step time so far
    steps_done: int
    steps_total: int
    jobs: int  # the client's jobs on the board (running or waiting)
    running: bool  # whether a worker samples the reported job (else it waits in the queue)
    interrupted: bool
    preview: bytes | None  # the latest x̂0 preview (PNG) of the reported job


IDLE = Progress(0.0, 0.0, 0, 0, 0, False, False, None)


class ProgressBoard:
    """The tracked jobs by client key."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tracked: dict[str, list[Tracked]] = {}

    @contextmanager
    def track(self, client: str, submit: Callable[[StepCallback], Job],
              render: Callable[[object], bytes]) -> Iterator[Tracked]:
        """Submit a job (submit(on_step) -> Job, or QueueFull) and keep it on the board while the block runs;
        render(step) makes its preview when one is asked for."""
        tracked = Tracked(client, render)
        tracked.job = submit(tracked.on_step)
        with self._lock:
            self._tracked.setdefault(client, []).append(tracked)
        try:
            yield tracked
        finally:
            with self._lock:
                line = self._tracked[client]
                line.remove(tracked)
                if not line:
                    del self._tracked[client]

    def _mine(self, client: str) -> list[Tracked]:
        with self._lock:
            return list(self._tracked.get(client, ()))

    def progress(self, client: str, want_preview: bool = False) -> Progress:
        """The client's job that runs (else the oldest waiting); want_preview asks its next step for a preview."""
        mine = self._mine(client)
        if not mine:
            return IDLE
        shown = next((t for t in mine if t.job.started is not None), mine[0])
        job = shown.job
        if want_preview:
            shown.want_preview()
        elapsed = time.monotonic() - job.started if job.started is not None else 0.0
        done, total = min(job.steps_done, job.total_steps), job.total_steps
        return Progress(fraction=done / total if total else 0.0, eta_s=remaining_seconds(elapsed, done, total),
                        steps_done=done, steps_total=total, jobs=len(mine), running=job.started is not None,
                        interrupted=shown.interrupted, preview=shown.preview)

    def interrupt(self, client: str) -> int:
        """Cancel every job of the client (running or waiting); how many there were."""
        mine = self._mine(client)
        for tracked in mine:
            tracked.interrupted = True
            tracked.job.cancel(INTERRUPTED)
        return len(mine)
