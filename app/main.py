"""create_app(): assembles routers, static files, templates and the lifespan."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline

from app import __version__
from app.config import REPO_ROOT, Settings, get_settings
from app.routes import health, instruments, pages, vendor

TEMPLATES_DIR = REPO_ROOT / "templates"
STATIC_DIR = REPO_ROOT / "static"


@asynccontextmanager
async def lifespan(app):
    app.state.ready = True
    yield


def create_app(settings: Settings | None = None) -> FastAPIOffline:
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="Diffusion Lab",
        version=__version__,
        description="The chapter 'Image & Video Generation', live: instruments and a real latent diffusion model.",
        lifespan=lifespan,
        root_path=settings.root_path,
    )
    app.state.settings = settings
    app.state.ready = False
    app.state.templates = Jinja2Templates(directory=Path(TEMPLATES_DIR))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(vendor.router)
    app.include_router(health.router)
    app.include_router(instruments.router, prefix="/api/v1")
    app.include_router(pages.router)
    return app
