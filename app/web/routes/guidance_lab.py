"""Guidance on the real model over HTTP: the scale x seed grid, a live sweep, one step taken apart (EQ MM3.4),
and the latent-vs-pixel forward timed on this server (EQ MM3.3). Sampling goes through the shared, fair queue;
the other torch work (the judge, the timing) runs on the sampler's thread too (app/service/sampling.py says why).
"""

import time
from typing import Annotated

from fastapi import APIRouter, Query

from app.lab import forward_timing
from app.lab import guidance as lab
from app.pipelines.image import GenerationResult, GenerationSettings
from app.pipelines.protocol import Generator
from app.pipelines.tokens import TokenSettings
from app.service.imaging import encode_png, to_base64
from app.service.jobs import Job, StepCallback, random_seed
from app.service.models import read_card
from app.service.sampling import SamplingService
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
from app.web.recorded_timings import scaling_forward
from app.web.routes.generation import REFUSED
from app.web.schemas.families import DIFFUSION
from app.world.prompts import parse_prompt

router = APIRouter(tags=["guidance lab"])
timing_router = APIRouter(tags=["instruments"])  # the live timing, listed with the other instruments


def _png(image) -> str:
    return to_base64(encode_png(image))


def _check_steps(steps: int, max_steps: int) -> None:
    if errors := schemas.steps_limit_error(steps, max_steps):
        raise located_errors(errors, "body")


async def _sample(service: SamplingService, parts: list[GenerationSettings] | list[TokenSettings], client: str,
                  on_step: StepCallback | None = None,
                  generator: Generator | None = None) -> tuple[list[GenerationResult], Job]:
    """Run the parts as one job of the fair queue (its refusals are answered by app/web/errors.py); the image model
    samples them unless `generator` is given."""
    return await service.run_many(parts, on_step, client, generator)


def _timings(results: list[GenerationResult], job: Job, admitted: float) -> schemas.LabTimings:
    first = results[0].timings
    return schemas.LabTimings(queue_s=job.queue_s, sampling_s=first["sampling_s"],
                              total_s=time.perf_counter() - admitted, batch_jobs=job.batch_jobs,
                              network_forwards=int(first["network_forwards"]))


def judged_fields(judged: dict) -> dict:
    """A lab entry of what the judge read as the `judged` and `objects` fields of an answer."""
    objects = judged.get("objects")
    return {"judged": schemas.JudgedAttributes(**{k: v for k, v in judged.items() if k != "objects"}),
            "objects": None if objects is None else [schemas.JudgedAttributes(**o) for o in objects]}


def _grid_image(seed: int, image, judged: dict) -> schemas.GridImage:
    return schemas.GridImage(seed=seed, png_base64=_png(image), **judged_fields(judged))


def _grid_base(req: schemas.GridRequest) -> GenerationSettings | TokenSettings:
    """What every part of the grid shares: the prompts and the family's own knobs."""
    if req.family == DIFFUSION:
        return GenerationSettings(prompt=req.prompt, negative_prompt=req.negative_prompt, steps=req.steps,
                                  sampler=req.sampler, guidance_method=req.guidance_method)
    return TokenSettings(family=req.family, prompt=req.prompt, negative_prompt=req.negative_prompt,
                         temperature=req.temperature, top_k=req.top_k, rounds=req.rounds)


@router.post("/generate/grid", responses={**unprocessable(schemas.GridRequest), **REFUSED, **TOO_LARGE},
             summary="A grid of guidance scales x seeds, with adherence and diversity measured per scale (EQ MM3.4), "
                     "drawn by any family")
async def grid(req: schemas.GridRequest, client: ClientDep, settings: SettingsDep, state: StateDep, model: ModelDep,
               service: SamplingServiceDep) -> schemas.GridResult:
    """Every column is one scale s, every row one seed: the same starting noise along a row, so only s differs."""
    if errors := req.limit_errors(settings.max_steps, codebook_size(state, req.family)):
        raise located_errors(errors, "body")
    served = family_model(state, req.family)
    admitted = time.perf_counter()
    seeds = req.seed_list(req.seed if req.seed is not None else random_seed(lab.MAX_GRID_SEEDS))
    results, job = await _sample(service, lab.grid_settings(_grid_base(req), req.scales, seeds), client,
                                 generator=served.generator)
    columns = await service.run_in_worker(lab.measure_grid, req.prompt, req.scales, seeds, results)  # judge: torch
    diffusion = req.family == DIFFUSION
    return schemas.GridResult(
        prompt_canonical=parse_prompt(req.prompt).canonical,
        negative_prompt_canonical=parse_prompt(req.negative_prompt).canonical, family=req.family,
        seeds=seeds, steps=req.steps if diffusion else None, sampler=req.sampler if diffusion else None,
        columns=[schemas.GridColumn(
            scale=c.scale, adherence=c.adherence, diversity_rms=c.diversity_rms,
            images=[_grid_image(seed, image, judged) for seed, image, judged in zip(c.seeds, c.images, c.judged)])
            for c in columns],
        timings=_timings(results, job, admitted), model_id=served.model_id,
    )


@router.post("/generate/sweep", responses={**unprocessable(schemas.SweepRequest), **REFUSALS, **TOO_LARGE},
             summary="Adherence and diversity against s, measured live on the model card's first prompts (EQ MM3.4)")
