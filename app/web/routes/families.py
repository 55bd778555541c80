"""Chapter §3.4's three families over HTTP: what is loaded, the judge on a picture, the autoregressive model's
likelihood of a token grid (EQ MM3.5), the tokenizer's codebook beside the VAE, and the cost against N timed here.

Every network forward runs as a job of the fair, bounded queue (run_call: never beside a batch, bound by the time
limit); the judge runs on a sampler thread, as the guidance lab's does. The codebook and the cost are measured once
per process and models and kept until `remeasure=true` (app/lab/once.py).
"""

from typing import Annotated

from fastapi import APIRouter, Query

from app.lab import families as lab
from app.lab import family_cost
from app.pipelines.tokens import TokenSettings
from app.service.imaging import encode_png, to_base64
from app.web import schemas
from app.web.deps import (
    ClientDep,
    ModelDep,
    SamplingServiceDep,
    StateDep,
    TokenFamiliesDep,
    token_family,
    why_not_loaded,
)
from app.web.errors import REFUSALS, TOO_LARGE, located_errors, not_loaded, unprocessable
from app.web.routes.guidance_lab import judged_fields
from app.web.schemas.family_instrument import png_image

router = APIRouter(prefix="/instruments/families", tags=["instruments"])
DIFFUSION_STEPS = schemas.GenerateRequest.model_fields["steps"].default  # the generation API's defaults
MASKED_ROUNDS = TokenSettings().rounds


def _png(image) -> str:
    return to_base64(encode_png(image))


@router.get("", summary="The three families of chapter §3.4 on this server: loaded or why not, sizes, forwards")
def families(state: StateDep) -> schemas.FamiliesResult:
    """Which of the autoregressive, masked and diffusion models are loaded (and why a missing one is not), their
    token grids and sizes, and the sequential forwards one image takes at the defaults. Runs no network."""
    def token_state(family: str) -> schemas.FamilyState:
        loaded = state.token_families.get(family)
        if loaded is None:
            why = state.token_errors.get(family) or (why_not_loaded(state) if state.model is None
                                                     else f"the {family} model is not loaded")
            return schemas.FamilyState(family=family, loaded=False, reason=why, model_id=None, size=None,
                                       sequential_forwards=None)
        generator = loaded.generator
        return schemas.FamilyState(
            family=family, loaded=True, reason=None, model_id=loaded.model_id,
            size=schemas.FamilySize.model_validate(lab.token_family_size(generator)),
            sequential_forwards=generator.sequential_forwards(TokenSettings(family=family, rounds=MASKED_ROUNDS)))

    model = state.model
    diffusion = schemas.FamilyState(
        family="diffusion", loaded=model is not None, reason=None if model is not None else why_not_loaded(state),
        model_id=model.model_id if model is not None else None,
        size=schemas.FamilySize.model_validate(lab.diffusion_size(model.pipeline)) if model is not None else None,
        sequential_forwards=lab.forwards_per_image("diffusion", 0, MASKED_ROUNDS, DIFFUSION_STEPS)
        if model is not None else None)
    return schemas.FamiliesResult(families=[token_state("autoregressive"), token_state("masked"), diffusion],
                                  rounds=MASKED_ROUNDS, steps=DIFFUSION_STEPS)


@router.post("/judge", responses={**unprocessable(schemas.FamilyJudgeRequest), **REFUSALS, **TOO_LARGE},
             summary="What the program judge reads in one picture, against the prompt it was drawn for")
async def judge(req: schemas.FamilyJudgeRequest, service: SamplingServiceDep) -> schemas.FamilyJudgeResult:
    """The judge of the model card and the guidance lab (one shape or two), on a sampler thread."""
    verdict = await service.run_in_worker(lab.judge_image, png_image(req.png_base64), req.prompt)
    return schemas.FamilyJudgeResult(prompt_canonical=verdict.prompt_canonical, **judged_fields(verdict.judged),
                                     adherence=verdict.adherence)


@router.post("/likelihood", responses={**unprocessable(schemas.LikelihoodRequest), **REFUSALS, **TOO_LARGE},
             summary="EQ MM3.5: the autoregressive model's log-probability of every token of a grid, in bits")
