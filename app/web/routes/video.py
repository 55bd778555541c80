"""Text to video over HTTP: POST /generate/video, its live stream, and EQ MM3.6's attention cost timed on the model.

A clip is one job of the sampling service (the same bounded, fair queue and time limit as images; never batched
with them): the space-time model samples it and, with compare, the image model samples the per-frame baseline;
both are measured. As in app/web/routes/stream.py, everything a client can get wrong is answered before the stream
starts; afterwards a failure is an `error` event, and closing the stream cancels the job at its next step.
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

from app.diffusion.samplers import SamplingCancelled
from app.lab import attention_timing
from app.measure.video import ClipMetrics
from app.pipelines.video import ClipResult, ClipSettings
from app.service.clip_jobs import METHODS, ClipRun, ClipStep, LoadedVideo, clip_work, strip_png
from app.service.imaging import ANIMATION_MIME, animation_frame_ms, encode_animation, encode_png, to_base64
from app.service.models import LoadedModel
from app.service.previews import remaining_seconds
from app.service.sampling import CallJob, JobTimeout, QueueFull, SamplingService, client_key, random_seed
from app.web import schemas
from app.web.deps import ModelDep, SamplingServiceDep, SettingsDep, VideoDep
from app.web.routes.generation import ERROR_RESPONSES
from app.web.routes.job_events import job_events
from app.world.clips import parse_video_prompt

router = APIRouter(tags=["video"])

VIDEO_RESPONSES = {
    **ERROR_RESPONSES,
    503: {"description": "No image or no video model loaded (the detail says which file is missing), or the job ran "
                         "past the time limit; see `Retry-After`"},
}
STREAM_RESPONSES = {
    200: {"description": "text/event-stream: `start` (VideoStreamStart), one `step` (VideoStreamStep) per denoising "
                         "step of each method, then `result` (VideoStreamResult, the POST /generate/video payload) "
                         "or `error` (VideoStreamError)"},
    **VIDEO_RESPONSES,
}


def _client(request: Request) -> str:
    return client_key(request.headers, request.client.host if request.client else None)


def _check(req: schemas.VideoRequest, where: str, max_steps: int, video: LoadedVideo) -> None:
    """The server's step cap and the model's frame count on top of the schema's own validation; 422 naming the field."""
    if errors := req.limit_errors(max_steps, video.max_frames):
        raise RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in errors])


def _parameters(req: schemas.VideoRequest) -> schemas.VideoParameters:
    seed = req.seed if req.seed is not None else random_seed(req.frames)
    return schemas.VideoParameters(**req.model_dump(exclude={"seed"}), seed=seed)


def _submit(params: schemas.VideoParameters, video: LoadedVideo, model: LoadedModel, service: SamplingService,
            client: str, on_step=None) -> CallJob:
    """Queue the clip job (QueueFull as 429); its steps: `steps` per method sampled."""
    settings = ClipSettings(**params.model_dump(exclude={"compare", "format", "include_frames"}))
    work = clip_work(video.pipeline, model.pipeline, settings, params.compare)
    try:
        return service.submit_call(work, params.steps * len(_methods(params)), on_step, client)
    except QueueFull as err:
        raise HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after_s)}) from err


def _methods(params: schemas.VideoParameters) -> list[str]:
    return list(METHODS) if params.compare else [METHODS[0]]


def _clip(result: ClipResult, metrics: ClipMetrics, params: schemas.VideoParameters) -> schemas.VideoClip:
    animation = schemas.Animation(mime=ANIMATION_MIME[params.format],
                                  base64=to_base64(encode_animation(result.frames, params.format)),
                                  frame_ms=animation_frame_ms(params.format))
    frames = [to_base64(encode_png(frame)) for frame in result.frames] if params.include_frames else []
    return schemas.VideoClip(method=result.method, caption=result.caption, animation=animation, frames=frames,
                             metrics=schemas.ClipMetricsResult(**metrics.to_dict()), timings=result.timings)


def build_video_result(run: ClipRun, job: CallJob, params: schemas.VideoParameters, video: LoadedVideo,
                       admitted: float) -> schemas.VideoResult:
    """The response of a finished clip job: the clips as animations (and PNG frames), measured, with timings."""
    encode_started = time.perf_counter()
    clip = _clip(run.video, run.metrics["video"], params)
    baseline = _clip(run.baseline, run.metrics["per_frame"], params) if run.baseline is not None else None
    done = time.perf_counter()
    timings = schemas.VideoTimings(queue_s=job.queue_s, run_s=run.run_s, metrics_s=run.metrics_s,
                                   encode_s=done - encode_started, total_s=done - admitted)
    prompt = run.video.prompt
    return schemas.VideoResult(prompt=prompt.canonical, parsed=schemas.ParsedClipPrompt.model_validate(prompt),
                               seed=params.seed, parameters=params, model_id=video.model_id, video=clip,
                               baseline=baseline, timings=timings)


