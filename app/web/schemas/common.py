"""What the request models share: the strict base, the fields several requests carry, their checks and errors."""

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from app.service.jobs import MAX_SEED
from app.world.scenes import MAX_PROMPT_CHARS, PromptError, vocabulary_help


@dataclass(frozen=True)
class Rule:
    """A rule the OpenAPI schema cannot state (between two fields, or among a prompt's words): a request that the
    schema admits may still break it. `type` is its error's type in the 422, `text` the rule in words; the
    fields' descriptions state it, and the operation's 422 response lists it (see app/web/errors.py)."""

    type: str
    text: str

    def error(self, message: str, **ctx) -> PydanticCustomError:
        """The 422 error of this rule; `message` names ctx's values as {name} (never user text: it has braces)."""
        return PydanticCustomError(self.type, message, ctx)


class Strict(BaseModel):
    """Base for request models: unknown fields are an error, not silently ignored; NaN and infinities are not
    numbers a request can send (one message, "finite number", wherever they come); a boolean is never taken
    for a number nor a number for a boolean (pydantic's lax mode reads `true` as 1 and 0 as `false`).

    RULES lists the model's rules that the schema cannot state; IN_QUERY says the values arrive as query text,
    where a boolean is the word `true` or `false` (in a JSON body it is a JSON boolean)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    RULES: ClassVar[tuple[Rule, ...]] = ()
    IN_QUERY: ClassVar[bool] = False

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_booleans(cls, value, info: ValidationInfo):
        annotation = cls.model_fields[info.field_name].annotation
        if _is_bool(annotation):
            if isinstance(value, bool):
                return value
            if cls.IN_QUERY and value in ("true", "false"):
                return value == "true"
            if value is None and annotation is not bool:
                return value
            raise PydanticCustomError("bool_type", "Input should be a boolean, true or false")
        given = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) for v in given) and not _takes_bool(annotation):
            raise PydanticCustomError("bool_not_number", "Input should be a number, not a boolean")
        return value


def _takes_bool(annotation) -> bool:
    """Whether a field's type admits a boolean anywhere (bool itself, or inside a union or a list)."""
    return annotation is bool or any(_takes_bool(arg) for arg in get_args(annotation))


def _is_bool(annotation) -> bool:
    """Whether a field is a boolean (or an optional one): nothing else is taken for it."""
    return annotation is bool or (bool in get_args(annotation) and set(get_args(annotation)) <= {bool, type(None)})


# ---------------------------------------------------------------- fields several requests share

GenerationSampler = Literal["dpmpp_2m", "ddim", "ddpm"]
Sampler = Annotated[GenerationSampler, Field(description="dpmpp_2m (default), ddim or ddpm")]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
# A field bounded by a cap this server sets (not the schema) says which: the OpenAPI document states the served
# value as its maximum (app/web/openapi.py), and the route checks it with limit_error(), the one message of the rule.
SERVED_LIMIT = "x-served-limit"
Steps = Annotated[int, Field(ge=1, json_schema_extra={SERVED_LIMIT: "max_steps"},
                             description="Denoising steps; at most the server's DIFFUSION_LAB_MAX_STEPS")]
GuidanceScale = Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
GuidanceRescale = Annotated[Fraction, Field(description="Pull the guided estimate's std back to the conditional "
                                                        "one's; 0 = off")]
Eta = Annotated[Fraction, Field(description="DDIM's stochasticity, 0 = deterministic; the other samplers ignore it")]
GUIDANCE_METHOD_RULE = Rule("guidance_method_needs", "guidance_method 'cfg++' is defined on the DDIM step: it needs "
                                                     "sampler 'ddim' and a guidance_scale (its lambda) of at most 1")
GuidanceMethod = Annotated[Literal["cfg", "apg", "cfg++"], Field(
    description="How the two estimates of EQ MM3.4 combine: 'cfg' (default: eps_u + s (eps_c - eps_u)); 'apg' "
                "(adaptive projected guidance: in the x0 prediction, the part of the update along the conditional "
                "prediction is dropped, with momentum and a norm cap); 'cfg++' (manifold-constrained: the guided "
                "estimate decides x0, the DDIM step renoises with the unconditional one). "
                + GUIDANCE_METHOD_RULE.text)]


def guidance_method_fits(method: str, info: ValidationInfo) -> str:
    """The `guidance_method` validator: CFG++ needs the DDIM sampler and scales in [0, 1] (declare the field after
    sampler and guidance_scale or scales, so they are read first)."""
    sampler, scales = info.data.get("sampler"), info.data.get("scales") or [info.data.get("guidance_scale")]
    scale = max((s for s in scales if s is not None), default=None)
    if method == "cfg++" and (sampler not in (None, "ddim") or (scale is not None and scale > 1)):
        raise GUIDANCE_METHOD_RULE.error(GUIDANCE_METHOD_RULE.text + " (got sampler {sampler}, guidance_scale {scale})",
                                         sampler=str(sampler), scale=scale)
    return method
