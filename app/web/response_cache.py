"""The instruments' answers, kept as the JSON bytes sent: each is a pure function of its validated query.

A classroom moves the same sliders over the same positions, so most readers ask what someone already asked. An
instrument route validates its query as before (a bad one is still a 422), then looks the query up here, on the
event loop; only a query not seen yet runs the instrument, validates its answer against the response model and
serialises it, on a worker thread, one at a time. One at a time because the instruments are short numpy runs that
hold the GIL most of the time: 32 threads computing at once on two cores spent most of it handing the GIL over
(guidance at new slider positions: 68 to 91 requests/s with the server's thread pool on two quiet cores, 4 to 5x
fewer than one at a time; BENCHMARKS.md). Entries are bounded by their total size (least recently used go first), so a reader asking for
1000-step walks cannot grow the cache past `max_bytes`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import anyio
from fastapi.responses import Response
from pydantic import BaseModel

DEFAULT_MAX_BYTES = 16 * 2**20


class ResponseCache:
    """JSON bodies by key, least recently used dropped first once they exceed max_bytes in all."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None  # made on the event loop, at the first miss
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._bodies)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def answer(self, key: Hashable, make: Callable[[], BaseModel]) -> Response:
        """The cached body for key, or make()'s model serialised (and kept), as an application/json response."""
        body = self._lookup(key)
        if body is None:
            body = make().model_dump_json().encode()
            self._keep(key, body)
        return Response(body, media_type="application/json")

    async def answer_async(self, key: Hashable, make: Callable[[], BaseModel]) -> Response:
        """answer() for an async route: a hit straight from the event loop, a miss made on a worker thread, one miss
        at a time."""
        body = self._lookup(key)
        if body is None:
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(1)
            body = await anyio.to_thread.run_sync(lambda: make().model_dump_json().encode(), limiter=self._limiter)
            self._keep(key, body)
        return Response(body, media_type="application/json")

    def _lookup(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
                self.hits += 1
        return body

    def _keep(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            self.misses += 1
            if key in self._bodies:
                return
            self._bodies[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._bytes -= len(dropped)


def query_key(name: str, query: BaseModel) -> tuple:
    """A hashable key for a validated query: the endpoint and its fields' values, in field order."""
    return (name, *(_hashable(v) for v in query.model_dump().values()))


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value
