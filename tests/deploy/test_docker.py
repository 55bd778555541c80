"""The container image without a Docker engine: hadolint, the build context, and what the image runs.

The image is rebuilt here the way the Dockerfile builds it: the build stage's COPY sources, filtered by
.dockerignore, become a wheel; the wheel goes into a fresh venv; the weights go where the runtime stage
copies them; the image's CMD runs with the image's ENV from a directory outside the checkout. Offline:
the fresh venv borrows torch and the other dependencies from the dev venv instead of downloading them.
"""

import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.models import REPO_ROOT

ROOT = REPO_ROOT
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
START_TIMEOUT_S = 90  # torch's import and the trained model's warm-up, on two shared cores


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs of this stage, in order (values unexpanded)."""
        pairs = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                pairs[key] = value
        return pairs


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their (KEYWORD, arguments) instructions; continuation lines joined, comments dropped."""
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


def ignore_patterns() -> list[tuple[bool, str]]:
    """.dockerignore as (exclude?, pattern) in order; the last matching pattern decides."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((not negated, line.lstrip("!").rstrip("/")))
    return rules


def is_ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule for one file: a pattern matches the path or any directory above it."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for exclude, pattern in rules:
        if any(fnmatch.fnmatchcase(c, pattern) or (pattern.startswith("**/") and fnmatch.fnmatchcase(c, pattern[3:]))
               for c in candidates):
            ignored = exclude
    return ignored


def copy_sources(stage: Stage) -> list[tuple[list[str], str]]:
    """The COPY instructions that read the build context: (sources, destination)."""
    out = []
    for args in stage.all("COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        if not any(w.startswith("--from") for w in args.split()):
            out.append((words[:-1], words[-1]))
    return out


def context_files(source: str) -> list[Path]:
    """The files under one COPY source that .dockerignore lets into the build context."""
    rules, src = ignore_patterns(), ROOT / source
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    return [p for p in files if not is_ignored(p.relative_to(ROOT).as_posix(), rules)]


def copy_into(sources: list[str], destination: Path) -> None:
    """What `COPY sources destination/` does, from the filtered context: a directory's contents, a file by name."""
    for source in sources:
        src = ROOT / source
        for f in context_files(source):
            target = destination / (f.relative_to(src) if src.is_dir() else f.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)


def dockerfile_args() -> dict[str, str]:
    """ARG name=default, from every stage and the global scope."""
    return dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.M))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(stages) -> Stage:
    return stages[-1]


def test_hadolint_has_no_warnings():
    out = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_three_stages_on_slim_python_and_torch_from_pytorchs_index(stages, runtime):
    args = dockerfile_args()
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    assert [s.base for s in stages] == ["${PYTHON_IMAGE}"] * 3
    assert [s.name for s in stages] == ["build", "vendor", "runtime"]
    assert any("pip wheel" in r and "--no-deps" in r for r in stages[0].all("RUN"))
    torch = [r for r in runtime.all("RUN") if "torch==" in r]
    assert torch and "torch==2.13.0" in torch[0] and '--index-url "${TORCH_INDEX_URL}"' in torch[0]
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    assert any("--from=build" in c for c in runtime.all("COPY"))


def test_the_vendor_stage_runs_the_checked_build_and_the_image_serves_its_output(stages, runtime):
    vendor = stages[1]
    assert vendor.all("RUN")[-1] == "python vendor/build.py"  # the same verified build as `make vendor`
    assert copy_sources(vendor) == [(["vendor/"], "vendor/")]
    (copied,) = [c.split()[-1] for c in runtime.all("COPY") if "--from=vendor" in c]
    assert Path(runtime.env()["DIFFUSION_LAB_VENDOR_DIR"]) == Path(copied)


