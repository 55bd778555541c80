"""Text to video over HTTP: POST /generate/video, its live stream, and EQ MM3.6's attention cost timed on the model.

A clip is one job of the sampling service (the same bounded, fair queue and time limit as images; never batched
with them): the space-time model samples it and, with compare, the image model samples the per-frame baseline;
both are measured. The stream is run by app/web/streaming.py, like the image stream, with the same event keys.
"""

import time
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.lab import attention_timing
from app.measure.video import ClipMetrics, measure_clip
from app.pipelines.video import CLIP_METHODS, ClipResult, ClipSettings, ClipStep
from app.service.imaging import ANIMATION_MIME, animation_frame_ms, encode_animation, encode_png, to_base64
from app.service.jobs import Job, StepCallback, random_seed
from app.service.sampling import SamplingService
from app.service.video_model import LoadedVideo, strip_png
from app.web import schemas
from app.web.deps import ClientDep, SamplingServiceDep, SettingsDep, VideoDep
from app.web.errors import REFUSALS, TOO_LARGE, located_errors, unprocessable
from app.web.recorded_timings import video_forward
from app.web.streaming import LiveRun
from app.world.clips import parse_video_prompt

router = APIRouter(tags=["video"])
timing_router = APIRouter(tags=["instruments"])  # the live timing, listed with the other instruments

REFUSED = {
    **REFUSALS,
    503: {"model": schemas.Refused,
          "description": "No image or no video model loaded (the detail says which file is missing), or the job ran "
                         "past the time limit; see `Retry-After`"},
}
STREAM_RESPONSES = {
    200: {"description": "text/event-stream: `start` (VideoStreamStart), one `step` (VideoStreamStep) per denoising "
                         "step of each method, then `result` (VideoStreamResult, the POST /generate/video payload) "
                         "or `error` (StreamError)"},
    **unprocessable(schemas.VideoStreamQuery),
    **REFUSED,
}


def _check(req: schemas.VideoRequest, where: str, max_steps: int, video: LoadedVideo) -> None:
    """The server's step cap and the model's frame count on top of the schema's own validation; 422 naming the field."""
    if errors := req.limit_errors(max_steps, video.max_frames):
        raise located_errors(errors, where)


def _parameters(req: schemas.VideoRequest) -> schemas.VideoParameters:
    seed = req.seed if req.seed is not None else random_seed(req.frames)
    return schemas.VideoParameters(**req.model_dump(exclude={"seed"}), seed=seed)


def _submit(params: schemas.VideoParameters, video: LoadedVideo, service: SamplingService, client: str,
            on_step: StepCallback | None = None) -> Job:
    """Queue the clip job (or QueueFull): the clip, and with compare the per-frame baseline, as its parts."""
    clip = ClipSettings(**params.model_dump(exclude={"compare", "format", "include_frames"}))
    parts = [replace(clip, method=method) for method in _methods(params)]
    return service.submit_many(parts, on_step, client, generator=video.generator)


def _methods(params: schemas.VideoParameters) -> list[str]:
    return list(CLIP_METHODS) if params.compare else [CLIP_METHODS[0]]


async def _measured(clips: list[ClipResult], service: SamplingService) -> tuple[list[ClipMetrics], float]:
    """Each clip read by the judge (torch work, so on the sampler's thread), and the seconds it took."""
    started = time.perf_counter()
    metrics = await service.run_in_worker(lambda: [measure_clip(c.frames, c.prompt) for c in clips])
    return metrics, time.perf_counter() - started


def _clip(result: ClipResult, metrics: ClipMetrics, params: schemas.VideoParameters) -> schemas.VideoClip:
    animation = schemas.Animation(mime=ANIMATION_MIME[params.format],
                                  base64=to_base64(encode_animation(result.frames, params.format)),
                                  frame_ms=animation_frame_ms(params.format))
    frames = [to_base64(encode_png(frame)) for frame in result.frames] if params.include_frames else []
    return schemas.VideoClip(method=result.method, caption=result.caption, animation=animation, frames=frames,
                             metrics=schemas.ClipMetricsResult(**metrics.to_dict()), timings=result.timings)


async def build_video_result(clips: list[ClipResult], job: Job, params: schemas.VideoParameters,
                             video: LoadedVideo, service: SamplingService, admitted: float) -> schemas.VideoResult:
    """The response of a finished clip job: the clips measured, as animations (and PNG frames), with timings."""
    metrics, metrics_s = await _measured(clips, service)
    encode_started = time.perf_counter()
    clip, *baseline = [_clip(result, measured, params) for result, measured in zip(clips, metrics)]
    done = time.perf_counter()
    timings = schemas.VideoTimings(queue_s=job.queue_s, run_s=sum(c.timings["total_s"] for c in clips),
                                   metrics_s=metrics_s, encode_s=done - encode_started, total_s=done - admitted,
                                   network_forwards=sum(int(c.timings["network_forwards"]) for c in clips))
    prompt = clips[0].prompt
    return schemas.VideoResult(prompt=prompt.canonical, parsed=schemas.ParsedClipPrompt.model_validate(prompt),
                               seed=params.seed, parameters=params, model_id=video.model_id, video=clip,
                               baseline=baseline[0] if baseline else None, timings=timings)


