"""The layout's rule, read from the source: imports point one way, FastAPI stays in web/, no cycles, no giants.

Every module's imports (module level and inside functions) are read with `ast`, so a wrong arrow fails here
before it is ever executed. README.md's "Layout" section states the same rule for people.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.models import REPO_ROOT

APP = REPO_ROOT / "app"
MAX_LINES = 500

# Each room of app/ and the rooms it may import (besides itself and the `app` package's own __init__).
BASE = {"diffusion", "nets", "world"}
MAY_IMPORT = {
    "config": set(),
    "instruments": set(),
    "diffusion": set(),
    "nets": set(),
    "world": set(),
    "measure": {"world"},
    "pipelines": BASE,
    "service": BASE | {"pipelines", "measure"},
    "lab": BASE | {"pipelines", "measure", "instruments"},
    "training": BASE | {"measure"},
    "evaluation": BASE | {"pipelines", "measure"},
    "web": BASE | {"config", "service", "pipelines", "measure", "lab", "instruments"},
    "main": {"web"},
    "server": {"config", "main", "web"},
    "cli": {"config", "server", "training", "evaluation"},
}
WEB_ONLY = ("fastapi", "starlette", "fastapi_offline")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, anywhere in the file."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")}
    return found


def _is_module(name: str) -> bool:
    path = REPO_ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def room(module: str) -> str | None:
    """`app.web.routes.pages` -> `web`; None for the `app` package itself and for other libraries."""
    parts = module.split(".")
    return parts[1] if parts[0] == "app" and len(parts) > 1 else None


MODULES = {module_name(p): p for p in sorted(APP.rglob("*.py"))}
IMPORTS = {name: imported_modules(path) for name, path in MODULES.items()}


def test_every_room_of_app_is_known_to_the_rule():
    assert {room(name) for name in MODULES} - {None} <= set(MAY_IMPORT)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_one_way(name):
    own = room(name)
    wrong = sorted(m for m in IMPORTS[name]
                   if room(m) not in (None, own) and room(m) not in MAY_IMPORT.get(own, set()))
    assert not wrong, f"{name} ({own}) may import only {sorted(MAY_IMPORT.get(own, set()))}, not {wrong}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_web_layer_imports_fastapi(name):
    if room(name) == "web":
        return
    web = sorted(m for m in IMPORTS[name] if m.split(".")[0] in WEB_ONLY)
    assert not web, f"{name} imports {web}: HTTP belongs in app/web/"


def test_no_import_cycle():
    graph = {name: {m for m in IMPORTS[name] if m in MODULES and m != name} for name in MODULES}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_importing_the_served_app_loads_no_training_code():
    # (tqdm is not checked: `import torch` loads it on its own, through torch.hub)
    code = ("import sys, app.main, app.cli; "
            "bad = sorted(m for m in sys.modules if m.startswith(('app.training', 'app.evaluation'))); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_a_giant(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concern"
