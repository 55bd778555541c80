"""The service's refusals as HTTP, written once: status, detail and Retry-After for each exception.

A full queue is 429; a job past its time limit, or refused or cancelled because the server is shutting down, is
503. REST routes get them through the exception handlers installed here; streams, whose status line is already
sent, put the same status and detail into their `error` event (see refusal()). Every answer takes the error shape
of the API its path belongs to (app/web/dialects/shapes.py): ours, OpenAI's or AUTOMATIC1111's.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.diffusion.samplers import SamplingCancelled
from app.pipelines.protocol import PromptNotLearned
from app.service.jobs import JobTimeout, QueueFull
from app.service.sampling import SamplingService
from app.web import schemas
from app.web.dialects.shapes import OURS, shape_for
from app.web.middleware import MAX_BODY_BYTES, route_path
from app.web.routes.pages import not_found_page, wants_page
from app.web.state import state_of

NOT_LOADED_RETRY_AFTER_S = 30
DRAINING_RETRY_AFTER_S = 5  # another replica can take it at once; a lone server is back after its restart

CROSS_FIELD_RULES = "x-cross-field-rules"  # on a 422 response: error type -> rule, for the rules the schema can't state
REFUSALS = {
    429: {"model": schemas.Refused, "description": "The sampler's queue is full; retry after `Retry-After` seconds"},
    503: {"model": schemas.Refused, "description": "No model loaded, the job ran past the time limit, or the server is "
                                                   "shutting down; see `Retry-After`"},
}
TOO_LARGE = {413: {"model": schemas.Refused,
                   "description": f"The request body is over the server's limit of {MAX_BODY_BYTES} bytes"}}


BAD_FIELDS = "A bad parameter: each error names its field in `loc` and its rule in `type` and `msg`"


def unprocessable(*models: type[schemas.Strict], status: int = 422, body: type = schemas.Unprocessable,
                  description: str = BAD_FIELDS) -> dict:
    """The 422 response of an operation that takes these request models: the error shape, and the rules that a
    request the schema admits may still break, by error type (so a client, or a fuzzer, knows such a 422 is in the
    contract). A dialect states its own status and body for bad fields (OpenAI's: a 400)."""
    rules = {rule.type: rule.text for model in models for rule in model.RULES}
    if rules:
        description += ". Besides the constraints of the schema, these rules (by error type) hold: " + "; ".join(
            f"`{kind}`: {text}" for kind, text in rules.items())
    return {status: {"model": body, "description": description, CROSS_FIELD_RULES: rules}}


def answered_as(body: type, responses: dict) -> dict:
    """The same responses with a dialect's error body."""
    return {status: {**response, "model": body} for status, response in responses.items()}


def refusal(err: Exception, sampler: SamplingService | None) -> HTTPException | None:
    """The HTTP answer to one of the service's exceptions; None for anything else (a bug: a 500)."""
    if isinstance(err, QueueFull):
        return HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after_s)})
    if isinstance(err, JobTimeout):
        retry = sampler.retry_after_s() if sampler is not None else NOT_LOADED_RETRY_AFTER_S
        return HTTPException(503, str(err), headers={"Retry-After": str(retry)})
    if isinstance(err, SamplingCancelled):  # only shutdown cancels a job whose client is still there
        return HTTPException(503, str(err), headers={"Retry-After": str(DRAINING_RETRY_AFTER_S)})
    if isinstance(err, PromptNotLearned):
        return HTTPException(422, str(err))
    return None


def not_learned_error(err: PromptNotLearned, where: str) -> dict:
    """A prompt the loaded weights cannot read, as one 422 error item."""
    return {"type": "prompt_not_learned", "loc": [where, err.field], "msg": str(err), "input": err.text,
            "ctx": {"words": err.words}}


def not_loaded(why: str) -> HTTPException:
    return HTTPException(503, detail=why, headers={"Retry-After": str(NOT_LOADED_RETRY_AFTER_S)})


def located_errors(errors: list[dict], where: str) -> RequestValidationError:
    """Errors found after the schema's own validation (the server's caps), located in the body or the query."""
    return RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in errors])


def _json_safe(value):
    """NaN and infinities (which a JSON body may carry) as strings, so a 422 can echo them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def error_details(exc: RequestValidationError) -> list[dict]:
    """A validation error's items as a 422's `detail` lists them, JSON-safe."""
    return _json_safe(jsonable_encoder(exc.errors()))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (in the path's error shape), except that a non-finite number in the input does not turn it into
    a 500."""
    return shape_for(route_path(request.scope)).invalid(error_details(exc))


BODY_UNREADABLE = "There was an error parsing the body"  # FastAPI's 400 for a body it cannot decode


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own answers, except that a body that is not UTF-8 JSON is a 422 like any other bad JSON, and a
    browser asking for a page that is not there gets a page that says so."""
    shape = shape_for(route_path(request.scope))
    if exc.status_code == 400 and exc.detail == BODY_UNREADABLE:
        error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error",
                 "ctx": {"error": "the body is not UTF-8 JSON"}}
        return shape.invalid([error])
    if shape is not OURS:
        return shape.refusal(exc.status_code, str(exc.detail), exc.headers)
    if exc.status_code == 404 and wants_page(request):
        return not_found_page(request)
    return await http_exception_handler(request, exc)


async def _not_learned(request: Request, exc: PromptNotLearned) -> JSONResponse:
    where = "query" if request.method == "GET" else "body"
    return shape_for(route_path(request.scope)).invalid([not_learned_error(exc, where)])


async def _service_refusal(request: Request, exc: Exception) -> JSONResponse:
    answer = refusal(exc, state_of(request.app).sampler)
    return shape_for(route_path(request.scope)).refusal(answer.status_code, answer.detail, answer.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for service_error in (QueueFull, JobTimeout, SamplingCancelled):
        app.add_exception_handler(service_error, _service_refusal)
    app.add_exception_handler(PromptNotLearned, _not_learned)
