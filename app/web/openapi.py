"""The OpenAPI document with the limits this server enforces: each field marked with a served limit gets the value
the settings (steps, batch size), the loaded video model (frames) or the loaded token families (top_k: their codebook)
set, as its maximum. A field whose default is
above that is stated as required (this server refuses a request that leaves it out). Error bodies are JSON on
every operation, the streams' included (FastAPI writes them under the route's own media type)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from fastapi import FastAPI

from app.web.schemas import MAX_VIDEO_FRAMES
from app.web.schemas.common import SERVED_LIMIT
from app.web.schemas.families import MAX_TOP_K
from app.web.state import AppState, state_of

JSON = "application/json"


def served_limits(state: AppState) -> dict[str, int]:
    video, codebooks = state.video, [family.codebook_size for family in state.token_families.values()]
    return {"max_steps": state.settings.max_steps, "max_batch": state.settings.max_batch,
            "max_frames": video.max_frames if video is not None else MAX_VIDEO_FRAMES,
            "codebook_size": min(codebooks, default=MAX_TOP_K)}


def _default_over_limit(schema, limits: dict[str, int]) -> bool:
    """Whether a schema's default is above the served limit it names (the default would be refused)."""
    return (isinstance(schema, dict) and schema.get(SERVED_LIMIT) in limits
            and schema.get("default", 0) > limits[schema[SERVED_LIMIT]])


def state_limits(node, limits: dict[str, int]) -> None:
    """Set `maximum` on every schema in node that names a served limit, and state as required every property or
    query parameter whose default is above it (in place)."""
    if isinstance(node, dict):
        if node.get(SERVED_LIMIT) in limits:
            node["maximum"] = limits[node[SERVED_LIMIT]]
        for name, schema in node.get("properties", {}).items():  # an object schema: a request body's
            if _default_over_limit(schema, limits):
                del schema["default"]
                node["required"] = sorted({*node.get("required", []), name})
        if node.get("in") == "query" and _default_over_limit(node.get("schema"), limits):
            del node["schema"]["default"]
            node["required"] = True
        for value in node.values():
            state_limits(value, limits)
    elif isinstance(node, list):
        for value in node:
            state_limits(value, limits)


def errors_as_json(document: dict) -> None:
    """Every 4xx and 5xx response's body under application/json, where FastAPI put it under a stream's media type."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and content and JSON not in content:
                    response["content"] = {JSON: next(iter(content.values()))}


def serve_limits_in_openapi(app: FastAPI) -> None:
    """app.openapi() states the served limits as they are when the document is asked for (after the lifespan
    loaded the models, for a served app), on a copy of the document FastAPI generated once."""
    generate: Callable[[], dict] = app.openapi

    def openapi() -> dict:
        document = copy.deepcopy(generate())
        state_limits(document, served_limits(state_of(app)))
        errors_as_json(document)
        return document

    app.openapi = openapi
