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

import atexit
import logging
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

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


class AccessSink:
    """The access log's own writer: one record per request is the one log line
    that is written thousands of times a second, and the logging module's
    record, formatter and flushed write cost ~20 us each (12-15% of a small
    GraphQL read, bench "metrics and access log cost"). The line is the one the
    configured format writes (text: ``time INFO app.access [id] message``; JSON:
    the same keys as :class:`JsonFormatter`), made here and appended to a
    buffer written out by a thread every ``interval`` seconds (and at exit), so
    the request pays for neither the formatter nor a system call. A record can
    reach the stream up to ``interval`` after the lines of other loggers."""

    def __init__(self, stream: TextIO, json: bool, interval: float = 0.2) -> None:
        self.stream = stream
        self.json = json
        self.interval = interval
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self._second = -1
        self._prefix = ""
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            if self.json:
                self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            else:
                self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        if self.json:
            return f"{self._prefix}.{millis:03d}+00:00"
        return f"{self._prefix},{millis:03d}"

    def write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        now = time.time()
        if self.json:
            line: dict[str, Any] = {
                "time": self._time(now),
                "level": level,
                "logger": "app.access",
                "message": message,
                "request_id": fields.get("request_id"),
            }
            if tracing_on:
                trace_id = _trace_id()
                if trace_id is not None:
                    line["trace_id"] = trace_id
            for key, value in fields.items():
                line.setdefault(key, value)
            text = _encode(line).decode()
        else:
            rid = fields.get("request_id")
            text = f"{self._time(now)} {level} app.access [{rid}] {message}"
            if not text.isprintable():  # a control character: escaped (one line)
                text = _CONTROL.sub(_escape, text)
        with self.lock:
            self.lines.append(text)

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed stream at exit
                pass

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()


# Set when traces are recorded (app/tracing.py): lines then carry the trace id.
tracing_on = False

# Installed by configure_logging (None: access records go through logging).
access_sink: AccessSink | None = None


def configure_logging(level: str, log_format: str = "text") -> None:
    """Idempotent; called by the CLI and again in each server worker process."""
    global access_sink
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else OneLineFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if access_sink is None:
        access_sink = AccessSink(sys.stderr, json=log_format == "json")
    else:
        access_sink.flush()
        access_sink.json = log_format == "json"