@router.post("/generate/video", responses={**unprocessable(schemas.VideoRequest), **REFUSED, **TOO_LARGE},
             summary="Text to video with the space-time DiT (EQ MM3.6), optionally beside the per-frame baseline")
async def generate_video(req: schemas.VideoRequest, client: ClientDep, settings: SettingsDep, video: VideoDep,
                         service: SamplingServiceDep) -> schemas.VideoResult:
    """Sample one clip in a worker thread; the same parameters and seed give the same frames."""
    _check(req, "body", settings.max_steps, video)
    admitted = time.perf_counter()
    params = _parameters(req)
    job = _submit(params, video, service, client)
    return await build_video_result(await job.result(), job, params, video, service, admitted)


# ------------------------------------------------------------------------------------------ the live stream


def _step_event(run_id: str, step: ClipStep, elapsed_s: float, remaining_s: float) -> schemas.VideoStreamStep:
    """In the worker thread: the step's position and every frame's x̂0 latent as one strip (no decode)."""
    return schemas.VideoStreamStep(id=run_id, **step.position.as_dict(), method=step.method,
                                   preview=to_base64(strip_png(step.x0_hat)), elapsed_s=elapsed_s,
                                   remaining_s=remaining_s)


async def admit(q: Annotated[schemas.VideoStreamQuery, Query()], client: ClientDep, settings: SettingsDep,
                video: VideoDep, service: SamplingServiceDep) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """Validate and queue the job before any byte of the stream is sent; cancel it when the response ends."""
    _check(q, "query", settings.max_steps, video)
    params = _parameters(q)
    run = LiveRun(lambda on_step: _submit(params, video, service, client, on_step), _step_event, service)
    start = schemas.VideoStreamStart(id=run.id, total_steps=run.job.total_steps, frames=params.frames,
                                     methods=_methods(params), prompt=parse_video_prompt(params.prompt).canonical,
                                     parameters=params)

    async def result(clips: list[ClipResult]) -> schemas.VideoStreamResult:
        answer = await build_video_result(clips, run.job, params, video, service, run.admitted)
        return schemas.VideoStreamResult(id=run.id, **dict(answer))

    try:
        yield run.events(start, result)
    finally:  # the stream ended, or the client closed it, or it never started
        run.job.cancel()


@router.get("/generate/video/stream", response_class=EventSourceResponse, responses=STREAM_RESPONSES,
            summary="Text to video, live: Server-Sent Events with every frame's x̂0 at every step")
async def generate_video_stream(events: Annotated[AsyncIterator[ServerSentEvent], Depends(admit)]
                                ) -> AsyncIterable[ServerSentEvent]:
    """The fields of POST /generate/video's body as query parameters; events carry the request's id."""
    async with aclosing(events):  # closed at once when the client leaves: it cancels the job
        async for event in events:
            yield event


# ------------------------------------------------------------------------------------------ EQ MM3.6, timed


@timing_router.get("/instruments/coherence/attention", responses={**unprocessable(schemas.AttentionQuery), **REFUSED},
                   summary="The served video model's tokens; joint vs factorised attention pairs, FLOPs and forwards "
                           "timed here")
async def coherence_attention(q: Annotated[schemas.AttentionQuery, Query()], video: VideoDep, settings: SettingsDep,
                              service: SamplingServiceDep, client: ClientDep) -> schemas.AttentionTimingResult:
    """Measured once per server process, frames and repeats (as a job of the queue: never beside another job on its
    worker) and cached until `remeasure=true`; `cached` and `measured_at` say which. The two networks are timed in
    interleaved rounds: median, quartiles, a noisy flag with the load average, whether the order the FLOPs expect is
    resolved, and the recorded benchmark figure for the same forward where bench/results/ has one."""
    if errors := schemas.frames_limit_error(q.frames, video.max_frames):
        raise located_errors(errors, "query")
    timing = await service.run_call(
        lambda: attention_timing.measured_once(video.pipeline, video.model_id, q.frames, q.repeats, q.remeasure,
                                               beside=lambda: service.running - 1), client)
    recorded = {kind: video_forward(settings.bench_results_dir, kind, timing.frames, timing.tokens, parameters)
                for kind, parameters in (("factorised", timing.factorised_parameters),
                                         ("joint", timing.joint_parameters))}
    return schemas.AttentionTimingResult.model_validate({
        **vars(timing), "model_id": video.model_id,
        **{f"{kind}_recorded": figure for kind, (figure, _) in recorded.items()},
        **{f"{kind}_recorded_note": note for kind, (_, note) in recorded.items()}})
