"""A snippet run the way the reader's browser runs it, under CPython: static/py/snippet_runtime.py's run()."""

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from functools import cache

from tests.helpers.models import REPO_ROOT

RUNTIME_PATH = REPO_ROOT / "static" / "py" / "snippet_runtime.py"


@cache
def runtime():
    """The module the worker imports in the browser, loaded from its file."""
    spec = importlib.util.spec_from_file_location("snippet_runtime", RUNTIME_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("snippet_runtime", module)
    spec.loader.exec_module(module)
    return module


@dataclass
class Ran:
    """What a run posted to the page, message by message and gathered."""

    ok: bool = False
    messages: list[tuple[str, dict]] = field(default_factory=list)

    def chunks(self) -> list[list[str]]:
        return [chunk for kind, m in self.messages if kind == "output" for chunk in m["chunks"]]

    @property
    def output(self) -> str:
        """stdout and stderr interleaved, as the page's terminal shows them."""
        return "".join(text for _, text in self.chunks())

    def stream(self, name: str) -> str:
        return "".join(text for stream, text in self.chunks() if stream == name)

    def posted(self, kind: str) -> list[dict]:
        return [m for k, m in self.messages if k == kind]

    @property
    def values(self) -> dict:
        (done,) = self.posted("done")
        return done["values"]


def run_code(source: str, filename: str = "snippet.py", report=(), post=None) -> Ran:
    """Run `source` with the runtime; every message goes through JSON as it does between worker and page."""
    ran = Ran()

    def collect(kind: str, text: str) -> None:
        ran.messages.append((kind, json.loads(text)))
        if post is not None:
            post(kind, text)

    ran.ok = runtime().run(source, filename, list(report), collect)
    return ran