def test_runs_as_a_non_root_user_exposes_8000_and_checks_healthz(runtime):
    user = runtime.all("USER")[-1].split(":")[0]
    assert user not in ("root", "0") and user.isdigit()  # numeric, so Kubernetes' runAsNonRoot can verify it
    assert runtime.all("EXPOSE") == ["8000"]
    health = runtime.all("HEALTHCHECK")[-1]
    assert "/healthz" in health and "urllib.request" in health and "curl" not in health
    assert json.loads(runtime.all("CMD")[-1]) == ["diffusion-lab", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_the_build_context_holds_what_the_image_needs_and_no_clutter(stages):
    sources = [s for stage in stages for srcs, _ in copy_sources(stage) for s in srcs]
    assert {"pyproject.toml", "README.md", "app/", "templates/", "static/", "bench/results/", "models/",
            "vendor/"} <= set(sources)
    rules = ignore_patterns()
    for kept in ("app/main.py", "templates/base.html", "static/css/lab.css", "models/denoiser.safetensors",
                 "bench/results/scaling.json", "vendor/build.py", "vendor/package-lock.json"):
        assert not is_ignored(kept, rules), kept
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/test_app.py", "static/screenshots/guidance.png",
                    "models/logs/vae.log", "app/__pycache__/main.cpython-311.pyc", "bench/instruments.py",
                    "vendor/dist/manifest.json", "vendor/node_modules/pyodide/pyodide.js"):
        assert is_ignored(dropped, rules), dropped


def test_the_image_sets_the_model_dir_to_where_it_copies_the_weights(runtime):
    (model_copy,) = [dest for srcs, dest in copy_sources(runtime) if srcs == ["models/"]]
    assert Path(runtime.env()["DIFFUSION_LAB_MODEL_DIR"]) == Path(model_copy)


# ---- the image, emulated: wheel -> fresh venv -> the container's command ----

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None, timeout: float = 10):
    """(status, headers, body) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@dataclass
class Image:
    root: Path
    wheel: Path
    venv: Path
    env: dict
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _image_env(runtime: Stage, mapping: dict[str, str], venv: Path) -> dict[str, str]:
    """The runtime stage's ENV with the image's paths mapped onto this test's, in a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFFUSION_LAB_", "PYTHON", "VIRTUAL_ENV"))}
    for key, value in runtime.env().items():
        for image_path, here in mapping.items():
            value = value.replace(image_path, here)
        env[key] = value.replace("$PATH", os.environ["PATH"])
    assert env["PATH"].startswith(str(venv / "bin")), "the image puts its venv first on PATH"
    env["DIFFUSION_LAB_TORCH_THREADS"] = "1"  # not the image's setting: this machine's cores are shared
    env["DIFFUSION_LAB_COMPILE"] = "off"  # nor is compiling in the background for minutes
    return env


