"""Liveness, readiness and metrics for operators (outside /api/v1)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.web.state import state_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready: starting, shutting down, or the model failed to "
                                                      "load; `reason` says which; see `Retry-After`"}},
            description="Ready once the model is loaded. `compiled` says how far the compiled networks are "
                        "(DIFFUSION_LAB_COMPILE): sampling runs eagerly until each of their shapes is warm.")
def readyz(request: Request) -> JSONResponse:
    state = state_of(request.app)
    body = {"ready": state.ready, "model_loaded": state.model is not None,
            "compiled": state.compiled.as_dict() if state.compiled is not None else None}
    if not state.ready:
        if state.draining:
            body["reason"] = "shutting down: finishing the jobs that run, taking no new ones"
        else:
            body["reason"] = state.model_error or "starting: the model is still loading"
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(body)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    """Requests and latency per route template, the sampler's queue, sampling seconds, images generated."""
    state = state_of(request.app)
    return Response(state.metrics.render(state), media_type=CONTENT_TYPE_LATEST)
