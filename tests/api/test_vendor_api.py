"""/vendor/: the in-browser Python and the snippet editor as this server sends them. Every Pyodide file a browser
receives is the one its lock vouches for: the core files vendor/pyodide-core.sha256 pins, the numpy wheel the sha256
in the served pyodide-lock.json. Needs the build step (`make vendor`, which `make test` runs first)."""

import hashlib
import json

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.web.security import APP_CSP, SNIPPET_WORKER_CSP
from tests.helpers.models import REPO_ROOT, settings_for_tests

MANIFEST = Settings().vendor_dir / "manifest.json"
PINS = REPO_ROOT / "vendor" / "pyodide-core.sha256"
PYODIDE = "/vendor/pyodide/0.27.7/"
NUMPY = "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"


@pytest.fixture(scope="module")
def manifest() -> dict:
    if not MANIFEST.is_file():
        pytest.fail(f"{MANIFEST} is missing: `make vendor` (part of `make test`) builds it")
    return json.loads(MANIFEST.read_text())


def received(client, path: str, gzip_ok: bool = True):
    """The bytes a browser ends up with (decoded as it would), and the response."""
    response = client.get(path, headers={"Accept-Encoding": "gzip" if gzip_ok else "identity"})
    assert response.status_code == 200, path
    return response.content, response


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pins() -> dict[str, str]:
    lines = [line.split() for line in PINS.read_text().splitlines() if line and not line.startswith("#")]
    return {name: digest for digest, name in lines}


@pytest.mark.parametrize("gzip_ok", [True, False], ids=["gzip", "identity"])
def test_every_served_pyodide_file_has_the_hash_its_lock_pins(client, manifest, gzip_ok):
    for name, digest in pins().items():
        data, _ = received(client, PYODIDE + name, gzip_ok)
        assert sha(data) == digest, name
    lock = json.loads(received(client, PYODIDE + "pyodide-lock.json", gzip_ok)[0])
    numpy = lock["packages"]["numpy"]
    assert (numpy["file_name"], numpy["version"], lock["info"]["version"]) == (NUMPY, "2.0.2", "0.27.7")
    assert sha(received(client, PYODIDE + NUMPY, gzip_ok)[0]) == numpy["sha256"]


def test_every_file_the_manifest_lists_is_served_as_built(client, manifest):
    for rel, entry in manifest["files"].items():
        data, response = received(client, f"/vendor/{rel}")
        assert sha(data) == entry["sha256"] and len(data) == entry["bytes"], rel
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_wasm_is_application_wasm_and_gzipped_for_a_browser_that_accepts_it(client, manifest):
    response = client.get(PYODIDE + "pyodide.asm.wasm", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert response.headers["Content-Type"] == "application/wasm"
    assert response.headers["Content-Encoding"] == "gzip" and response.headers["Vary"] == "Accept-Encoding"
    sent = int(response.headers["Content-Length"])
    assert sent == manifest["files"]["pyodide/0.27.7/pyodide.asm.wasm"]["gzip_bytes"] < 0.35 * len(response.content)
    plain = client.get(PYODIDE + "pyodide.asm.wasm", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and int(plain.headers["Content-Length"]) == len(plain.content)


def test_the_wheel_is_sent_as_it_is_gzip_would_not_shrink_it(client, manifest):
    response = client.get(PYODIDE + NUMPY, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Type"] == "application/zip" and "Content-Encoding" not in response.headers


def test_what_is_sent_compressed_adds_up_to_under_ten_megabytes(manifest):
    files = manifest["files"].values()
    assert sum(f["bytes"] for f in files) > 15e6
    assert sum(f["gzip_bytes"] or f["bytes"] for f in files) < 10e6


@pytest.mark.parametrize("path", ["/vendor/pyodide/0.27.7/console.html", "/vendor/pyodide/0.27.7/pyodide.asm.wasm.gz",
                                  "/vendor/manifest.json", "/vendor/pyodide/0.27.7/", "/vendor/../pyproject.toml",
                                  "/vendor/%2e%2e/pyproject.toml", "/vendor/editor/../../build.py"])
def test_nothing_outside_the_manifest_is_served(client, manifest, path):
    assert client.get(path).status_code == 404


def test_only_the_snippet_worker_may_compile_webassembly(client):
    worker = client.get("/static/js/snippet_worker.js")
    assert worker.headers["Content-Security-Policy"] == SNIPPET_WORKER_CSP
    assert SNIPPET_WORKER_CSP.replace(" 'wasm-unsafe-eval'", "") == APP_CSP  # one source added, nothing else
    for path in ("/instruments/denoising", "/instruments/guidance", "/static/js/snippet.js", PYODIDE + "pyodide.js"):
        assert client.get(path).headers["Content-Security-Policy"] == APP_CSP, path


def test_pages_say_so_when_the_build_step_has_not_run(tmp_path):
    with TestClient(create_app(settings_for_tests(vendor_dir=tmp_path))) as bare:
        page = bare.get("/instruments/denoising").text
        assert "In-browser Python is not installed on this server: <code>make vendor</code> builds it." in page
        assert "data-pyodide-url" not in page
        assert bare.get(PYODIDE + "pyodide.js").status_code == 404
