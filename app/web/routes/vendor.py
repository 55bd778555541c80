"""Third-party browser assets, never from a CDN: Plotly from its installed Python package; Pyodide and the snippet
editor from what `make vendor` built (app/web/vendor_assets.py)."""

from functools import lru_cache
from pathlib import Path

import plotly
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from app.web.state import state_of
from app.web.vendor_assets import accepts_gzip

router = APIRouter(include_in_schema=False)
# Every built file's URL changes with its content (Pyodide's names its version, the editor's its hash).
IMMUTABLE = "public, max-age=31536000, immutable"


@lru_cache
def plotly_js_path() -> Path:
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/vendor/{path:path}")
def built_file(path: str, request: Request) -> FileResponse:
    """A file of vendor/dist/ that its manifest lists, gzipped when that saves and the browser accepts it."""
    found = state_of(request.app).vendor.lookup(path)
    if found is None:
        raise HTTPException(404, f"/vendor/{path} is not a file this server serves (`make vendor` builds them)")
    gzipped = found.gzip_path is not None and accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return FileResponse(found.gzip_path if gzipped else found.path, media_type=found.media_type, headers=headers)
