"""Each API's own error body, so a client reads our refusals the way it reads its own server's.

Ours is `{"detail": ...}` (a list of field errors on a 422). The OpenAI Images API (under /v1/) answers
`{"error": {"message", "type", "param", "code"}}`, a bad field included (a 400). AUTOMATIC1111's API (under
/sdapi/) is FastAPI too: its bad fields are our 422, and its other refusals `{"error", "detail", "body", "errors"}`.
The exception handlers (app/web/errors.py) and the middleware answer in the shape of the path's API.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

OPENAI_PREFIX = "/v1/"
A1111_PREFIX = "/sdapi/"


class ErrorShape:
    """Ours: `{"detail": message}`, and a 422 listing the field errors."""

    def body(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
        return {"detail": message}

    def refusal(self, status: int, message: str, headers: Mapping[str, str] | None = None, *,
                param: str | None = None, code: str | None = None) -> JSONResponse:
        return JSONResponse(self.body(status, message, param=param, code=code), status, headers=headers)

    def invalid(self, errors: list[dict]) -> JSONResponse:
        """A request whose fields break the rules: `errors` are pydantic's items (`loc`, `msg`, `type`)."""
        return JSONResponse({"detail": errors}, 422)


def _field(error: dict) -> str | None:
    """The field an error names (its loc after `body` or `query`), or None for the body as a whole."""
    names = [str(part) for part in error.get("loc", ())[1:] if isinstance(part, str)]
    return ".".join(names) or None


class OpenAIShape(ErrorShape):
    """The OpenAI API's error object; a bad field is a 400 naming it in `param`, its rule in `code`."""

    CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
             429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}

    @staticmethod
    def error_type(status: int) -> str:
        if status == 429:
            return "requests"  # what OpenAI's own rate limits say
        return "server_error" if status >= 500 else "invalid_request_error"

    def body(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
        return {"error": {"message": message, "type": self.error_type(status), "param": param,
                          "code": code or self.CODES.get(status)}}

    @staticmethod
    def _message(error: dict) -> str:
        field = _field(error)
        if field is None:
            return error["msg"]
        if error.get("type") == "extra_forbidden":
            return f"Unknown parameter: '{field}'"
        return f"Invalid value for '{field}': {error['msg']}"

    def invalid(self, errors: list[dict]) -> JSONResponse:
        first = errors[0]
        return self.refusal(400, "; ".join(map(self._message, errors)), param=_field(first), code=first.get("type"))


class A1111Shape(ErrorShape):
    """AUTOMATIC1111's refusal body (its API middleware's), whose `detail` is ours; bad fields are our 422."""

    def body(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
        return {"error": code or "HTTPException", "detail": message, "body": "", "errors": message}


OURS, OPENAI, A1111 = ErrorShape(), OpenAIShape(), A1111Shape()


def shape_for(path: str) -> ErrorShape:
    """The error shape of the API `path` (as the app routes it, without root_path) belongs to."""
    if path.startswith(OPENAI_PREFIX):
        return OPENAI
    if path.startswith(A1111_PREFIX):
        return A1111
    return OURS
