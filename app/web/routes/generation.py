"""Text-to-image over HTTP: POST /generate runs the chosen family's generator in the sampling service (the image
model for diffusion, a token family of §3.4 otherwise), answers PNGs."""

import time
from dataclasses import fields

from fastapi import APIRouter

from app.pipelines.image import GenerationResult, GenerationSettings
from app.pipelines.tokens import TokenSettings
from app.service.imaging import encode_png, to_base64
from app.service.jobs import Job, StepCallback, random_seed
from app.service.models import MODEL_NAME, LoadedModel
from app.service.sampling import SamplingService
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
from app.web.errors import REFUSALS, TOO_LARGE, located_errors, unprocessable
from app.web.schemas.families import DIFFUSION, as_run
from app.world.prompts import parse_prompt

router = APIRouter(tags=["generation"])
Served = LoadedModel | LoadedTokenFamily  # what draws a request: its generator, model_id and device
REFUSED = {
    **REFUSALS,
    503: {"model": schemas.Refused, "description": "No model loaded, or not the requested family's (the detail says "
                                                   "which file is missing), the job ran past the time limit, or the "
                                                   "server is shutting down; see `Retry-After`"},
}


def png_parameters(p: schemas.GenerateParameters, seed: int, width: int, height: int, model_id: str) -> dict:
    """What the PNG's `parameters` chunk records (A1111 order): the family (unless diffusion) and its own knobs;
    options at their neutral value are left out."""
    if p.family == DIFFUSION:
        knobs = {"steps": p.steps, "sampler": p.sampler, "guidance_scale": p.guidance_scale,
                 "guidance_rescale": p.guidance_rescale or None,
                 "guidance_method": p.guidance_method if p.guidance_method != "cfg" else None,
                 "eta": p.eta if p.sampler == "ddim" else None}
    else:
        knobs = {"family": p.family, "rounds": p.rounds, "temperature": p.temperature, "top_k": p.top_k or None,
                 "guidance_scale": p.guidance_scale}
    return {"prompt": p.prompt, "negative_prompt": p.negative_prompt, **knobs, "seed": seed,
            "size": f"{width}x{height}", "model_hash": model_id, "model": MODEL_NAME}


def _images(result: GenerationResult, p: schemas.GenerateParameters, model_id: str) -> list[schemas.GeneratedImage]:
    height, width = result.images.shape[1:3]
    return [schemas.GeneratedImage(png_base64=to_base64(encode_png(image, png_parameters(p, seed, width, height,
                                                                                        model_id))),
                                   seed=seed, width=width, height=height)
            for image, seed in zip(result.images, result.seeds)]


def build_result(result: GenerationResult, job: Job, params: schemas.GenerateParameters, model: Served,
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
        parameters=params, timings=timings, model_id=model.model_id, device=model.device,
    )


@router.post("/generate", responses={**unprocessable(schemas.GenerateRequest), **REFUSED, **TOO_LARGE},
             summary="Text to image with the trained latent diffusion model (guided by EQ MM3.4), or with the "
                     "autoregressive or masked token model (EQ MM3.5)")
async def generate(req: schemas.GenerateRequest, settings: SettingsDep, state: StateDep, model: ModelDep,
                   service: SamplingServiceDep, client: ClientDep) -> schemas.GenerateResult:
    """Sample batch_size images in a worker thread; the same parameters and seed give the same PNG bytes. (`model`:
    the 503 while the image model, which every family loads after, is not there.)"""
    if errors := req.limit_errors(settings.max_steps, settings.max_batch, codebook_size(state, req.family)):
        raise located_errors(errors, "body")
    return await generate_images(parameters(req), family_model(state, req.family), service, client)


async def generate_images(params: schemas.GenerateParameters, model: Served, service: SamplingService,
                          client: str) -> schemas.GenerateResult:
    """Run one text-to-image job in the sampling service (its queue, fairness and limits) and build the answer:
    what POST /generate and every dialect's generation do."""
    admitted = time.perf_counter()
    return await images_of(submit(params, model, service, client), params, model, admitted)


async def images_of(job: Job, params: schemas.GenerateParameters, model: Served,
                    admitted: float) -> schemas.GenerateResult:
    """Wait for a submitted text-to-image job and build its answer."""
    [result] = await job.result()
    return build_result(result, job, params, model, admitted)


def submit(params: schemas.GenerateParameters, model: Served, service: SamplingService, client: str,
           on_step: StepCallback | None = None) -> Job:
    """Queue the request's job with its family's generator (QueueFull, or PromptNotLearned from the family's
    check)."""
    return service.submit(settings_of(params), on_step, client, generator=model.generator)


def settings_of(params: schemas.GenerateParameters) -> GenerationSettings | TokenSettings:
    """The generator's settings of a request as it is run: its family's (the knobs it does not take left out)."""
    kind = GenerationSettings if params.family == DIFFUSION else TokenSettings
    return kind(**{f.name: getattr(params, f.name) for f in fields(kind) if getattr(params, f.name, None) is not None})


def parameters(req: schemas.GenerateRequest) -> schemas.GenerateParameters:
    """The request as its family runs it (app/web/schemas/families.py), with its seed drawn when none was given (every
    image seed of the batch stays in range)."""
    seed = req.seed if req.seed is not None else random_seed(req.batch_size)
    given = req.model_dump(include=set(schemas.GenerateRequest.model_fields) - {"seed"})
    return schemas.GenerateParameters(**as_run(given, req.model_fields_set), seed=seed)
