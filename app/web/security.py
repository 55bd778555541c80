"""Security headers on every response: a Content-Security-Policy, nosniff, no framing, no referrer."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.middleware import route_path

# The app's pages load only their own scripts (Plotly from /vendor); style-src keeps 'unsafe-inline' because the
# templates use style= attributes and Plotly injects <style> elements; img-src needs data: for the generated PNGs.
APP_CSP = (
    "default-src 'self'; "
    "script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's Swagger UI starts from an inline <script> and ReDoc runs in a blob: worker; both pages are static
# (no user input is echoed), so they get 'unsafe-inline' scripts, still limited to this origin.
DOCS_CSP = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self' data:; "
    "connect-src 'self'; "
    "worker-src 'self' blob:; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
# The snippet worker runs Pyodide, which compiles WebAssembly: that needs 'wasm-unsafe-eval' (not 'unsafe-eval').
# A worker is governed by the policy of its own script's response, not its page's, so this one script gets it and
# every page keeps APP_CSP. Its connect-src 'self' keeps the reader's code from reaching any other host.
SNIPPET_WORKER_PATH = "/static/js/snippet_worker.js"
SNIPPET_WORKER_CSP = APP_CSP.replace("script-src 'self';", "script-src 'self' 'wasm-unsafe-eval';")
POLICIES = {**dict.fromkeys(DOCS_PATHS, DOCS_CSP), SNIPPET_WORKER_PATH: SNIPPET_WORKER_CSP}  # the rest: APP_CSP
FIXED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def security_headers(path: str) -> dict[str, str]:
    """The headers a response to `path` (as the app routes it, without root_path) carries."""
    return {"Content-Security-Policy": POLICIES.get(path, APP_CSP), **FIXED_HEADERS}


class SecurityHeadersMiddleware:
    """Adds security_headers() to every HTTP response, errors included; a header a route set itself is kept."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(route_path(scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
