"""app/web/vendor_assets.py: which built files are served, as what, and when gzipped."""

import json

import pytest

from app.web.vendor_assets import VendorAssets, accepts_gzip


@pytest.mark.parametrize(("header", "expected"), [
    ("gzip, deflate, br, zstd", True),  # Chromium's
    ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
    ("*", True),
    ("", False),
    ("identity", False),
    ("deflate, br", False),
    ("gzip;q=0", False),
    ("gzip;q=0, *", False),  # a named coding's weight wins over *
    ("*;q=0, gzip", True),
    ("GZIP", True),
    ("gzip;q=abc", False),
])
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected


def built(tmp_path):
    (tmp_path / "pyodide" / "9.9").mkdir(parents=True)
    (tmp_path / "editor").mkdir()
    files = {
        "pyodide/9.9/pyodide.asm.wasm": {"sha256": "a" * 64, "bytes": 10, "gzip_bytes": 4, "origin": "npm"},
        "pyodide/9.9/numpy.whl": {"sha256": "b" * 64, "bytes": 10, "gzip_bytes": None, "origin": "pypi"},
        "editor/snippet-editor.js": {"sha256": "c" * 64, "bytes": 10, "gzip_bytes": 4, "origin": "esbuild"},
    }
    manifest = {"pyodide_version": "9.9", "packages": ["numpy"], "editor": "editor/snippet-editor.js", "files": files}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return VendorAssets(tmp_path)


def test_only_the_files_the_manifest_lists_are_found(tmp_path):
    assets = built(tmp_path)
    (tmp_path / "pyodide" / "9.9" / "other.js").write_text("not built")
    assert assets.lookup("pyodide/9.9/other.js") is None
    assert assets.lookup("../manifest.json") is None
    assert assets.lookup("pyodide/9.9") is None


def test_a_file_comes_with_its_media_type_and_a_gzip_twin_only_where_gzip_saved(tmp_path):
    assets = built(tmp_path)
    wasm = assets.lookup("pyodide/9.9/pyodide.asm.wasm")
    assert wasm.media_type == "application/wasm" and wasm.sha256 == "a" * 64
    assert wasm.path == tmp_path / "pyodide/9.9/pyodide.asm.wasm"
    assert wasm.gzip_path == tmp_path / "pyodide/9.9/pyodide.asm.wasm.gz"
    wheel = assets.lookup("pyodide/9.9/numpy.whl")
    assert wheel.media_type == "application/zip" and wheel.gzip_path is None
    assert assets.lookup("editor/snippet-editor.js").media_type == "text/javascript"


def test_the_urls_name_the_pyodide_version_and_the_editors_hash(tmp_path):
    assert built(tmp_path).urls("/lab") == {
        "pyodide": "/lab/vendor/pyodide/9.9/",
        "editor": "/lab/vendor/editor/snippet-editor.js?v=" + "c" * 16,
        "packages": ["numpy"],
    }


def test_without_a_build_nothing_is_served_and_the_pages_get_no_urls(tmp_path):
    assets = VendorAssets(tmp_path / "never-built")
    assert not assets.available and assets.urls("") is None
    assert assets.lookup("pyodide/0.27.7/pyodide.js") is None