async def likelihood(req: schemas.LikelihoodRequest, state: StateDep, families: TokenFamiliesDep,
                     service: SamplingServiceDep, client: ClientDep) -> schemas.LikelihoodResult:
    """One teacher-forced forward of the loaded autoregressive model (and one under the empty caption) over the
    tokens of a scene drawn for the prompt, of an image the tokenizer encodes, or of a grid as given; as a job of
    the queue. 503 with the reason when the autoregressive model is not loaded."""
    loaded = token_family(state, "autoregressive")
    image = png_image(req.png_base64) if req.png_base64 is not None else None
    try:
        scored = await service.run_call(lambda: lab.likelihood(loaded.generator, req.prompt, req.source,
                                                               req.scene_seed, image, req.tokens), client)
    except lab.Unfit as err:
        raise located_errors([{"type": err.kind, "loc": (err.field,), "msg": str(err), "input": None}],
                             "body") from None
    return schemas.LikelihoodResult(
        source=scored.source, prompt_canonical=scored.prompt_canonical, scene_caption=scored.scene_caption,
        grid=scored.grid, codebook_size=scored.codebook_size, tokens=scored.tokens.tolist(),
        log2_probs=scored.log2_probs.tolist(), total_bits=scored.total_bits, bits_per_token=scored.bits_per_token,
        uniform_bits=scored.uniform_bits, unconditional_bits=scored.unconditional_bits,
        picture_png_base64=_png(scored.picture), decoded_png_base64=_png(scored.decoded), model_id=loaded.model_id)


@router.get("/codebook", responses={**unprocessable(schemas.RemeasureQuery), **REFUSALS},
            summary="The VQ tokenizer's codebook usage and reconstruction ceiling on held-out scenes, beside the VAE")
async def codebook(q: Annotated[schemas.RemeasureQuery, Query()], state: StateDep, families: TokenFamiliesDep,
                   model: ModelDep, service: SamplingServiceDep, client: ClientDep) -> schemas.CodebookResult:
    """K, the codes the held-out scenes' tokens use, their perplexity, and the reconstructions' PSNR and the judges'
    reading (the ceiling of every model on these tokens), with the diffusion model's VAE on the same scenes.
    Measured once per process and models (a second or so, as a job of the queue) and cached until
    `remeasure=true`."""
    if not families:
        raise not_loaded("; ".join(state.token_errors.values()) or why_not_loaded(state))
    loaded = next(iter(families.values()))  # both token families share the one tokenizer
    measured = await service.run_call(
        lambda: lab.codebook_once(loaded.generator, model.pipeline, (loaded.model_id, model.model_id), q.remeasure),
        client)
    return schemas.CodebookResult.model_validate({**vars(measured), "model_id": loaded.model_id,
                                                  "vae_model_id": model.model_id})


@router.get("/cost", responses={**unprocessable(schemas.FamilyCostQuery), **REFUSALS},
            summary="One image's sampling time against the token count N, per family, timed here")
async def cost(q: Annotated[schemas.FamilyCostQuery, Query()], state: StateDep, families: TokenFamiliesDep,
               model: ModelDep, service: SamplingServiceDep, client: ClientDep) -> schemas.FamilyCostResult:
    """At N = 16, 64, 256, 1024: the autoregressive sampler (KV cache, N forwards), the masked one (8 rounds) and
    the diffusion sampler (20 steps) on random weights of the served sizes, timed in interleaved rounds (median,
    quartiles, a noisy flag with the load average) as a job of the queue, and whether the autoregressive time grew
    linearly with N, read from the medians. Measured once per process, models and repeats (tens of seconds on a
    busy CPU) and cached until `remeasure=true`."""
    served = {family: loaded.generator.config for family, loaded in families.items()}
    key = (*(families[f].model_id if f in families else "-" for f in family_cost.TOKEN_FAMILIES), model.model_id)
    measured = await service.run_call(
        lambda: family_cost.measured_once(model.pipeline, served, state.token_errors, key, q.repeats, q.remeasure,
                                          beside=lambda: service.running - 1), client)
    return schemas.FamilyCostResult.model_validate(measured, from_attributes=True)
