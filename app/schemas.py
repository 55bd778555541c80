"""Pydantic request/response models: the API's single source of truth.

Every numeric input is bounded here (an unbounded count is a denial of service waiting to happen).
"""

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for query models: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- latent vs pixel (MM3.1, EQ MM3.3)
# (compression schemas go here)


# ---------------------------------------------------------------- guidance scale (MM3.2, EQ MM3.4)
# (guidance schemas go here)


# ---------------------------------------------------------------- frame coherence (MM3.3, EQ MM3.6)
# (coherence schemas go here)
