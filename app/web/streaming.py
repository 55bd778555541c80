"""One streamed run, whatever the family: the job is admitted before the first byte, then `start`, a `step` per
denoising step, and `result` or `error`; every event carries the run's id.

Everything a client can get wrong (parameters, caps, no model, a full queue) is answered before the stream
starts, as a plain 422/429/503. Once it has started, a failure arrives as an `error` event with the status the
REST endpoint would have answered (app/web/errors.py). Leaving early (the client closed the stream) cancels the
job, so the sampler stops at its next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.sse import ServerSentEvent
from pydantic import BaseModel

from app.service.jobs import Job
from app.service.previews import remaining_seconds
from app.service.sampling import SamplingService
from app.web.errors import refusal
from app.web.schemas import StreamError

log = logging.getLogger("diffusion_lab")
StepEvent = Callable[[str, object, float, float], BaseModel]  # (run id, the job's step, elapsed s, remaining s)


class LiveRun:
    """A job of the sampling service watched live: its id, and the queue its step events arrive on."""

    def __init__(self, submit: Callable[[Callable[[object], None]], Job], step_event: StepEvent,
                 sampler: SamplingService):
        self.id = str(uuid.uuid4())
        self.admitted = time.perf_counter()
        self._step_event, self._sampler = step_event, sampler
        self._loop = asyncio.get_running_loop()
        self._steps: asyncio.Queue[BaseModel | None] = asyncio.Queue()
        self._submitted = threading.Event()
        self.job = submit(self._on_step)  # or QueueFull: a 429 before the stream starts
        self._submitted.set()

    def _on_step(self, step: object) -> None:
        """In the worker thread: render the step (previews cost torch work), then hand it to the event loop."""
        self._submitted.wait()  # self.job is assigned once submit() returns
        elapsed = time.monotonic() - (self.job.started or time.monotonic())
        remaining = remaining_seconds(elapsed, self.job.steps_done, self.job.total_steps)
        event = self._step_event(self.id, step, elapsed, remaining)
        self._loop.call_soon_threadsafe(self._steps.put_nowait, event)

    async def events(self, start: BaseModel | None,
                     result: Callable[[list], Awaitable[BaseModel]]) -> AsyncIterator[ServerSentEvent]:
        """start (unless None), the steps as they come, then `await result(the job's results)` or an error event."""
        if start is not None:
            yield ServerSentEvent(event="start", data=start)
        waiter = asyncio.ensure_future(self.job.result())
        waiter.add_done_callback(lambda _: self._steps.put_nowait(None))
        try:
            while (item := await self._steps.get()) is not None:
                yield ServerSentEvent(event="step", data=item)
            yield ServerSentEvent(event="result", data=await result(waiter.result()))
        except Exception as err:
            answer = refusal(err, self._sampler)
            if answer is None:  # a bug, not the client's doing: report it in the stream, log the traceback
                log.exception("streamed run %s failed", self.id)
            status, detail = (answer.status_code, answer.detail) if answer else (500, f"generation failed: "
                                                                                     f"{type(err).__name__}")
            yield ServerSentEvent(event="error", data=StreamError(id=self.id, status=status, detail=detail))
        finally:
            waiter.cancel()
            self.job.cancel()
