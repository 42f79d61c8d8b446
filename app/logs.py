"""Logging set-up: one format, every line with the request id, one line per record.

Request data (a path, a header, an exception message quoting input) can hold
newlines; written as they are, they would start a forged log line. The
formatter escapes CR and LF (and other control characters) in everything it
writes, so a record is always exactly one line.
"""

from __future__ import annotations

import logging
import re

from app.context import request_id_var

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")


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


def configure_logging(level: str) -> None:
    """Idempotent; called by the CLI and again in each server worker process."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
