"""AUTOMATIC1111's web UI API under /sdapi/v1: txt2img translated onto /api/v1/generate's job (the same parameters,
sampling service and PNGs), progress and interrupt of the caller's own jobs, png-info, and the read-only lists
clients query when they connect."""

import time
from typing import Annotated

from fastapi import APIRouter, Query

from app import __version__
from app.diffusion.samplers import SamplingCancelled
from app.pipelines.image import WEIGHT_FILES
from app.service.imaging import (
    PARAMETERS_KEY,
    SAMPLER_NAMES,
    format_parameters,
    from_base64,
    parse_parameters,
    read_png_text,
    to_base64,
)
from app.service.models import MODEL_NAME, LoadedModel
from app.service.previews import x0_hat_png
from app.web import schemas
from app.web.deps import ClientDep, ModelDep, ProgressBoardDep, SamplingServiceDep, SettingsDep, StateDep
from app.web.errors import REFUSALS, TOO_LARGE, answered_as, located_errors, unprocessable
from app.web.routes.generation import images_of, parameters, png_parameters, settings_of

router = APIRouter(prefix="/sdapi/v1", tags=["AUTOMATIC1111 web UI API"])

REFUSED = answered_as(schemas.A1111Error, {**REFUSALS, **TOO_LARGE})
DATA_URL_PREFIX = "base64,"


def _title(model: LoadedModel) -> str:
    """The model as A1111 titles a checkpoint: name [hash]."""
    return f"{MODEL_NAME} [{model.model_id}]"


def _info(req: schemas.Txt2ImgRequest, result: schemas.GenerateResult | None, params: schemas.GenerateParameters,
          model: LoadedModel, infotexts: list[str], interrupted: bool = False) -> str:
    """txt2img's `info`: the seeds used, each image's infotext; no images once interrupted."""
    side = model.pipeline.resolution
    return schemas.Txt2ImgInfo.of(
        req, seeds=[image.seed for image in result.images] if result else [], seed=params.seed, side=side,
        sampler_name=SAMPLER_NAMES[params.sampler], cfg_scale=params.guidance_scale, steps=params.steps,
        model_name=MODEL_NAME, model_hash=model.model_id, infotexts=infotexts, interrupted=interrupted,
        version=__version__).model_dump_json()


@router.post("/txt2img", responses={**unprocessable(schemas.Txt2ImgRequest), **REFUSED},
             summary="Text to image in AUTOMATIC1111's words (webuiapi, Open WebUI, SillyTavern)")
async def txt2img(req: schemas.Txt2ImgRequest, settings: SettingsDep, model: ModelDep, service: SamplingServiceDep,
                  client: ClientDep, board: ProgressBoardDep) -> schemas.Txt2ImgResponse:
    """The job of POST /api/v1/generate: cfg_scale is guidance_scale, the n_iter batches one batch of
    batch_size x n_iter images (image i of seed + i); the caller may follow it on GET /sdapi/v1/progress and stop it
    with POST /sdapi/v1/interrupt, and is then answered without images."""
    if errors := req.limit_errors(settings.max_steps, settings.max_batch, model.pipeline.resolution):
        raise located_errors(errors, "body")
    admitted = time.perf_counter()
    params = parameters(req.generate_request())
    with board.track(client, lambda on_step: service.submit(settings_of(params), on_step, client),
                     lambda step: x0_hat_png(model.pipeline, step)) as tracked:
        try:
            result = await images_of(tracked.job, params, model, admitted)
        except SamplingCancelled:
            if not tracked.interrupted:
                raise
            return schemas.Txt2ImgResponse(images=[], parameters=req.model_dump(),
                                           info=_info(req, None, params, model, [], interrupted=True))
    side = model.pipeline.resolution
    infotexts = [format_parameters(png_parameters(params, image.seed, side, side, model.model_id))
                 for image in result.images]
    images = [image.png_base64 for image in result.images] if req.send_images else []
    return schemas.Txt2ImgResponse(images=images, parameters=req.model_dump(),
                                   info=_info(req, result, params, model, infotexts))


@router.get("/progress", responses={**unprocessable(schemas.ProgressQuery)},
            summary="How far the caller's job is, with its x̂0 preview")
def progress(q: Annotated[schemas.ProgressQuery, Query()], client: ClientDep,
             board: ProgressBoardDep) -> schemas.ProgressResponse:
    """The caller's job only (its client key: X-Client-Id, else its address); all zeros when it has none."""
    now = board.progress(client, want_preview=not q.skip_current_image)
    preview = to_base64(now.preview) if now.preview is not None and not q.skip_current_image else None
    textinfo = ("sampling" if now.running else "waiting in the queue") if now.jobs else None
    state = schemas.ProgressState(interrupted=now.interrupted, job="txt2img" if now.jobs else "", job_count=now.jobs,
                                  sampling_step=now.steps_done, sampling_steps=now.steps_total)
    return schemas.ProgressResponse(progress=now.fraction, eta_relative=now.eta_s, state=state,
                                    current_image=preview, textinfo=textinfo)


@router.post("/interrupt", summary="Stop the caller's jobs (running or waiting)")
def interrupt(client: ClientDep, board: ProgressBoardDep) -> schemas.Interrupted:
    """Their txt2img requests are answered at once, without images; no other client's job is touched."""
    return schemas.Interrupted(interrupted=board.interrupt(client))


@router.post("/png-info", responses={**unprocessable(schemas.PngInfoRequest), **REFUSED},
             summary="Read a PNG's generation parameters back, as A1111 reads them")
def png_info(req: schemas.PngInfoRequest) -> schemas.PngInfoResponse:
    """Only the PNG's text chunks are read, never its pixels."""
    try:
        chunks = read_png_text(from_base64(req.image.rpartition(DATA_URL_PREFIX)[2].strip()))
    except ValueError as err:
        raise located_errors([{"type": schemas.IMAGE_INVALID.type, "loc": ("image",), "input": req.image[:64],
                               "msg": f"{schemas.IMAGE_INVALID.text}: {err}"}], "body") from None
    text = chunks.pop(PARAMETERS_KEY, "")
    return schemas.PngInfoResponse(info=text, items=chunks, parameters=parse_parameters(text) if text else {})


@router.get("/sd-models", summary="The one model (an empty list before it is loaded)")
def sd_models(state: StateDep) -> list[schemas.SdModel]:
    if state.model is None:
        return []
    return [schemas.SdModel(title=_title(state.model), model_name=MODEL_NAME, hash=state.model.model_id,
                            filename=WEIGHT_FILES["dit"])]


@router.get("/samplers", summary="The samplers, by A1111's names, with their aliases")
def samplers() -> list[schemas.SamplerItem]:
    return [schemas.SamplerItem(name=name, aliases=list(schemas.SAMPLER_ALIASES[name]))
            for name in SAMPLER_NAMES.values()]


@router.get("/schedulers", summary="The one schedule: the model's own")
def schedulers() -> list[schemas.SchedulerItem]:
    return [schemas.SchedulerItem(name="automatic", label="Automatic")]


@router.get("/options", summary="The options clients read when they connect (read-only)")
def options(state: StateDep) -> schemas.A1111Options:
    model = state.model
    return schemas.A1111Options(sd_model_checkpoint=_title(model) if model else None,
                                sd_checkpoint_hash=model.model_id if model else None)
