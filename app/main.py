"""create_app(): assembles routers, static files, templates and the lifespan."""

import logging
import math
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline

from app import __version__
from app.config import Settings, asset_dir, get_settings
from app.diffusion.samplers import SamplingCancelled
from app.nets.io import WeightsError
from app.service.clip_jobs import load_video, missing_video_files
from app.service.models import LoadedModel, load_model
from app.service.sampling import SamplingService, in_passing_thread
from app.web.metrics import Metrics
from app.web.middleware import ApiKeyMiddleware, RequestContextMiddleware
from app.web.routes import (
    benchmarks,
    generation,
    guidance_lab,
    health,
    instruments,
    model,
    pages,
    stream,
    vendor,
    video,
)
from app.web.security import SecurityHeadersMiddleware

TEMPLATES_DIR = asset_dir("templates")  # the defaults of settings.templates_dir and settings.static_dir
STATIC_DIR = asset_dir("static")


log = logging.getLogger("diffusion_lab")


async def _load_model(app, settings: Settings) -> None:
    """Load the weights and run one warm-up step off the event loop; a failure leaves the app up but not ready."""
    try:
        # a thread that ends once loaded: its OpenMP pool would otherwise halve the sampler's speed
        loaded = await in_passing_thread(load_model, settings.model_dir, settings.device)
    except (WeightsError, RuntimeError) as err:  # RuntimeError: device "cuda" without a GPU, out of memory
        log.error("the model was not loaded: %s", err)
        app.state.model_error = str(err)
        return
    app.state.model, app.state.pipeline = loaded, loaded.pipeline
    await _load_video(app, settings, loaded)
    app.state.sampler = SamplingService(loaded.pipeline, settings.worker_threads, settings.queue_size,
                                        settings.request_timeout_s, settings.batch_rows)
    app.state.sampler.listeners.append(app.state.metrics.observe_job)
    log.info("model %s loaded on %s in %.2f s (warm-up %.2f s)", loaded.model_id, loaded.pipeline.device,
             loaded.load_s, loaded.warm_up_s)


async def _load_video(app, settings: Settings, loaded: LoadedModel) -> None:
    """Load the video model beside the image model when its files are there; a failure only costs the video."""
    if missing := missing_video_files(settings.model_dir):
        log.info("%s: the video endpoints answer 503", missing)
        app.state.video_error = missing
        return
    try:
        video = await in_passing_thread(load_video, settings.model_dir, loaded.pipeline)
    except WeightsError as err:
        log.error("the video model was not loaded (images are served as before): %s", err)
        app.state.video_error = f"video model not loaded: {err}"
        return
    app.state.video = video
    log.info("video model %s loaded (%d frames, %s attention) in %.2f s (warm-up %.2f s)", video.model_id,
             video.max_frames, video.pipeline.dit.config.attention, video.load_s, video.warm_up_s)


@asynccontextmanager
async def lifespan(app):
    settings = app.state.settings
    threads = torch.get_num_threads()
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)
    if settings.load_model:
        await _load_model(app, settings)
    app.state.ready = app.state.model is not None or not settings.load_model
    try:
        yield
    finally:
        app.state.ready = False
        if app.state.sampler is not None:
            app.state.sampler.close()
        torch.set_num_threads(threads)


def _json_safe(value):
    """NaN and infinities (which a JSON body may carry) as strings, so a 422 can echo them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, except that a non-finite number in the input does not turn it into a 500."""
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})


async def _cancelled(request: Request, exc: SamplingCancelled) -> JSONResponse:
    """A job refused or stopped because the server is shutting down (or the job was cancelled): 503, retry."""
    return JSONResponse(status_code=503, content={"detail": str(exc)}, headers={"Retry-After": "5"})


def _add_middleware(app, settings: Settings) -> None:
    """Outermost first: security headers, request id + metrics + log, CORS (so a 401 is readable), the API key."""
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value())
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "X-Client-Id"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)  # added last = outermost: every response, 500s included


def create_app(settings: Settings | None = None) -> FastAPIOffline:
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="Diffusion Lab",
        version=__version__,
        description="The chapter 'Image & Video Generation', live: instruments and a real latent diffusion model.",
        lifespan=lifespan,
        root_path=settings.root_path,
    )
    app.state.settings = settings
    app.state.ready = False
    app.state.model = app.state.pipeline = app.state.sampler = app.state.model_error = None
    app.state.video = app.state.video_error = None
    app.state.draining = False
    app.state.metrics = Metrics()
    app.state.templates = Jinja2Templates(directory=Path(settings.templates_dir))
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    _add_middleware(app, settings)
    app.include_router(vendor.router)
    app.include_router(health.router)
    app.include_router(instruments.router, prefix="/api/v1")
    app.include_router(generation.router, prefix="/api/v1")
    app.include_router(stream.router, prefix="/api/v1")
    app.include_router(video.router, prefix="/api/v1")
    app.include_router(guidance_lab.router, prefix="/api/v1")
    app.include_router(model.router, prefix="/api/v1")
    app.include_router(benchmarks.router, prefix="/api/v1")
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SamplingCancelled, _cancelled)
    app.include_router(pages.router)
    return app