@pytest.fixture(scope="module")
def image(stages, runtime, tmp_path_factory) -> Image:
    root = tmp_path_factory.mktemp("image")
    build_src = root / "src"  # the build stage's WORKDIR
    for sources, dest in copy_sources(stages[0]):
        copy_into(sources, build_src / dest)
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--wheel-dir", str(wheels), str(build_src)], check=True, timeout=180)
    (wheel,) = wheels.glob("diffusion_lab-*.whl")

    venv = root / "opt" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; "
                                   "print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # torch & co. from the dev venv, appended after the fresh venv's own site-packages (which wins for `app`).
    (purelib / "_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=180)

    (model_copy,) = [dest for srcs, dest in copy_sources(runtime) if srcs == ["models/"]]
    assert model_copy.startswith("/opt/") and runtime.env()["VIRTUAL_ENV"] == "/opt/venv"
    copy_into(["models/"], root / model_copy.lstrip("/"))  # the image's /opt is this test's root/opt
    # what the vendor stage builds is what `make vendor` built here (the same script)
    (vendor_copy,) = [c.split()[-1] for c in runtime.all("COPY") if "--from=vendor" in c]
    shutil.copytree(ROOT / "vendor" / "dist", root / vendor_copy.lstrip("/"))
    env = _image_env(runtime, {"/opt/": f"{root}/opt/"}, venv)

    workdir = root / "workdir"  # the image's WORKDIR: anywhere but the checkout
    workdir.mkdir()
    port = _free_port()
    cmd = json.loads(runtime.all("CMD")[-1])
    cmd = [str(port) if a == "8000" else a for a in cmd]
    cmd[0] = str(venv / "bin" / cmd[0])
    log = root / "server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT)
    img = Image(root, wheel, venv, env, port, process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _get_status(img.url + "/readyz") != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready in time:\n" + log.read_text()
            time.sleep(0.25)
        yield img
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _get_status(url: str) -> int | None:
    try:
        return _get(url, timeout=2)[0]
    except OSError:
        return None


def test_the_wheel_carries_every_template_and_static_file(image):
    names = set(zipfile.ZipFile(image.wheel).namelist())
    data = "diffusion_lab-0.1.0.data/data/share/diffusion-lab/"
    for source in ("templates/", "static/"):
        for f in context_files(source):
            assert data + f.relative_to(ROOT).as_posix() in names, f"{f} is not in the wheel: widen data-files"
    for f in context_files("bench/results/"):  # the recorded measurements the /benchmarks page shows
        if f.suffix == ".json":
            assert data + f.relative_to(ROOT).as_posix() in names, f"{f} is not in the wheel: widen data-files"
    assert "app/main.py" in names and not any(n.startswith(("tests/", "models/")) for n in names)


def test_the_served_app_is_the_installed_wheel_not_the_checkout(image):
    where = subprocess.run([str(image.venv / "bin" / "python"), "-c",
                            "import app.config as c; print(c.__file__); print(c.Settings().templates_dir)"],
                           cwd=image.root / "workdir", env=image.env, capture_output=True, text=True, check=True)
    module, templates = where.stdout.split()
    assert Path(module).is_relative_to(image.venv) and Path(templates).is_relative_to(image.venv)
    assert not Path(module).is_relative_to(ROOT)


def test_the_container_answers_health_readiness_pages_and_static_files(image):
    status, _, body = _get(image.url + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, body = _get(image.url + "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True and ready["model_loaded"] is True
    assert ready["compiled"]["setting"] == ready["compiled"]["state"] == "off"  # as _image_env() sets it
    status, headers, body = _get(image.url + "/")
    assert status == 200 and "text/html" in headers["content-type"] and b"Diffusion Lab" in body
    status, headers, body = _get(image.url + "/static/css/lab.css")
    assert status == 200 and "text/css" in headers["content-type"]
    assert body == (ROOT / "static" / "css" / "lab.css").read_bytes()


def test_the_container_serves_the_benchmark_results_it_was_built_with(image):
    """bench/results/ travels in the wheel: the installed app finds it away from the checkout, or says it is absent."""
    status, _, body = _get(image.url + "/api/v1/benchmarks/scaling")
    recorded = ROOT / "bench" / "results" / "scaling.json"
    if recorded.is_file():
        assert status == 200 and json.loads(body) == json.loads(recorded.read_text())
    else:
        assert status == 404 and "absent" in json.loads(body)["detail"]
    status, _, body = _get(image.url + "/benchmarks")
    assert status == 200 and f'data-recorded="{str(recorded.is_file()).lower()}"'.encode() in body


def test_the_container_serves_pyodide_and_the_editor_from_its_vendor_dir(image):
    """Away from the checkout, the snippets' files come from where the image copies the vendor stage's output."""
    manifest = json.loads((ROOT / "vendor" / "dist" / "manifest.json").read_text())
    for rel in ("editor/snippet-editor.js", f"pyodide/{manifest['pyodide_version']}/pyodide.asm.wasm"):
        status, headers, body = _get(f"{image.url}/vendor/{rel}")
        assert status == 200 and hashlib.sha256(body).hexdigest() == manifest["files"][rel]["sha256"], rel
    status, _, body = _get(image.url + "/instruments/denoising")
    assert status == 200 and b"not installed" not in body


def test_the_healthcheck_command_passes_against_the_container(image, runtime):
    health = runtime.all("HEALTHCHECK")[-1]
    cmd = json.loads(health[health.index("CMD") + 3:].strip())
    cmd = [a.replace(":8000/", f":{image.port}/") for a in cmd]
    assert subprocess.run(cmd, env=image.env, cwd=image.root / "workdir", timeout=30).returncode == 0


def test_the_container_logs_json_with_the_request_id(image):
    _, headers, _ = _get(image.url + "/api/v1/model", headers={"X-Request-ID": "docker-test-42"})
    assert headers["X-Request-ID"] == "docker-test-42"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in image.log.read_text().splitlines() if line.startswith("{")]
        hits = [r for r in lines if r.get("request_id") == "docker-test-42"]
        if hits:
            break
        time.sleep(0.1)
    assert hits and hits[-1]["route"] == "/api/v1/model" and hits[-1]["status"] == 200
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in lines)
