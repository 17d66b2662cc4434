"""Structured logs: one JSON object per line when FHIR_MODULE_LOG_FORMAT=json.

Each line has `time` (UTC, ISO 8601), `level`, `logger` and `message`, an `exception` when there is
one, and what the request it belongs to said about itself: the service and the `hookInstance` the
EHR sent (so one EHR call can be followed through the access line, fetch warnings and errors), the
number of cards answered. Access lines also carry `client`, `method`, `path` (query values never
shown) and `status`. Secrets are redacted before a line is formatted (redaction.py).
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
from typing import Any

# What the current request said about itself (set by the routes; read by every log line).
request_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fhir_module_request_context", default=None)


def note_request(**fields: Any) -> None:
    """Add fields to the current request's context (a fresh one per request)."""
    context = request_context.get()
    if context is None:
        request_context.set(dict(fields))
    else:
        context.update(fields)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            line.update(message=f"{method} {path} {status}", client=str(client), method=method, path=path,
                        status=status, httpVersion=version)
        else:
            line["message"] = record.getMessage()
        line.update(request_context.get() or {})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "fhir_module")


def install_json_logs() -> None:
    """Format every handler of the service's loggers as JSON lines."""
    formatter = JsonFormatter()
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
