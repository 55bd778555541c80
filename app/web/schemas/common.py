"""What every request model shares: the strict base, the seed bound, the sampler names, the server-cap error."""

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from app.world.scenes import PromptError


class Strict(BaseModel):
    """Base for query models: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


MAX_SEED = 2**31 - 1
GenerationSampler = Literal["dpmpp_2m", "ddim", "ddpm"]


def prompt_error_detail(err: PromptError) -> PydanticCustomError:
    """A PromptError as a pydantic error: the message lists the vocabulary, ctx carries it as a list."""
    kind = "prompt_unknown_words" if err.unknown_words else "prompt_invalid"
    # "message" goes last: pydantic fills "{name}" from ctx in order, and the user's words may contain braces.
    ctx = {"unknown_words": err.unknown_words, "vocabulary": err.vocabulary, "message": str(err)}
    return PydanticCustomError(kind, "{message}", ctx)


def steps_limit_error(steps: int, max_steps: int) -> list[dict]:
    """A pydantic-shaped error when steps exceeds the server's DIFFUSION_LAB_MAX_STEPS, else none."""
    if steps <= max_steps:
        return []
    return [{"type": "less_than_equal", "loc": ("steps",), "input": steps, "ctx": {"le": max_steps},
             "msg": f"Input should be less than or equal to {max_steps} (this server's DIFFUSION_LAB_MAX_STEPS)"}]
