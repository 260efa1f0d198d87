"""Logging: JSON lines when not writing to a terminal (for log shippers), readable text when
a person is watching. API keys are never logged: only key ids are."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from conveyor.config import Settings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{name}={value}"
            for name in ("request_id", "job_id")
            if (value := getattr(record, name, None)) is not None
        ]
        return f"{line} [{' '.join(context)}]" if context else line


class ContextFilter(logging.Filter):
    """Stamps each record with the request and job it was written for, when it is made
    (a formatter running later, or elsewhere, would no longer know)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None and (current := request_id.get()):
            record.request_id = current
        if getattr(record, "job_id", None) is None and (current_job := job_id.get()):
            record.job_id = current_job
        return True


def configure_logging(settings: Settings) -> None:
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # httpx logs every request it sends at INFO: a worker's claims and reports would
    # drown what matters. Alembic says at INFO each plugin it sets up and each step it
    # runs (`serve --migrate` imports it after this, only when it migrates).
    for noisy in ("uvicorn.access", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
