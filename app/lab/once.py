"""Live measurements taken once per server process and key, then served from memory marked `cached` until someone
asks for a fresh one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any


class MeasuredOnce:
    """A cache of frozen-dataclass results with a `cached` field; one lock, so two first asks measure once and
    never compete with each other for the cores."""

    def __init__(self) -> None:
        self._results: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, measure: Callable[[], Any], refresh: bool = False) -> Any:
        """measure() the first time for key, or whenever refresh; otherwise the stored result with cached=True."""
        with self._lock:
            if key in self._results and not refresh:
                return replace(self._results[key], cached=True)
            result = self._results[key] = measure()
            return result
