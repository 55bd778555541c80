"""POST /v1/images/generations with `stream: true`: the official events over Server-Sent Events.

`image_generation.partial_image` carries the x̂0 preview of image 0 (decoded on the sampler's thread) at evenly
spaced steps, `image_generation.completed` each finished image; a failure after the start is an `error` event
with the official error object. The other steps send an SSE comment, which clients skip, so a client that left
is noticed at the next step and its job cancelled (app/web/streaming.py runs the job as every stream does).
"""

import itertools
import time
from collections.abc import AsyncIterator, Callable

from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from app.pipelines.image import GenerationResult, Step
from app.service.imaging import to_base64
from app.service.models import LoadedModel, token_usage
from app.service.previews import evenly_spaced_steps, x0_hat_png
from app.service.sampling import SamplingService
from app.web import schemas
from app.web.dialects.shapes import OPENAI
from app.web.routes.generation import build_result, settings_of
from app.web.streaming import LiveRun

EVENT_NAMES = ("image_generation.partial_image", "image_generation.completed", "error")


def size_of(result: schemas.GenerateResult) -> str:
    """WIDTHxHEIGHT of the images."""
    image = result.images[0]
    return f"{image.width}x{image.height}"


def usage_of(result: schemas.GenerateResult, model: LoadedModel) -> schemas.ImagesUsage:
    """The request's usage in the model's own tokens (app/service/models.py)."""
    captions = (result.prompt_canonical, result.negative_prompt_canonical)
    return schemas.ImagesUsage.of(*token_usage(model.pipeline, captions, len(result.images)))


class _StepDone(BaseModel):
    """A step without a partial image: sent as a comment."""

    index: int
    total: int


class _Completed(BaseModel):
    events: list[schemas.CompletedEvent]


def _step_event(model: LoadedModel, shown: set[int]):
    """In the worker thread: the partial image of a chosen step, else the step's mark."""
    numbers = itertools.count()
    side = model.pipeline.resolution

    def event(run_id: str, step: Step, elapsed_s: float, remaining_s: float) -> BaseModel:
        if step.info.index not in shown:
            return _StepDone(index=step.info.index, total=step.info.total)
        png = x0_hat_png(model.pipeline, step)
        return schemas.PartialImageEvent(b64_json=to_base64(png), created_at=int(time.time()),
                                         partial_image_index=next(numbers), size=f"{side}x{side}")

    return event


def _wire(data: BaseModel) -> bytes:
    if isinstance(data, _StepDone):
        return format_sse_event(comment=f"step index {data.index} of {data.total}")
    return format_sse_event(event=data.type, data_str=data.model_dump_json())


async def _official(run: LiveRun, completed: Callable) -> AsyncIterator[bytes]:
    """LiveRun's events in the official vocabulary."""
    async for sse in run.events(None, completed):
        if sse.event == "step":
            yield _wire(sse.data)
        elif sse.event == "result":
            for event in sse.data.events:
                yield _wire(event)
        else:  # error: the status and detail the REST answer would have had
            yield _wire(schemas.ErrorEvent(**OPENAI.body(sse.data.status, sse.data.detail)))


class _Events(EventSourceResponse):
    """Closes its events however the response ends, the client leaving included, and then cancels the job (even
    one whose events were never read)."""

    def __init__(self, events: AsyncIterator[bytes], on_close: Callable[[], None]):
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events, self._on_close = events, on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.aclose()
            self._on_close()


def stream_images(params: schemas.GenerateParameters, partial_images: int, model: LoadedModel,
                  service: SamplingService, client: str) -> EventSourceResponse:
    """Queue the job now (QueueFull is a plain 429), and answer its events as they come."""
    shown = set(evenly_spaced_steps(params.steps, partial_images))
    run = LiveRun(lambda on_step: service.submit(settings_of(params), on_step, client), _step_event(model, shown),
                  service)

    async def completed(results: list[GenerationResult]) -> _Completed:
        result = build_result(results[0], run.job, params, model, run.admitted)
        usage, size, now = usage_of(result, model), size_of(result), int(time.time())
        return _Completed(events=[schemas.CompletedEvent(b64_json=image.png_base64, created_at=now, size=size,
                                                         usage=usage) for image in result.images])

    return _Events(_official(run, completed), run.job.cancel)