Caption = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]
# Scene prompts (images): the words are checked by the scene grammar, which the schema cannot state.
SCENE_PROMPT_RULES = (
    Rule("prompt_unknown_words", f"Every word of a prompt must be one the model knows. {vocabulary_help()}"),
    Rule("prompt_invalid", "A prompt names at most one shape, colour, size and position, and a shape whenever it "
                           "names any of them"),
    Rule("prompt_not_learned", "Weights trained before a word joined the grammar cannot read it: the server refuses "
                               "such a prompt"),
)
SCENE_GRAMMAR = " ".join(rule.text for rule in SCENE_PROMPT_RULES)
# One rule for every prompt: it must be sent, and empty or blank asks for an unconditional sample (the caption
# dropout EQ MM3.4's guidance steers away from).
ScenePrompt = Annotated[Caption, Field(examples=["a large red circle at the top left"],
                                       description="What to draw; empty or blank (only spaces) = an unconditional "
                                                   f"sample. {SCENE_GRAMMAR}")]
NegativePrompt = Annotated[Caption, Field(description="The caption guidance steers away from (EQ MM3.4); "
                                                      "empty or blank = the null caption; the same grammar as prompt")]


# ---------------------------------------------------------------- errors


def prompt_error_detail(err: PromptError) -> PydanticCustomError:
    """A PromptError as a pydantic error: the message lists the vocabulary, ctx carries it as a list."""
    kind = "prompt_unknown_words" if err.unknown_words else "prompt_invalid"
    # "message" goes last: pydantic fills "{name}" from ctx in order, and the user's words may contain braces.
    ctx = {"unknown_words": err.unknown_words, "vocabulary": err.vocabulary, "message": str(err)}
    return PydanticCustomError(kind, "{message}", ctx)


def known_words(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A field validator that passes the text when `parse` reads it, else raises its PromptError as a pydantic error."""

    def check(text: str) -> str:
        try:
            parse(text)
        except PromptError as err:  # the clip grammar's VideoPromptError too: its own message and vocabulary
            raise prompt_error_detail(err) from None
        return text

    return check


MAX_ECHOED_CHARS = 64  # of a refused value, in a message


def only(allowed: Collection[str], kind: str, message: str) -> Callable:
    """A before-validator for a field whose schema lists the values it takes: any other text is the error `kind`
    with `message` (naming the text as {value}), clearer than pydantic's own about a literal."""

    def check(value):
        if isinstance(value, str) and value not in allowed:
            raise PydanticCustomError(kind, message, {"value": value[:MAX_ECHOED_CHARS]})
        return value

    return check


def seeds_fit(count_field: str, uses: str) -> tuple[Rule, Callable[[int | None, ValidationInfo], int | None]]:
    """The rule that seeds seed .. seed + count - 1 are all seeds, and its `seed` validator. `count_field` names the
    int field of the count, or several joined by " x " whose product it is; a negative seed (a dialect's "random")
    is not checked."""
    rule = Rule("seed_range", f"seed + {count_field} - 1 must be at most {MAX_SEED} ({uses})")
    fields = count_field.split(" x ")

    def check(seed: int | None, info: ValidationInfo) -> int | None:
        counts = [info.data.get(field) for field in fields]
        if seed is not None and seed >= 0 and all(isinstance(c, int) for c in counts):
            count = math.prod(counts)
            if seed + count - 1 > MAX_SEED:
                raise rule.error(rule.text, count=count, max_seed=MAX_SEED)
        return seed

    return rule, check


def limit_error(field: str, value: int, cap: int, whose: str) -> list[dict]:
    """A pydantic-shaped error when value exceeds a cap that the server, not the schema, sets; else none."""
    if value <= cap:
        return []
    return [{"type": "less_than_equal", "loc": (field,), "input": value, "ctx": {"le": cap},
             "msg": f"Input should be less than or equal to {cap} ({whose})"}]


def steps_limit_error(steps: int, max_steps: int) -> list[dict]:
    """A pydantic-shaped error when steps exceeds the server's DIFFUSION_LAB_MAX_STEPS, else none."""
    return limit_error("steps", steps, max_steps, "this server's DIFFUSION_LAB_MAX_STEPS")


class Timings(BaseModel):
    """Where the time went, in seconds (server side): what every generation response reports."""

    queue_s: float = Field(description="Waiting for a free sampler thread")
    total_s: float = Field(description="From admission to the response, everything included")
    network_forwards: int = Field(description="Denoiser calls (conditional and unconditional batched as one)")


# ---------------------------------------------------------------- error bodies (the 4xx and 503 responses)


class FieldError(BaseModel):
    """One reason a request was refused (pydantic's error shape)."""

    type: str = Field(description="What rule failed, e.g. less_than_equal, bool_not_number, prompt_unknown_words")
    loc: list[str | int] = Field(description="Where: 'body' or 'query', then the field (and index) at fault")
    msg: str = Field(description="The rule, in words, with the value it allows")
    input: Any = Field(None, description="The value given")
    ctx: dict[str, Any] | None = Field(None, description="The rule's parameters, e.g. {'le': 8}")


class Unprocessable(BaseModel):
    """422: every reason the request cannot be run."""

    detail: list[FieldError]


class Refused(BaseModel):
    """A refusal that is not about one field: the reason in words."""

    detail: str
