"""Logging for operators: the request id on every line, as text or as one JSON object per line."""

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by the request middleware; asyncio tasks, to_thread and the sampler's workers inherit it.
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id",
                                                                             "color_message"}


class RequestIdFilter(logging.Filter):
    """Stamps record.request_id with the current request's id ('-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def log_config(level: str = "info", fmt: str = "text") -> dict:
    """A logging.config dict for the app's and uvicorn's loggers: one stderr handler that adds request ids."""
    level = level.upper()
    quiet = {"handlers": ["default"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"text": {"format": TEXT_FORMAT}, "json": {"()": JsonFormatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": fmt, "filters": ["request_id"]}},
        "loggers": {"diffusion_lab": quiet, "uvicorn": quiet, "uvicorn.error": {"level": level},
                    "uvicorn.access": quiet},
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
