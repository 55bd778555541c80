"""Live sampling: GET /generate/stream answers Server-Sent Events, one per denoising step, then the result.

Everything a client can get wrong (parameters, caps, no model, a full queue) is answered before the stream
starts, as a plain 422/429/503; once it has started, a failure arrives as an `error` event. Closing the
stream cancels the job, so the sampler stops at its next step.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.pipelines.image import GenerationSettings, Step
from app.service.imaging import to_base64
from app.service.models import LoadedModel
from app.service.previews import LATENT_PREVIEW, StepView, view_step
from app.service.sampling import QueueFull, SamplingService, client_key, random_seed
from app.web import schemas
from app.web.deps import ModelDep, SamplingServiceDep, SettingsDep
from app.web.routes.generation import ERROR_RESPONSES, build_result
from app.web.routes.job_events import job_events
from app.world.scenes import parse_prompt

router = APIRouter(tags=["generation"])

STREAM_RESPONSES = {
    200: {"description": "text/event-stream: `start` (StreamStart), one `step` (StreamStep) per denoising step, "
                         "then `result` (StreamResult, the POST /generate payload) or `error` (StreamError)"},
    **ERROR_RESPONSES,
}


def _query_errors(errors: list[dict]) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors])


def _check(q: schemas.GenerateStreamQuery, max_steps: int, max_batch: int) -> schemas.GenerateCheck:
    """The server's caps on top of the query model's own validation; 422 naming the field."""
    if errors := q.limit_errors(max_steps, max_batch):
        raise _query_errors(errors)
    return schemas.GenerateCheck(prompt_canonical=parse_prompt(q.prompt).canonical,
                                 negative_prompt_canonical=parse_prompt(q.negative_prompt).canonical)


class LiveJob:
    """One streamed generation: its id, its job in the sampling service, and the queue its steps arrive on."""

    def __init__(self, q: schemas.GenerateStreamQuery, check: schemas.GenerateCheck, model: LoadedModel,
                 service: SamplingService, client: str = ""):
        self.id = str(uuid.uuid4())
        self.admitted = time.perf_counter()
        self.check, self.model, self.previews = check, model, q.previews
        seed = q.seed if q.seed is not None else random_seed(q.batch_size)
        self.params = schemas.GenerateParameters(**q.model_dump(exclude={"seed", "previews"}), seed=seed)
        self._loop = asyncio.get_running_loop()
        self._steps: asyncio.Queue[StepView | None] = asyncio.Queue()
        self._submitted = threading.Event()
        settings = GenerationSettings(**self.params.model_dump())
        self.job = service.submit(settings, self._on_step, client)  # or QueueFull
        self._submitted.set()

    def _on_step(self, step: Step) -> None:
        """In the worker thread: render the step, then hand it to the event loop."""
        self._submitted.wait()  # self.job is assigned once submit() returns
        elapsed = time.monotonic() - (self.job.started or time.monotonic())
        view = view_step(self.model.pipeline, step, elapsed, self.previews)
        self._loop.call_soon_threadsafe(self._steps.put_nowait, view)

    def _start(self) -> schemas.StreamStart:
        pipeline = self.model.pipeline
        c, s = pipeline.dit.config.latent_channels, pipeline.dit.config.latent_size
        return schemas.StreamStart(
            id=self.id, parameters=self.params, total_steps=self.params.steps,
            prompt_canonical=self.check.prompt_canonical,
            negative_prompt_canonical=self.check.negative_prompt_canonical, previews=self.previews,
            preview_seed=self.params.seed, latent_shape=[c, s, s], resolution=pipeline.resolution,
            latent_preview=LATENT_PREVIEW,
        )

    def _step(self, view: StepView) -> schemas.StreamStep:
        previews = None
        if view.x_t_png is not None:
            previews = schemas.StepPreviews(x_t=to_base64(view.x_t_png), x0_hat=to_base64(view.x0_hat_png),
                                            eps_hat=to_base64(view.eps_hat_png))
        return schemas.StreamStep(
            id=self.id, index=view.index, total=view.total, t=view.t, abar_t=view.abar_t,
            sqrt_abar_t=view.sqrt_abar_t, sqrt_one_minus_abar_t=view.sqrt_one_minus_abar_t,
            elapsed_s=view.elapsed_s, remaining_s=view.remaining_s, previews=previews,
        )

    def _error(self, status: int, detail: str) -> ServerSentEvent:
        return ServerSentEvent(event="error", data=schemas.StreamError(id=self.id, status=status, detail=detail))

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        """start, step x N, then result or error; leaving early (the client went away) cancels the job."""
        yield ServerSentEvent(event="start", data=self._start())
        events = job_events(
            self.job, self._steps, self._step,
            lambda result: schemas.StreamResult(
                id=self.id, **dict(build_result(result, self.job, self.params, self.model, self.admitted))),
            self._error, f"generation {self.id}")
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # at once, not when the generator is collected: it cancels the job


async def admit(q: Annotated[schemas.GenerateStreamQuery, Query()], request: Request, settings: SettingsDep,
                model: ModelDep, service: SamplingServiceDep) -> AsyncIterator[LiveJob]:
    """Validate and queue the job before any byte of the stream is sent; cancel it when the response ends."""
    check = _check(q, settings.max_steps, settings.max_batch)
    try:
        client = client_key(request.headers, request.client.host if request.client else None)
        live = LiveJob(q, check, model, service, client)
    except QueueFull as err:
        raise HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after_s)}) from err
    try:
        yield live
    finally:  # the stream ended, or the client closed it, or it never started
        live.job.cancel()


@router.get("/generate/stream", response_class=EventSourceResponse, responses=STREAM_RESPONSES,
            summary="Text to image, live: Server-Sent Events with previews of x_t and x̂0 at every step")
async def generate_stream(live: Annotated[LiveJob, Depends(admit)]) -> AsyncIterable[ServerSentEvent]:
    """The query of POST /generate's body (plus `previews`); events carry the request's id."""
    async for event in live.events():
        yield event


@router.get("/generate/validate", responses={422: ERROR_RESPONSES[422]},
            summary="Check a generation request without running it (the stream's 422, as JSON)")
def validate(q: Annotated[schemas.GenerateStreamQuery, Query()], settings: SettingsDep) -> schemas.GenerateCheck:
    """200 with the canonical captions when the stream would accept these parameters; 422 naming the field if not."""
    return _check(q, settings.max_steps, settings.max_batch)