async def _result(job: CallJob, service: SamplingService) -> ClipRun:
    """Wait for the job; the service's refusals as 503 with Retry-After."""
    try:
        return await job.result()
    except JobTimeout as err:
        raise HTTPException(503, str(err), headers={"Retry-After": str(service.retry_after_s())}) from err
    except SamplingCancelled as err:  # only close() cancels a job that has time left: the server is stopping
        raise HTTPException(503, "generation was cancelled: the server is shutting down",
                            headers={"Retry-After": "30"}) from err


@router.post("/generate/video", responses=VIDEO_RESPONSES,
             summary="Text to video with the space-time DiT (EQ MM3.6), optionally beside the per-frame baseline")
async def generate_video(req: schemas.VideoRequest, request: Request, settings: SettingsDep, model: ModelDep,
                         video: VideoDep, service: SamplingServiceDep) -> schemas.VideoResult:
    """Sample one clip in a worker thread; the same parameters and seed give the same frames."""
    _check(req, "body", settings.max_steps, video)
    admitted = time.perf_counter()
    params = _parameters(req)
    job = _submit(params, video, model, service, _client(request))
    run = await _result(job, service)
    return build_video_result(run, job, params, video, admitted)


# ------------------------------------------------------------------------------------------ the live stream


class LiveClip:
    """One streamed clip job: its id, its job in the sampling service, and the queue its steps arrive on."""

    def __init__(self, params: schemas.VideoParameters, video: LoadedVideo, model: LoadedModel,
                 service: SamplingService, client: str):
        self.id = str(uuid.uuid4())
        self.admitted = time.perf_counter()
        self.params, self.video = params, video
        self._loop = asyncio.get_running_loop()
        self._steps: asyncio.Queue[schemas.VideoStreamStep | None] = asyncio.Queue()
        self._submitted = threading.Event()
        self.job = _submit(params, video, model, service, client, self._on_step)  # or 429
        self._submitted.set()

    def _on_step(self, step: ClipStep) -> None:
        """In the worker thread: render the step's x̂0 strip, then hand the event to the event loop."""
        self._submitted.wait()  # self.job is assigned once submit returns
        elapsed = time.monotonic() - (self.job.started or time.monotonic())
        event = schemas.VideoStreamStep(
            request_id=self.id, method=step.method, step=step.index, steps=step.total, t=step.t,
            preview=to_base64(strip_png(step.x0_hat)),
            seconds_left=remaining_seconds(elapsed, self.job.steps_done, self.job.total_steps))
        self._loop.call_soon_threadsafe(self._steps.put_nowait, event)

    def _error(self, status: int, detail: str) -> ServerSentEvent:
        return ServerSentEvent(event="error",
                               data=schemas.VideoStreamError(request_id=self.id, status=status, detail=detail))

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        """start, step x (steps x methods), then result or error; leaving early cancels the job."""
        start = schemas.VideoStreamStart(request_id=self.id, frames=self.params.frames, steps=self.params.steps,
                                         methods=_methods(self.params),
                                         prompt=parse_video_prompt(self.params.prompt).canonical,
                                         parameters=self.params)
        yield ServerSentEvent(event="start", data=start)
        events = job_events(
            self.job, self._steps, lambda step: step,
            lambda run: schemas.VideoStreamResult(
                request_id=self.id, **dict(build_video_result(run, self.job, self.params, self.video, self.admitted))),
            self._error, f"clip {self.id}")
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # at once, not when the generator is collected: it cancels the job


async def admit(q: Annotated[schemas.VideoStreamQuery, Query()], request: Request, settings: SettingsDep,
                model: ModelDep, video: VideoDep, service: SamplingServiceDep) -> AsyncIterator[LiveClip]:
    """Validate and queue the job before any byte of the stream is sent; cancel it when the response ends."""
    _check(q, "query", settings.max_steps, video)
    live = LiveClip(_parameters(q), video, model, service, _client(request))
    try:
        yield live
    finally:  # the stream ended, or the client closed it, or it never started
        live.job.cancel()


@router.get("/generate/video/stream", response_class=EventSourceResponse, responses=STREAM_RESPONSES,
            summary="Text to video, live: Server-Sent Events with every frame's x̂0 at every step")
async def generate_video_stream(live: Annotated[LiveClip, Depends(admit)]) -> AsyncIterable[ServerSentEvent]:
    """The fields of POST /generate/video's body as query parameters; events carry the request's id."""
    async for event in live.events():
        yield event


# ------------------------------------------------------------------------------------------ EQ MM3.6, timed


@router.get("/instruments/coherence/attention", tags=["instruments"],
            responses={422: ERROR_RESPONSES[422], 503: {"description": "No video model loaded; see `Retry-After`"}},
            summary="The served video model's tokens; joint vs factorised attention pairs and forwards timed here")
async def coherence_attention(q: Annotated[schemas.AttentionQuery, Query()], video: VideoDep,
                              service: SamplingServiceDep) -> schemas.AttentionTimingResult:
    """Measured once per server process, frames and repeats (on a sampler thread) and cached; `cached` says which."""
    if errors := schemas.frames_limit_error(q.frames, video.max_frames):
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors])
    timing = await service.run_in_worker(attention_timing.measured_once, video, q.frames, q.repeats)
    return schemas.AttentionTimingResult(**vars(timing), model_id=video.model_id)
