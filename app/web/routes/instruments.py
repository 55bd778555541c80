"""JSON endpoints of the chapter's three instruments: thin, no arithmetic here."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.instruments import coherence as coherence_mod
from app.instruments import compression as compression_mod
from app.instruments.denoising import denoising_instrument
from app.instruments.guidance import guidance_instrument, snippet_panel
from app.web import schemas
from app.web.errors import unprocessable
from app.web.response_cache import ResponseCache, query_key

router = APIRouter(prefix="/instruments", tags=["instruments"])
ANSWERS = ResponseCache()  # every answer below is a pure function of its query (app/web/response_cache.py)

# ---------------------------------------------------------------- latent vs pixel (MM3.1, EQ MM3.3)


@router.get("/compression", responses=unprocessable(schemas.CompressionQuery), response_model=schemas.CompressionResult,
            summary="Pixel tensor vs VAE latent: values, tokens and attention cost (EQ MM3.3)")
async def compression(q: Annotated[schemas.CompressionQuery, Query()]) -> Response:
    """EQ MM3.3 for one image size, f, c_z and patch size, with the cost of every valid f and the presets."""
    return await ANSWERS.answer_async(query_key("compression", q), lambda: schemas.CompressionResult.model_validate(
        compression_mod.compare(**q.model_dump())))


# ---------------------------------------------------------------- guidance scale (MM3.2, EQ MM3.4)


@router.get("/guidance", responses=unprocessable(schemas.GuidanceQuery), response_model=schemas.GuidanceResult,
            summary="Classifier-free guidance on an exact toy diffusion (EQ MM3.4)")
async def guidance(q: Annotated[schemas.GuidanceQuery, Query()]) -> Response:
    """Sample the toy at scale s with the guided estimate; measure adherence, diversity and the regime."""
    return await ANSWERS.answer_async(query_key("guidance", q), lambda: schemas.GuidanceResult.model_validate(
        guidance_instrument(**q.model_dump())))


@router.get("/guidance/table", responses=unprocessable(schemas.CfgTableQuery),
            summary="The chapter's CFG table for any two noise estimates and scales (EQ MM3.4)")
def guidance_table(q: Annotated[schemas.CfgTableQuery, Query()]) -> schemas.CfgSnippet:
    """What the CFG snippet prints, computed here: the guided estimate and its norm at each scale, the norm over s,
    and the row at `scale`. The page asks for it with the vectors and scales the reader's run used."""
    return schemas.CfgSnippet.model_validate(snippet_panel(**q.model_dump()))


# ---------------------------------------------------------------- denoising walk (EQ MM3.1-3.2)


@router.get("/denoising", responses=unprocessable(schemas.DenoisingQuery), response_model=schemas.DenoisingResult,
            summary="An oracle denoiser walking a 2-D latent from noise to x0 (EQ MM3.1-3.2)")
async def denoising(q: Annotated[schemas.DenoisingQuery, Query()]) -> Response:
    """The chapter's first snippet, live: the whole trajectory, the schedule and the readouts."""
    return await ANSWERS.answer_async(query_key("denoising", q), lambda: schemas.DenoisingResult.model_validate(
        denoising_instrument(**q.model_dump())))


# ---------------------------------------------------------------- frame coherence (MM3.3, EQ MM3.6)


@router.get("/coherence", responses=unprocessable(schemas.CoherenceQuery), response_model=schemas.CoherenceResult,
            summary="Per-frame vs joint denoising of a moving object; spacetime tokens (EQ MM3.6)")
async def coherence(q: Annotated[schemas.CoherenceQuery, Query()]) -> Response:
    """Denoise the tracked object's path at this coherence; N, joint and factorised attention cost over frames."""
    return await ANSWERS.answer_async(query_key("coherence", q), lambda: schemas.CoherenceResult.model_validate(
        coherence_mod.coherence_report(**q.model_dump())))