async def sweep(req: schemas.SweepRequest, client: ClientDep, settings: SettingsDep, model: ModelDep,
                service: SamplingServiceDep) -> schemas.SweepResult:
    """A few of the card's prompts and seeds at a few scales, judged as the card's guidance_sweep judges them."""
    _check_steps(req.steps, settings.max_steps)
    admitted = time.perf_counter()
    parts, prompts = lab.sweep_settings(req.prompts, req.seeds, req.scales, req.steps, req.sampler, req.category)
    results, job = await _sample(service, parts, client)
    points = await service.run_in_worker(lab.measure_sweep, prompts, req.scales, results)
    return schemas.SweepResult(
        category=req.category, prompts=[p.canonical for p in prompts], seeds=req.seeds, steps=req.steps,
        sampler=req.sampler,
        points=[schemas.SweepPoint(scale=p.scale, adherence=p.adherence, diversity_rms=p.diversity_rms,
                                   images=p.images) for p in points],
        timings=_timings(results, job, admitted), model_id=model.model_id,
    )


@router.post("/generate/guidance",
             responses={**unprocessable(schemas.GuidanceAnatomyRequest), **REFUSALS, **TOO_LARGE},
             summary="EQ MM3.4 made visible: eps(∅), eps(c), their difference and the guided result at one step")
async def guidance(req: schemas.GuidanceAnatomyRequest, client: ClientDep, settings: SettingsDep, model: ModelDep,
                   service: SamplingServiceDep) -> schemas.GuidanceAnatomyResult:
    """The chosen variant's run is taken apart at at_step; the three variants' final images share the seed."""
    _check_steps(req.steps, settings.max_steps)
    admitted = time.perf_counter()
    pipeline = model.pipeline
    base = GenerationSettings(prompt=req.prompt, negative_prompt=req.negative_prompt, seed=req.seed, steps=req.steps,
                              guidance_scale=req.guidance_scale, sampler=req.sampler)
    interval = lab.interval_timesteps(req.interval.start, req.interval.end, pipeline.schedule.T)
    variants = lab.variant_settings(base, req.rescale, interval, req.cfgpp_lambda)
    by_name, first = {}, None
    for group in lab.batches(variants):  # APG and CFG++ sample apart from the CFG family
        chosen = req.variant in group
        capture = lab.StepCapture(pipeline, variants[req.variant], group.index(req.variant), req.step_index()) \
            if chosen else None
        results, job = await _sample(service, [variants[n] for n in group], client, capture)
        by_name |= dict(zip(group, results))
        first = first or (results, job)
        if chosen:
            anatomy = capture.anatomy
    images = await service.run_in_worker(lab.variant_images, pipeline, variants, [by_name[n] for n in variants])
    return schemas.GuidanceAnatomyResult(
        prompt_canonical=parse_prompt(req.prompt).canonical,
        negative_prompt_canonical=parse_prompt(req.negative_prompt).canonical,
        seed=req.seed, steps=req.steps, sampler=req.sampler, variant=req.variant,
        convention=lab.CONVENTION, display=lab.DISPLAY,
        step=schemas.StepAnatomy(
            index=anatomy.index, total=anatomy.total, t=anatomy.t, abar_t=anatomy.abar_t, guided=anatomy.guided,
            scale=anatomy.scale,
            maps=[schemas.EstimateMap(name=m.name, png_base64=_png(m.image), display_scale=m.display_scale,
                                      norm=m.norm, rms=m.rms,
                                      x0_png_base64=_png(m.x0_image) if m.x0_image is not None else None)
                  for m in anatomy.maps]),
        variants=[schemas.VariantImage(
            variant=v.variant.name, label=v.variant.label, formula=v.variant.formula, source=v.variant.source,
            png_base64=_png(v.image), guidance_scale=v.settings.guidance_scale, rescale=v.settings.guidance_rescale,
            interval_timesteps=v.settings.guidance_interval, guided_steps=v.guided_steps,
            guidance_method=v.settings.guidance_method, sampler=v.settings.sampler,
            **judged_fields(v.judged), matches=v.matches) for v in images],
        timings=_timings(*first, admitted), model_id=model.model_id,
    )


@timing_router.get("/instruments/compression/measured",
                   responses={**unprocessable(schemas.RemeasureQuery), **REFUSALS},
                   summary="One guided step's denoiser forward on the real latent vs the same DiT on pixels, timed "
                           "here (EQ MM3.3)")
async def compression_measured(q: Annotated[schemas.RemeasureQuery, Query()], settings: SettingsDep,
                               model: ModelDep, service: SamplingServiceDep,
                               client: ClientDep) -> schemas.MeasuredCompressionResult:
    """Measured once per server process (a few seconds of CPU, as a job of the queue: never beside another job on
    its worker) and cached until `remeasure=true`; `cached` and `measured_at` say which. The forwards are timed in
    interleaved rounds: median, quartiles, a noisy flag with the load average, and the recorded benchmark figure
    for the same forward where bench/results/ has one."""
    card, _ = read_card(settings.model_dir)
    measured = await service.run_call(
        lambda: forward_timing.measured_once(model.pipeline, model.model_id, card, q.remeasure,
                                             beside=lambda: service.running - 1), client)
    dit = model.pipeline.dit.config.to_dict()

    def forward(timed: forward_timing.ForwardTiming) -> schemas.ForwardTiming:
        recorded, note = scaling_forward(settings.bench_results_dir, dit, measured.batch, timed.tokens,
                                         timed.grid[2], timed.patch)
        return schemas.ForwardTiming(**vars(timed), recorded=recorded, recorded_note=note)

    return schemas.MeasuredCompressionResult.model_validate(
        {**vars(measured), "latent": forward(measured.latent), "pixel": [forward(p) for p in measured.pixel]})
