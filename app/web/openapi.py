"""The OpenAPI document with the limits this server enforces: each field marked with a served limit gets the value
the settings (steps, batch size) or the loaded video model (frames) set, as its maximum."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from app.web.schemas import MAX_VIDEO_FRAMES
from app.web.schemas.common import SERVED_LIMIT
from app.web.state import AppState, state_of


def served_limits(state: AppState) -> dict[str, int]:
    video = state.video
    return {"max_steps": state.settings.max_steps, "max_batch": state.settings.max_batch,
            "max_frames": video.max_frames if video is not None else MAX_VIDEO_FRAMES}


def state_limits(node, limits: dict[str, int]) -> None:
    """Set `maximum` on every schema in node that names a served limit (in place, so again is the same)."""
    if isinstance(node, dict):
        if node.get(SERVED_LIMIT) in limits:
            node["maximum"] = limits[node[SERVED_LIMIT]]
        for value in node.values():
            state_limits(value, limits)
    elif isinstance(node, list):
        for value in node:
            state_limits(value, limits)


def serve_limits_in_openapi(app: FastAPI) -> None:
    """app.openapi() states the served limits as they are when the document is asked for (after the lifespan
    loaded the models, for a served app)."""
    generate: Callable[[], dict] = app.openapi

    def openapi() -> dict:
        document = generate()
        state_limits(document, served_limits(state_of(app)))
        return document

    app.openapi = openapi
