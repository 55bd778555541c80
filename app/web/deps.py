"""Typed dependencies of the routes: the app's state, its settings, the loaded models and the sampler."""

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.routing import APIRoute

from app.config import Settings
from app.service.jobs import client_key
from app.service.models import LoadedModel
from app.service.progress import ProgressBoard
from app.service.sampling import SamplingService
from app.service.token_models import LoadedTokenFamily
from app.service.video_model import LoadedVideo
from app.web.errors import DRAINING_RETRY_AFTER_S, not_loaded
from app.web.schemas.families import DIFFUSION
from app.web.state import AppState, state_of


def get_state(request: Request) -> AppState:
    return state_of(request.app)


StateDep = Annotated[AppState, Depends(get_state)]


def get_app_settings(state: StateDep) -> Settings:
    """The settings the app was created with (tests pass their own to create_app)."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def why_not_loaded(state: AppState) -> str:
    if state.model_error:
        return f"the model failed to load: {state.model_error}"
    if not state.settings.load_model:
        return "this server runs without the model (DIFFUSION_LAB_LOAD_MODEL=false)"
    return "the model is still loading"


def get_model(state: StateDep) -> LoadedModel:
    """The loaded model (pipeline and identity), or 503 with Retry-After."""
    if state.model is None:
        raise not_loaded(why_not_loaded(state))
    return state.model


def get_sampling_service(state: StateDep) -> SamplingService:
    """The worker pool that runs the pipeline, or 503 with Retry-After while there is no model or it drains."""
    if state.sampler is None:
        raise not_loaded(why_not_loaded(state))
    if state.sampler.closing:
        raise HTTPException(503, detail="the server is shutting down and takes no new generation jobs",
                            headers={"Retry-After": str(DRAINING_RETRY_AFTER_S)})
    return state.sampler


def get_video(state: StateDep) -> LoadedVideo:
    """The loaded video model, or 503: the image model's reason when that is missing too, else the video's own."""
    if state.video is not None:
        return state.video
    if state.model is None:
        raise not_loaded(why_not_loaded(state))
    raise not_loaded(state.video_error or "video model not loaded")


def get_token_families(state: StateDep) -> dict[str, LoadedTokenFamily]:
    """The loaded token families of chapter §3.4 by name (maybe none), once the image model is loaded, else 503."""
    if state.model is None:
        raise not_loaded(why_not_loaded(state))
    return state.token_families


def token_family(state: AppState, family: str) -> LoadedTokenFamily:
    """One loaded token family, or 503 with why it is not loaded."""
    if family in state.token_families:
        return state.token_families[family]
    raise not_loaded(state.token_errors.get(family) or f"the {family} model is not loaded")


def family_model(state: AppState, family: str) -> LoadedModel | LoadedTokenFamily:
    """What draws a request of `family`: the image model (diffusion), else the loaded token family; 503 with why."""
    return get_model(state) if family == DIFFUSION else token_family(state, family)


def codebook_size(state: AppState, family: str) -> int | None:
    """top_k's served limit for `family`: its loaded codebook's size; None for diffusion or a family not loaded."""
    loaded = state.token_families.get(family)
    return loaded.codebook_size if loaded is not None else None


def get_progress_board(state: StateDep) -> ProgressBoard:
    """The jobs whose clients may ask how far they are, and stop them."""
    return state.progress


def get_client(request: Request) -> str:
    """Whose turn a request counts against in the fair queue: its X-Client-Id header, else its address."""
    return client_key(request.headers, request.client.host if request.client else None)


ModelDep = Annotated[LoadedModel, Depends(get_model)]
SamplingServiceDep = Annotated[SamplingService, Depends(get_sampling_service)]
VideoDep = Annotated[LoadedVideo, Depends(get_video)]
TokenFamiliesDep = Annotated[dict[str, LoadedTokenFamily], Depends(get_token_families)]
ClientDep = Annotated[str, Depends(get_client)]
ProgressBoardDep = Annotated[ProgressBoard, Depends(get_progress_board)]

# A route needing one of them runs the networks, or reaches into a job that runs them (its previews, its cancel).
NETWORK_DEPENDENCIES = (get_model, get_video, get_token_families, get_sampling_service, get_progress_board)


def network_routes(routers: Iterable[tuple[APIRouter, str]]) -> list[tuple[str, APIRoute]]:
    """(path, route) of every route that runs the networks, read from its dependencies: the API key guards them."""

    def needs(dependant) -> bool:
        return dependant.call in NETWORK_DEPENDENCIES or any(needs(d) for d in dependant.dependencies)

    return [(prefix + route.path, route) for router, prefix in routers for route in router.routes
            if isinstance(route, APIRoute) and needs(route.dependant)]
