"""Liveness, readiness and metrics for operators (outside /api/v1)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    ready = bool(getattr(state, "ready", False))
    body = {"ready": ready, "model_loaded": getattr(state, "model", None) is not None}
    if not ready:
        if getattr(state, "draining", False):
            body["reason"] = "shutting down: finishing the jobs that run, taking no new ones"
        else:
            body["reason"] = getattr(state, "model_error", None) or "starting: the model is still loading"
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(body)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    """Requests and latency per route template, the sampler's queue, sampling seconds, images generated."""
    return Response(request.app.state.metrics.render(request.app.state), media_type=CONTENT_TYPE_LATEST)
