"""Start-up and shut-down: load the models off the event loop, start the sampler, close it at the end."""

import logging
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI

from app.config import Settings
from app.nets.io import WeightsError
from app.service.compiled import install as install_compiled
from app.service.compiled import start_warm_up
from app.service.models import LoadedModel, load_model
from app.service.sampling import SamplingService, in_passing_thread
from app.service.token_models import load_token_families
from app.service.video_model import load_video, missing_video_files
from app.web.state import AppState, state_of

log = logging.getLogger("diffusion_lab")


async def _load_model(state: AppState, settings: Settings) -> None:
    """Load the weights and run one warm-up step off the event loop; a failure leaves the app up but not ready."""
    try:
        # a thread that ends once loaded: its OpenMP pool would otherwise halve the sampler's speed
        loaded = await in_passing_thread(load_model, settings.model_dir, settings.device)
    except (WeightsError, RuntimeError) as err:  # RuntimeError: device "cuda" without a GPU, out of memory
        log.error("the model was not loaded: %s", err)
        state.model_error = str(err)
        return
    state.model = loaded
    await _load_video(state, settings, loaded)
    state.token_families, state.token_errors = await in_passing_thread(load_token_families, settings.model_dir,
                                                                       str(loaded.pipeline.device))
    for family, why in state.token_errors.items():
        log.info("%s: its requests answer 503", why)
    for family, tokens in state.token_families.items():
        log.info("%s model %s loaded in %.2f s (warm-up %.2f s)", family, tokens.model_id, tokens.load_s,
                 tokens.warm_up_s)
    state.sampler = SamplingService(loaded.pipeline, settings.worker_threads, settings.queue_size,
                                    settings.request_timeout_s, settings.batch_rows)
    state.sampler.listeners.append(state.metrics.observe_job)
    video = state.video.pipeline if state.video is not None else None
    state.compiled = install_compiled(loaded.pipeline, video, settings.compile, settings.compile_cache_dir)
    log.info("model %s loaded on %s in %.2f s (warm-up %.2f s)", loaded.model_id, loaded.pipeline.device,
             loaded.load_s, loaded.warm_up_s)


async def _load_video(state: AppState, settings: Settings, loaded: LoadedModel) -> None:
    """Load the video model beside the image model when its files are there; a failure only costs the video."""
    if missing := missing_video_files(settings.model_dir):
        log.info("%s: the video endpoints answer 503", missing)
        state.video_error = missing
        return
    try:
        video = await in_passing_thread(load_video, settings.model_dir, loaded.pipeline)
    except WeightsError as err:
        log.error("the video model was not loaded (images are served as before): %s", err)
        state.video_error = f"video model not loaded: {err}"
        return
    state.video = video
    log.info("video model %s loaded (%d frames, %s attention) in %.2f s (warm-up %.2f s)", video.model_id,
             video.max_frames, video.pipeline.dit.config.attention, video.load_s, video.warm_up_s)


@asynccontextmanager
async def lifespan(app: FastAPI):
    state = state_of(app)
    settings = state.settings
    threads = torch.get_num_threads()
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)
    if settings.load_model:
        await _load_model(state, settings)
    state.ready = state.model is not None or not settings.load_model
    if state.compiled is not None:  # after ready, never before: until a bucket is warm it runs eagerly
        video = state.video.pipeline if state.video is not None else None
        start_warm_up(state.model.pipeline, video, state.compiled, settings.torch_threads)
    try:
        yield
    finally:
        state.ready = False
        if state.sampler is not None:
            state.sampler.close()
        torch.set_num_threads(threads)
