"""Text-to-image over HTTP: POST /generate runs the trained pipeline in the sampling service, answers PNGs."""

import time

from fastapi import APIRouter

from app.pipelines.image import GenerationResult, GenerationSettings
from app.service.imaging import encode_png, to_base64
from app.service.jobs import Job, random_seed
from app.service.models import MODEL_NAME, LoadedModel
from app.service.sampling import SamplingService
from app.web import schemas
from app.web.deps import ClientDep, ModelDep, SamplingServiceDep, SettingsDep
from app.web.errors import REFUSALS, TOO_LARGE, located_errors, unprocessable
from app.world.prompts import parse_prompt

router = APIRouter(tags=["generation"])


def png_parameters(p: schemas.GenerateParameters, seed: int, width: int, height: int, model_id: str) -> dict:
    """What the PNG's `parameters` chunk records (A1111 order); options at their neutral value are left out."""
    return {
        "prompt": p.prompt, "negative_prompt": p.negative_prompt, "steps": p.steps, "sampler": p.sampler,
        "guidance_scale": p.guidance_scale, "guidance_rescale": p.guidance_rescale or None,
        "guidance_method": p.guidance_method if p.guidance_method != "cfg" else None,
        "eta": p.eta if p.sampler == "ddim" else None, "seed": seed, "size": f"{width}x{height}",
        "model_hash": model_id, "model": MODEL_NAME,
    }


def _images(result: GenerationResult, p: schemas.GenerateParameters, model_id: str) -> list[schemas.GeneratedImage]:
    height, width = result.images.shape[1:3]
    return [schemas.GeneratedImage(png_base64=to_base64(encode_png(image, png_parameters(p, seed, width, height,
                                                                                        model_id))),
                                   seed=seed, width=width, height=height)
            for image, seed in zip(result.images, result.seeds)]


def build_result(result: GenerationResult, job: Job, params: schemas.GenerateParameters, model: LoadedModel,
                 admitted: float) -> schemas.GenerateResult:
    """The response of a finished job: PNGs with their parameters, canonical captions and the timings."""
    encode_started = time.perf_counter()
    images = _images(result, params, model.model_id)
    done = time.perf_counter()
    timings = schemas.GenerateTimings(
        queue_s=job.queue_s, sampling_s=result.timings["sampling_s"], decode_s=result.timings["decode_s"],
        encode_s=done - encode_started, total_s=done - admitted,
        network_forwards=int(result.timings["network_forwards"]),
    )
    return schemas.GenerateResult(
        images=images, prompt_canonical=result.prompt_canonical,
        negative_prompt_canonical=parse_prompt(params.negative_prompt).canonical,
        parameters=params, timings=timings, model_id=model.model_id, device=str(model.pipeline.device),
    )


@router.post("/generate", responses={**unprocessable(schemas.GenerateRequest), **REFUSALS, **TOO_LARGE},
             summary="Text to image with the trained latent diffusion model (guided by EQ MM3.4)")
async def generate(req: schemas.GenerateRequest, settings: SettingsDep, model: ModelDep,
                   service: SamplingServiceDep, client: ClientDep) -> schemas.GenerateResult:
    """Sample batch_size images in a worker thread; the same parameters and seed give the same PNG bytes."""
    if errors := req.limit_errors(settings.max_steps, settings.max_batch):
        raise located_errors(errors, "body")
    return await generate_images(parameters(req), model, service, client)


async def generate_images(params: schemas.GenerateParameters, model: LoadedModel, service: SamplingService,
                          client: str) -> schemas.GenerateResult:
    """Run one text-to-image job in the sampling service (its queue, fairness and limits) and build the answer:
    what POST /generate and every dialect's generation do."""
    admitted = time.perf_counter()
    return await images_of(service.submit(settings_of(params), client=client), params, model, admitted)


async def images_of(job: Job, params: schemas.GenerateParameters, model: LoadedModel,
                    admitted: float) -> schemas.GenerateResult:
    """Wait for a submitted text-to-image job and build its answer."""
    [result] = await job.result()
    return build_result(result, job, params, model, admitted)


def settings_of(params: schemas.GenerateParameters) -> GenerationSettings:
    """The pipeline's settings of a request as it is run."""
    return GenerationSettings(**params.model_dump())


def parameters(req: schemas.GenerateRequest) -> schemas.GenerateParameters:
    """The request with its seed drawn when none was given (every image seed of the batch stays in range)."""
    seed = req.seed if req.seed is not None else random_seed(req.batch_size)
    return schemas.GenerateParameters(**req.model_dump(include=set(schemas.GenerateRequest.model_fields) - {"seed"}),
                                      seed=seed)
