"""The tail every streamed job shares: its step events, then its result, or an error event."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from fastapi.sse import ServerSentEvent

from app.diffusion.samplers import SamplingCancelled
from app.service.sampling import Job, JobTimeout

log = logging.getLogger("diffusion_lab")


async def job_events(job: Job, steps: asyncio.Queue, step_data: Callable, result_data: Callable,
                     error: Callable[[int, str], ServerSentEvent], name: str) -> AsyncIterator[ServerSentEvent]:
    """`step` events for what arrives on `steps` until the job ends, then `result` (or `error`).

    step_data(item) and result_data(job's result) build the events' data; leaving early cancels the job.
    """
    waiter = asyncio.ensure_future(job.result())
    waiter.add_done_callback(lambda _: steps.put_nowait(None))
    try:
        while (item := await steps.get()) is not None:
            yield ServerSentEvent(event="step", data=step_data(item))
        yield ServerSentEvent(event="result", data=result_data(waiter.result()))
    except JobTimeout as err:
        yield error(503, str(err))
    except SamplingCancelled:  # only close() cancels a job that has time left: the server is stopping
        yield error(503, "generation was cancelled: the server is shutting down")
    except Exception as err:  # a bug, not the client's doing: report it in the stream, log the traceback
        log.exception("streamed %s failed", name)
        yield error(500, f"generation failed: {type(err).__name__}")
    finally:
        waiter.cancel()
        job.cancel()
