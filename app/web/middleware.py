"""ASGI middleware for operators: request ids, access log and metrics; the API key on generation."""

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.dialects.shapes import shape_for
from app.web.logs import request_id_var
from app.web.metrics import UNMATCHED_ROUTE, Metrics

REQUEST_ID_HEADER = "X-Request-ID"
MAX_BODY_BYTES = 64 * 1024  # the largest request any endpoint takes is a few hundred bytes
PROTECTED_PREFIX = "/api/v1/generate"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: access-logged at debug only
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

access_log = logging.getLogger("diffusion_lab.access")
log = logging.getLogger("diffusion_lab")


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the root_path a proxy prefix adds (servers differ on including it)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def route_label(scope: Scope, path: str, root_path: str) -> str:
    """The template of the route that answered (`/api/v1/generate`, `/static/{path}`), never the raw path.

    Called after routing with the request's path and root_path as they came in (a Mount rewrites root_path).
    """
    route = scope.get("route")
    template, regex = getattr(route, "path", None), getattr(route, "path_regex", None)
    if template is not None:
        # A route of an included router may know only its own part; the router's prefix is what precedes it.
        for i, char in enumerate(path):
            if char == "/" and regex is not None and regex.fullmatch(path[i:]):
                return path[:i] + template
        return template
    mounted = scope.get("root_path", root_path)
    if mounted != root_path and mounted.startswith(root_path):  # a Mount (static files) took a prefix
        return mounted[len(root_path):] + "/{path}"
    return UNMATCHED_ROUTE


def request_id(headers: Headers) -> str:
    """The client's X-Request-ID when it is short and plain, else a fresh uuid4."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


class RequestContextMiddleware:
    """X-Request-ID on every response and log line; one access-log line and the request metrics per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Headers(scope=scope))
        token = request_id_var.set(rid)
        method, root_path, path = scope["method"], scope.get("root_path", ""), route_path(scope)
        started, status = time.perf_counter(), 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by Starlette's outer handler, so the 500 carries the id and the log line too.
            log.exception("unhandled error on %s %s", method, _CONTROL.sub("?", path))
            if response_started:
                raise
            await JSONResponse({"detail": "internal server error", "request_id": rid}, 500)(scope, receive,
                                                                                           send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = route_label(scope, path, root_path)
            self.metrics.observe_request(method, route, status, elapsed)
            shown = _CONTROL.sub("?", path)  # a decoded %0A in the path must not forge a log line
            access_log.log(logging.DEBUG if path in QUIET_PATHS else logging.INFO,
                           "%s %s %d %.1f ms", method, shown, status, elapsed * 1e3,
                           extra={"method": method, "path": shown, "route": route, "status": status,
                                  "duration_ms": round(elapsed * 1e3, 2)})
            request_id_var.reset(token)


class ApiKeyMiddleware:
    """401 without the key (in X-API-Key, Authorization: Bearer, or as a Basic password) for any request under
    /api/v1/generate and on `protected`, the paths of every route that runs the networks (app/web/app.py finds them
    in the route table)."""

    def __init__(self, app: ASGIApp, api_key: str, protected: frozenset[str] = frozenset()):
        self.app, self.protected = app, protected
        self._digest = hashlib.sha256(api_key.encode()).digest()

    @staticmethod
    def given_key(headers: Headers) -> str:
        """The key a request sends: X-API-Key, a Bearer token, or the password of HTTP Basic credentials (the one way
        AUTOMATIC1111's clients have to send a secret); "" when none."""
        given = headers.get("x-api-key")
        if given is not None:
            return given
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(token.strip(), validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return ""
        return ""

    def authorised(self, headers: Headers) -> bool:
        """Constant-time: both sides hashed to 32 bytes, so neither the key's content nor its length leaks."""
        return hmac.compare_digest(hashlib.sha256(self.given_key(headers).encode()).digest(), self._digest)

    def guards(self, path: str) -> bool:
        return path.startswith(PROTECTED_PREFIX) or path in self.protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] != "OPTIONS"
                and self.guards(route_path(scope)) and not self.authorised(Headers(scope=scope))):
            response = shape_for(route_path(scope)).refusal(
                401, "this endpoint needs the server's API key: send it as `X-API-Key: <key>` "
                     "or `Authorization: Bearer <key>`", {"WWW-Authenticate": 'Bearer realm="diffusion-lab"'})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for a request body over max_bytes: at once by its Content-Length, else once it has streamed past.

    The body is read (at most max_bytes of it) before the app runs and handed on as it came, so no endpoint ever
    reads more; afterwards the app receives from the client directly (a stream watches for the disconnect).
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        messages, received, too_large = [], 0, length.isdigit() and int(length) > self.max_bytes
        while not too_large:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            too_large = received > self.max_bytes
            if not message.get("more_body", False):
                break
        if too_large:
            answer = shape_for(route_path(scope)).refusal(413, f"the request body is over {self.max_bytes} bytes")
            await answer(scope, receive, send)
            return

        async def replayed() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replayed, send)
