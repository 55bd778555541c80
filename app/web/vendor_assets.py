"""What `make vendor` built into vendor/dist/ (Pyodide with numpy, the snippet editor), as the app serves it.

vendor/build.py writes manifest.json last, after checking every Pyodide file's hash; only the files it lists are
served, each with its gzip twin to a browser that accepts gzip. Without a manifest the pages say the in-browser
Python is not installed and everything else works as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".wasm": "application/wasm",  # what WebAssembly.instantiateStreaming insists on
    ".json": "application/json",
    ".zip": "application/zip",
    ".whl": "application/zip",
}


@dataclass(frozen=True)
class VendorFile:
    path: Path
    gzip_path: Path | None  # None where gzip would not save (the wheels and zips are compressed already)
    media_type: str
    sha256: str


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip: named with a weight above 0, or else `*` with one."""
    weights = {}
    for item in accept_encoding.split(","):
        coding, *params = [part.strip() for part in item.split(";")]
        q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            weights[coding.lower()] = float(q)
        except ValueError:
            weights[coding.lower()] = 0.0
    return weights.get("gzip", weights.get("*", 0.0)) > 0


class VendorAssets:
    """The built files under `root`, read from its manifest once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        path = self.root / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.files: dict[str, dict] = manifest.get("files", {})
        self.pyodide_version: str | None = manifest.get("pyodide_version")
        self.packages: list[str] = manifest.get("packages", [])
        self.editor: str | None = manifest.get("editor")

    @property
    def available(self) -> bool:
        return bool(self.files) and self.editor in self.files

    def lookup(self, rel: str) -> VendorFile | None:
        """The file at `rel` (as in its URL under /vendor/) when the manifest lists it, else None."""
        entry = self.files.get(rel)
        if entry is None:
            return None
        path = self.root / rel
        media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
        gzip_path = path.with_name(path.name + ".gz") if entry.get("gzip_bytes") else None
        return VendorFile(path, gzip_path, media_type, entry["sha256"])

    def urls(self, base: str) -> dict | None:
        """Where a page finds Pyodide and the editor (the editor's URL names its hash: it may be cached for good),
        and which packages to load; None when nothing was built."""
        if not self.available:
            return None
        return {
            "pyodide": f"{base}/vendor/pyodide/{self.pyodide_version}/",
            "editor": f"{base}/vendor/{self.editor}?v={self.files[self.editor]['sha256'][:16]}",
            "packages": self.packages,
        }
