"""What the running app holds: its settings and, once loaded, the models, the sampler and their errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from app.config import Settings
from app.service.compiled import CompileState
from app.service.models import LoadedModel
from app.service.progress import ProgressBoard
from app.service.sampling import SamplingService
from app.service.token_models import LoadedTokenFamily
from app.service.video_model import LoadedVideo
from app.web.metrics import Metrics
from app.web.vendor_assets import VendorAssets


@dataclass
class AppState:
    """One per app, created with it; the lifespan fills in the models and the sampler."""

    settings: Settings
    templates: Jinja2Templates
    metrics: Metrics
    vendor: VendorAssets  # Pyodide and the snippet editor, read from vendor/dist/ once
    model: LoadedModel | None = None
    model_error: str | None = None  # why the image model is not loaded (None: loaded, loading, or not asked for)
    video: LoadedVideo | None = None
    video_error: str | None = None
    token_families: dict[str, LoadedTokenFamily] = field(default_factory=dict)  # §3.4's families, by name
    token_errors: dict[str, str] = field(default_factory=dict)  # why a family is not loaded
    sampler: SamplingService | None = None
    progress: ProgressBoard = field(default_factory=ProgressBoard)  # the jobs A1111 clients may ask about
    compiled: CompileState | None = None  # the compiled networks and their warm-up (None: not loaded)
    ready: bool = False
    draining: bool = False  # set on SIGTERM: no new jobs, /readyz answers 503


def state_of(app: FastAPI) -> AppState:
    """The app's typed state (create_app stores it on Starlette's untyped app.state)."""
    return app.state.current
