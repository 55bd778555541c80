"""Liveness and readiness for operators (outside /api/v1)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
        body["reason"] = getattr(state, "model_error", None) or "starting: the model is still loading"
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(body)
