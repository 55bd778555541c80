"""The OpenAI Images API: POST /v1/images/generations and GET /v1/models, translated onto /api/v1/generate's job
(the same parameters, the same sampling service, the same PNGs)."""

import time

from fastapi import APIRouter
from fastapi.responses import Response

from app.service.models import MODEL_NAME, written_at
from app.web import schemas
from app.web.deps import ClientDep, ModelDep, SamplingServiceDep, SettingsDep, StateDep
from app.web.dialects.openai_stream import EVENT_NAMES, size_of, stream_images, usage_of
from app.web.errors import REFUSALS, TOO_LARGE, answered_as, located_errors, unprocessable
from app.web.routes.generation import generate_images, parameters

router = APIRouter(prefix="/v1", tags=["OpenAI Images API"])

ERRORS = {
    **unprocessable(schemas.ImagesRequest, status=400, body=schemas.OpenAIErrorBody,
                    description="A bad parameter: `param` names the field, `code` the rule, `message` both"),
    **answered_as(schemas.OpenAIErrorBody, {**REFUSALS, **TOO_LARGE}),
    "4XX": {"model": schemas.OpenAIErrorBody, "description": "401 without the API key the operator set (as "
                                                             "`Authorization: Bearer <key>`), 404, 405"},
}
GENERATIONS_RESPONSES = {
    200: {"description": "The images (application/json), or with `stream: true` Server-Sent Events: "
                         "`image_generation.partial_image` (PartialImageEvent) for each partial image, then one "
                         "`image_generation.completed` (CompletedEvent) per image, or `error` (ErrorEvent)",
          "content": {"text/event-stream": {"itemSchema": {
              "type": "object", "required": ["event", "data"],
              "properties": {"event": {"type": "string", "enum": list(EVENT_NAMES)},
                             "data": {"type": "string", "contentMediaType": "application/json"}}}}}},
    **ERRORS,
}


@router.post("/images/generations", response_model=schemas.ImagesResponse, responses=GENERATIONS_RESPONSES,
             summary="Text to image in the OpenAI Images API's words (the official SDKs, Open WebUI, LiteLLM)")
async def generations(req: schemas.ImagesRequest, settings: SettingsDep, model: ModelDep,
                      service: SamplingServiceDep, client: ClientDep) -> Response:
    """The job of POST /api/v1/generate: `n` is its batch_size, and seed, negative_prompt, steps, guidance_scale and
    sampler may come as extra body fields. Every refusal is the official error object."""
    if errors := req.limit_errors(settings.max_steps, settings.max_batch, model.pipeline.resolution):
        raise located_errors(errors, "body")
    params = parameters(req.generate_request())
    if req.stream:
        return stream_images(params, req.partial_images or 0, model, service, client)
    result = await generate_images(params, model, service, client)
    images = [schemas.OpenAIImage(b64_json=image.png_base64, revised_prompt=result.prompt_canonical)
              for image in result.images]
    return schemas.ImagesResponse(created=int(time.time()), data=images, size=size_of(result),
                                  usage=usage_of(result, model))


@router.get("/models", responses=ERRORS, summary="The models this server serves, in the OpenAI API's words")
def models(state: StateDep, settings: SettingsDep) -> schemas.ModelList:
    """The one model once it is loaded (an empty list before)."""
    if state.model is None:
        return schemas.ModelList(data=[])
    return schemas.ModelList(data=[schemas.ModelObject(id=MODEL_NAME, created=written_at(settings.model_dir),
                                                       owned_by=MODEL_NAME)])
