"""Logging set-up: one format, every line with the request id, one line per record.

``LOG_FORMAT=text`` (the default) writes ``time level logger [request id]
message``; ``LOG_FORMAT=json`` writes each record as one JSON object with
``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``request_id``,
``trace_id`` while a trace is recorded, ``exception`` when there is one, and
an access record's fields (app/pipeline/access.py) as its own keys.

Request data (a path, a header, an exception message quoting input) can hold
newlines; written as they are, they would start a forged log line. The text
formatter escapes CR and LF (and other control characters) in everything it
writes, and JSON escapes them by itself, so a record is always exactly one line.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
from opentelemetry.trace import get_current_span

from app.context import request_id_var

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LOG_FORMATS = frozenset({"text", "json"})
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_encode = msgspec.json.Encoder(enc_hook=str).encode


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")


def _trace_id() -> str | None:
    """The current span's trace id, when OpenTelemetry records one."""
    context = get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class OneLineFormatter(logging.Formatter):
    """The standard formatter, with control characters escaped: a traceback is
    kept, but as one line (``\\n`` between its lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return _CONTROL.sub(_escape, super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        trace_id = _trace_id()
        if trace_id is not None:
            line["trace_id"] = trace_id
        access = getattr(record, "access", None)
        if access is not None:
            for key, value in access.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line).decode()


def configure_logging(level: str, log_format: str = "text") -> None:
    """Idempotent; called by the CLI and again in each server worker process."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else OneLineFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
