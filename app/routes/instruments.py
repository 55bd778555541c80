"""JSON endpoints of the chapter's three instruments: thin, no arithmetic here."""

from typing import Annotated

from fastapi import APIRouter, Query

from app import schemas

router = APIRouter(prefix="/instruments", tags=["instruments"])

# ---------------------------------------------------------------- latent vs pixel (MM3.1, EQ MM3.3)
# (compression route goes here)


# ---------------------------------------------------------------- guidance scale (MM3.2, EQ MM3.4)
# (guidance route goes here)


# ---------------------------------------------------------------- frame coherence (MM3.3, EQ MM3.6)
# (coherence route goes here)
