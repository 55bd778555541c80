"""create_app(): assembles the routers, static files, templates, middleware, error handlers and the lifespan."""

from pathlib import Path

from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline

from app import __version__
from app.config import Settings, get_settings
from app.web.deps import network_routes
from app.web.dialects import a1111, openai
from app.web.errors import install_error_handlers
from app.web.lifespan import lifespan
from app.web.metrics import Metrics
from app.web.middleware import ApiKeyMiddleware, BodyLimitMiddleware, RequestContextMiddleware
from app.web.openapi import serve_limits_in_openapi
from app.web.routes import (
    benchmarks,
    families,
    generation,
    guidance_lab,
    health,
    instruments,
    model,
    pages,
    stream,
    vendor,
    video,
)
from app.web.security import SecurityHeadersMiddleware
from app.web.state import AppState, state_of
from app.web.vendor_assets import VendorAssets

API = "/api/v1"
ROUTERS = ((vendor.router, ""), (health.router, ""), (instruments.router, API), (families.router, API),
           (generation.router, API), (stream.router, API), (video.router, API), (video.timing_router, API),
           (guidance_lab.router, API), (guidance_lab.timing_router, API), (model.router, API), (benchmarks.router, API),
           (openai.router, ""), (a1111.router, ""), (pages.router, ""))


def _add_middleware(app, settings: Settings) -> None:
    """Outermost first: security headers, request id + metrics + log, CORS (so a 401 is readable), the API key,
    the body limit."""
    app.add_middleware(BodyLimitMiddleware)
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value(),
                           protected=frozenset(path for path, _ in network_routes(ROUTERS)))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "X-Client-Id"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(RequestContextMiddleware, metrics=state_of(app).metrics)
    app.add_middleware(SecurityHeadersMiddleware)  # added last = outermost: every response, 500s included


def create_app(settings: Settings | None = None) -> FastAPIOffline:
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="Diffusion Lab",
        version=__version__,
        description="The chapter 'Image & Video Generation', live: instruments and a real latent diffusion model.",
        lifespan=lifespan,
        root_path=settings.root_path,
    )
    app.state.current = AppState(settings, Jinja2Templates(directory=Path(settings.templates_dir)), Metrics(),
                                 VendorAssets(settings.vendor_dir))
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    for router, prefix in ROUTERS:
        app.include_router(router, prefix=prefix)
    install_error_handlers(app)
    _add_middleware(app, settings)
    serve_limits_in_openapi(app)
    return app
