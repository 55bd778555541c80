"""The families a generation request may name (§3.3's diffusion, §3.4's autoregressive and masked token models), the
knobs each one takes, and the one rule between them: a knob sent with a family it does not belong to is refused."""

from typing import Annotated, Literal, get_args

from pydantic import Field, ValidationInfo
from pydantic.fields import FieldInfo

from app.pipelines.denoiser import DenoisingSettings
from app.pipelines.tokens import FAMILIES, TokenSettings
from app.web.schemas.common import SERVED_LIMIT, Rule, limit_error, steps_limit_error

Family = Literal["diffusion", "autoregressive", "masked"]
if get_args(Family) != FAMILIES:  # the schema lists what app/pipelines/tokens.py serves
    raise ImportError(f"schemas.Family {get_args(Family)} differs from the pipelines' FAMILIES {FAMILIES}")
DIFFUSION, TOKEN_FAMILIES = FAMILIES[0], FAMILIES[1:]
MAX_TOP_K = 4096  # the schema's bound; the served one is the loaded codebook's size
MAX_ROUNDS = 64

# Which families take each knob; a family's other fields (prompt, seed, guidance_scale, batch_size) are everyone's.
KNOB_FAMILIES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("steps", "sampler", "eta", "guidance_rescale", "guidance_method"), (DIFFUSION,)),
    **dict.fromkeys(("temperature", "top_k"), TOKEN_FAMILIES),
    "rounds": ("masked",),
}


def _families(names: tuple[str, ...]) -> str:
    return " and ".join(names) + (" families" if len(names) > 1 else " family")


def knob_owners(knob: str) -> str:
    """Who takes a knob, in words: 'the autoregressive and masked families'."""
    return "the " + _families(KNOB_FAMILIES[knob])


KNOB_FAMILY_RULE = Rule(
    "knob_family",
    "Each family takes its own knobs: " + "; ".join(
        f"{', '.join(knobs)} belong{'s' if len(knobs) == 1 else ''} to the {_families(owners)}"
        for owners, knobs in {owners: [k for k, o in KNOB_FAMILIES.items() if o == owners]
                              for owners in KNOB_FAMILIES.values()}.items())
    + ". A knob sent with another family is refused (leave it out: the family's own defaults apply)")


def knob_fits_family(value, info: ValidationInfo):
    """The validator of every knob in KNOB_FAMILIES (declare `family` before them). Pydantic runs it only on a value
    the client sent, never on a default, so it refuses exactly a knob set for a family it does not belong to; None
    (the parameters of a run, for a knob its family does not use) passes."""
    family, owners = info.data.get("family"), KNOB_FAMILIES[info.field_name]
    if value is not None and family is not None and family not in owners:
        raise KNOB_FAMILY_RULE.error("{field} belongs to {owners}, not to {family}: leave it out",
                                     field=info.field_name, owners=knob_owners(info.field_name), family=family)
    return value


def knob(description: str, knob_name: str) -> str:
    """A knob's description, with whose it is."""
    return f"{description}. Only for {knob_owners(knob_name)}: {KNOB_FAMILY_RULE.type} otherwise"


def knob_field(kind, default, knob_name: str):
    """A request's field of a shared type (Steps, Sampler, ...) as a knob: its default, its type's description and
    whose it is."""
    described = [m.description for m in get_args(kind)[1:] if isinstance(m, FieldInfo) and m.description]
    return Field(default, description=knob(described[-1].rstrip("."), knob_name))


FamilyField = Annotated[Family, Field(description="Which model draws: 'diffusion' (the latent diffusion model, "
                                                  "§3.3), 'autoregressive' (one token per forward in raster order, "
                                                  "EQ MM3.5) or 'masked' (MaskGIT's parallel rounds), both over "
                                                  "the VQ tokenizer's codebook (§3.4). " + KNOB_FAMILY_RULE.text)]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False, description=knob(
    f"Softmax temperature T of each token's draw; 0 takes the most likely token; default {TokenSettings.temperature:g}",
    "temperature"))]
TopK = Annotated[int, Field(ge=0, le=MAX_TOP_K, json_schema_extra={SERVED_LIMIT: "codebook_size"}, description=knob(
    "Draw only among the k most likely codes; 0 = every code; at most the loaded codebook's size", "top_k"))]
Rounds = Annotated[int, Field(ge=1, le=MAX_ROUNDS, description=knob(
    f"MaskGIT's parallel rounds: network forwards one after another; default {TokenSettings.rounds}", "rounds"))]
GUIDANCE_DEFAULTS = {DIFFUSION: DenoisingSettings.guidance_scale,
                     **dict.fromkeys(TOKEN_FAMILIES, TokenSettings.guidance_scale)}
GUIDANCE_SCALE_TEXT = ("Guidance scale s of EQ MM3.4 (on the noise estimates for diffusion, on the logits for the "
                       "token families): 0 unconditional, 1 conditional only; absent = "
                       + ", ".join(f"{s:g} for {f}" for f, s in GUIDANCE_DEFAULTS.items()))


def knob_limit_errors(family: str, steps: int, max_steps: int, top_k: int, codebook_size: int | None) -> list[dict]:
    """The served caps on a request's own knobs, as pydantic-shaped errors: diffusion's steps (DIFFUSION_LAB_MAX_STEPS),
    a token family's top_k (its loaded codebook's size; None: not loaded, so not checked)."""
    if family == DIFFUSION:
        return steps_limit_error(steps, max_steps)
    if codebook_size is None:
        return []
    return limit_error("top_k", top_k, codebook_size, f"the codebook size of the loaded {family} model")


def as_run(values: dict, sent: set[str]) -> dict:
    """A request's values as its family runs them: the knobs of other families None (a run's parameters leave them
    out), and the family's own guidance scale when none was sent."""
    family = values["family"]
    run = {name: None if family not in KNOB_FAMILIES.get(name, (family,)) else value for name, value in values.items()}
    if "guidance_scale" in values and "guidance_scale" not in sent:
        run["guidance_scale"] = GUIDANCE_DEFAULTS[family]
    return run
