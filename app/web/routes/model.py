"""GET /model: the model card file, what the server knows about the loaded model right now, the video model and the
token families."""

from fastapi import APIRouter

from app.diffusion.samplers import SAMPLERS
from app.pipelines.tokens import FAMILY_FILES
from app.service.models import parameter_counts, read_card
from app.service.token_models import family_section
from app.service.video_model import video_section
from app.web import schemas
from app.web.deps import SettingsDep, StateDep
from app.world.scenes import MAX_PROMPT_CHARS, PROMPT_VOCABULARY

router = APIRouter(tags=["generation"])


@router.get("/model", summary="The model card: architecture, training, vocabulary, measured quality; live facts")
def model_card(state: StateDep, settings: SettingsDep) -> schemas.ModelCardResult:
    """Always 200: a missing card or an unloaded model is reported in the body, not as an error."""
    model, service = state.model, state.sampler
    card, card_error = read_card(settings.model_dir)
    limits = schemas.GenerationLimits(
        max_steps=settings.max_steps, max_batch=settings.max_batch, max_prompt_chars=MAX_PROMPT_CHARS,
        queue_size=settings.queue_size, worker_threads=settings.worker_threads,
        request_timeout_s=settings.request_timeout_s,
    )
    queue = (schemas.QueueState(running=service.running, waiting=service.waiting, capacity=service.capacity)
             if service is not None else None)
    live = schemas.ModelLive(
        loaded=model is not None,
        load_error=state.model_error,
        device=str(model.pipeline.device) if model else None,
        model_id=model.model_id if model else None,
        resolution=model.pipeline.resolution if model else None,
        parameters=parameter_counts(model.pipeline) if model else None,
        samplers=sorted(SAMPLERS),
        vocabulary=list(PROMPT_VOCABULARY),
        limits=limits,
        queue=queue,
    )
    video = video_section(settings.model_dir, state.video, state.video_error)
    families = {family: schemas.TokenFamilySection(**family_section(
        settings.model_dir, family, state.token_families.get(family), state.token_errors.get(family)))
        for family in FAMILY_FILES}
    return schemas.ModelCardResult(card_found=card is not None, card_error=card_error, card=card, live=live,
                                   video=schemas.VideoModelSection(**video) if video is not None else None,
                                   families=families)
