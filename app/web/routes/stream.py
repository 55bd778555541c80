"""Live sampling: GET /generate/stream answers Server-Sent Events, one per step (a denoising step, a row of an
autoregressive grid, a masked round), then the result (app/web/streaming.py runs the stream; this module says what
an image run's events hold, for each family)."""

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.pipelines.image import GenerationResult, Step
from app.pipelines.token_sampling import TokenStep
from app.service.imaging import to_base64
from app.service.models import LoadedModel
from app.service.previews import (
    LATENT_PREVIEW,
    TOKEN_PREVIEW,
    view_step,
    view_token_step,
)
from app.service.token_models import LoadedTokenFamily
from app.web import schemas
from app.web.deps import (
    ClientDep,
    ModelDep,
    SamplingServiceDep,
    SettingsDep,
    StateDep,
    codebook_size,
    family_model,
)
from app.web.errors import error_details, located_errors, unprocessable
from app.web.routes.generation import (
    REFUSED,
    Served,
    build_result,
    parameters,
    settings_of,
    submit,
)
from app.web.schemas.families import DIFFUSION
from app.web.state import AppState
from app.web.streaming import LiveRun
from app.world.prompts import parse_prompt

router = APIRouter(tags=["generation"])

STREAM_RESPONSES = {
    200: {"description": "text/event-stream: `start` (StreamStart), one `step` per step (StreamStep per denoising "
                         "step for diffusion; TokenStreamStep per grid row for autoregressive, per round for masked), "
                         "then `result` (StreamResult, the POST /generate payload) or `error` (StreamError)"},
    **unprocessable(schemas.GenerateStreamQuery),
    **REFUSED,
}


def _check(q: schemas.GenerateStreamQuery, max_steps: int, max_batch: int, state: AppState) -> schemas.GenerateCheck:
    """The server's caps on top of the query model's own validation; 422 naming the field."""
    if errors := q.limit_errors(max_steps, max_batch, codebook_size(state, q.family)):
        raise located_errors(errors, "query")
    return schemas.GenerateCheck(valid=True, prompt_canonical=parse_prompt(q.prompt).canonical,
                                 negative_prompt_canonical=parse_prompt(q.negative_prompt).canonical)


def _step_event(model: LoadedModel, previews: bool):
    def event(run_id: str, step: Step, elapsed_s: float, remaining_s: float) -> schemas.StreamStep:
        view = view_step(model.pipeline, step, previews)
        images = None
        if view.x_t_png is not None:
            images = schemas.StepPreviews(x_t=to_base64(view.x_t_png), x0_hat=to_base64(view.x0_hat_png),
                                          eps_hat=to_base64(view.eps_hat_png))
        return schemas.StreamStep(id=run_id, **view.position.as_dict(), elapsed_s=elapsed_s,
                                  remaining_s=remaining_s, previews=images)

    return event


def _token_step_event(model: LoadedTokenFamily, previews: bool):
    def event(run_id: str, step: TokenStep, elapsed_s: float, remaining_s: float) -> schemas.TokenStreamStep:
        view = view_token_step(model.generator, step, previews)
        return schemas.TokenStreamStep(
            id=run_id, family=model.generator.family, index=view.index, total=view.total, elapsed_s=elapsed_s,
            remaining_s=remaining_s, forwards=view.forwards, tokens_drawn=view.tokens_drawn,
            tokens_new=len(view.new_positions), grid=view.grid, new_positions=view.new_positions,
            preview=to_base64(view.png) if view.png is not None else None)

    return event


def _start(run: LiveRun, q: schemas.GenerateStreamQuery, params: schemas.GenerateParameters,
           check: schemas.GenerateCheck, model: Served) -> schemas.StreamStart:
    common = {"id": run.id, "family": params.family, "parameters": params, "total_steps": run.job.total_steps,
              "prompt_canonical": check.prompt_canonical, "negative_prompt_canonical": check.negative_prompt_canonical,
              "previews": q.previews, "preview_seed": params.seed, "resolution": model.generator.resolution}
    if isinstance(model, LoadedModel):
        c, s = model.pipeline.dit.config.latent_channels, model.pipeline.dit.config.latent_size
        return schemas.StreamStart(**common, latent_shape=[c, s, s], latent_preview=LATENT_PREVIEW)
    tokens = model.generator
    grid = schemas.TokenGrid(side=tokens.config.grid, tokens=tokens.tokens, codebook_size=model.codebook_size,
                             downsample_factor=tokens.tokenizer.config.downsample_factor,
                             sequential_forwards=tokens.sequential_forwards(settings_of(params)),
                             preview=TOKEN_PREVIEW)
    return schemas.StreamStart(**common, token_grid=grid)


async def admit(q: Annotated[schemas.GenerateStreamQuery, Query()], settings: SettingsDep, state: StateDep,
                model: ModelDep, service: SamplingServiceDep,
                client: ClientDep) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """Validate and queue the job before any byte of the stream is sent; cancel it when the response ends."""
    check = _check(q, settings.max_steps, settings.max_batch, state)
    params = parameters(q)
    served = family_model(state, q.family)  # model, or a token family
    step_event = _step_event(served, q.previews) if q.family == DIFFUSION else _token_step_event(served, q.previews)
    run = LiveRun(lambda on_step: submit(params, served, service, client, on_step), step_event, service)

    async def result(results: list[GenerationResult]) -> schemas.StreamResult:
        return schemas.StreamResult(id=run.id, **dict(build_result(results[0], run.job, params, served, run.admitted)))

    try:
        yield run.events(_start(run, q, params, check, served), result)
    finally:  # the stream ended, or the client closed it, or it never started
        run.job.cancel()


@router.get("/generate/stream", response_class=EventSourceResponse, responses=STREAM_RESPONSES,
            summary="Text to image, live: Server-Sent Events with previews of x_t and x̂0 at every step (diffusion), "
                    "or of the token grid drawn so far (autoregressive, masked)")
async def generate_stream(events: Annotated[AsyncIterator[ServerSentEvent], Depends(admit)]
                          ) -> AsyncIterable[ServerSentEvent]:
    """The query of POST /generate's body (plus `previews`); events carry the request's id."""
    async with aclosing(events):  # closed at once when the client leaves, not when collected: it cancels the job
        async for event in events:
            yield event


class _RefusalIsTheAnswer(APIRoute):
    """A route that answers a request it would refuse with 200 {valid: false, errors}, not a 422: a page that checks
    the form as the reader types then never has a failed request logged in the browser's console."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse(schemas.GenerateCheck(valid=False, errors=error_details(exc)).model_dump())

        return answer


def validate(q: Annotated[schemas.GenerateStreamQuery, Query()], settings: SettingsDep,
             state: StateDep) -> schemas.GenerateCheck:
    """Always 200: valid with the canonical captions when the stream would accept these parameters, else the
    errors its 422 would list (`loc` names the field)."""
    return _check(q, settings.max_steps, settings.max_batch, state)


router.add_api_route(
    "/generate/validate", validate, methods=["GET"], route_class_override=_RefusalIsTheAnswer,
    summary="Check a generation request without running it: valid, or the stream's errors, as a 200",
    responses={"4XX": {"description": "401 without the API key the operator set; never a 422 (a refused request "
                                      "is a 200 with `valid: false`)"}},
)
