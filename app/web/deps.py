"""Typed dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.config import Settings, get_settings
from app.pipelines.image import Pipeline
from app.service.clip_jobs import LoadedVideo
from app.service.models import LoadedModel
from app.service.sampling import SamplingService

NOT_LOADED_RETRY_AFTER_S = 30
DRAINING_RETRY_AFTER_S = 5  # another replica can take it at once; a lone server is back after its restart


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (tests pass their own to create_app)."""
    return getattr(request.app.state, "settings", None) or get_settings()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_templates(request: Request):
    return request.app.state.templates


def _not_loaded(request: Request) -> HTTPException:
    state = request.app.state
    settings = get_app_settings(request)
    if getattr(state, "model_error", None):
        why = f"the model failed to load: {state.model_error}"
    elif not settings.load_model:
        why = "this server runs without the model (DIFFUSION_LAB_LOAD_MODEL=false)"
    else:
        why = "the model is still loading"
    return HTTPException(503, detail=why, headers={"Retry-After": str(NOT_LOADED_RETRY_AFTER_S)})


def get_model(request: Request) -> LoadedModel:
    """The loaded model (pipeline and identity), or 503 with Retry-After."""
    model = getattr(request.app.state, "model", None)
    if model is None:
        raise _not_loaded(request)
    return model


def get_pipeline(request: Request) -> Pipeline:
    """The loaded pipeline, or 503 with Retry-After."""
    return get_model(request).pipeline


def get_sampling_service(request: Request) -> SamplingService:
    """The worker pool that runs the pipeline, or 503 with Retry-After while there is no model or it drains."""
    service = getattr(request.app.state, "sampler", None)
    if service is None:
        raise _not_loaded(request)
    if service.closing:
        raise HTTPException(503, detail="the server is shutting down and takes no new generation jobs",
                            headers={"Retry-After": str(DRAINING_RETRY_AFTER_S)})
    return service


def get_video(request: Request) -> LoadedVideo:
    """The loaded video model, or 503: the image model's reason when that is missing too, else the video's own."""
    state = request.app.state
    video = getattr(state, "video", None)
    if video is not None:
        return video
    if getattr(state, "model", None) is None:
        raise _not_loaded(request)
    why = getattr(state, "video_error", None) or "video model not loaded"
    raise HTTPException(503, detail=why, headers={"Retry-After": str(NOT_LOADED_RETRY_AFTER_S)})


ModelDep = Annotated[LoadedModel, Depends(get_model)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SamplingServiceDep = Annotated[SamplingService, Depends(get_sampling_service)]
VideoDep = Annotated[LoadedVideo, Depends(get_video)]
