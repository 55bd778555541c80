"""The app's entry point: `create_app(settings)` builds it (app/web/app.py assembles it; `uvicorn --factory
app.main:create_app` serves it)."""

from app.web.app import create_app

__all__ = ["create_app"]
