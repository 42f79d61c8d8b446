"""The access log: one record per HTTP request and per WebSocket operation.

Written by the pipeline when the answer ends (logger ``app.access``, INFO,
``ACCESS_LOG=false`` turns it off). Its fields (operations.md): ``method``,
``path`` (with the query string, an ``access_token`` written as ``***``),
``route`` (the route's template, ``unmatched`` for an unknown path), ``status``,
``duration_ms``, ``client``, ``user`` (the token's ``sub``), ``request_id``, and
for GraphQL ``operation_name``/``operation_type`` and ``strategy`` (which
execution strategy answered: ``compiled``, ``standard``, ``compiled+standard``
or, for the REST reads, ``fast``/``standard``) with ``fallback`` (why a compiled
plan did not answer). The text format writes them as ``key=value`` after
``METHOD path status duration``; ``LOG_FORMAT=json`` as the record's keys.

Probes (``/health``, ``/ready``, ``/metrics``) answering 2xx are written at
DEBUG: they are frequent and say nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from app import logs

log = logging.getLogger("app.access")

PROBES = frozenset({"/health", "/ready", "/metrics"})
_SECRET = re.compile(rb"(?i)((?:^|&)access_token=)[^&]*")
_PARAMETER = re.compile(r"\{[A-Za-z_]*id(?::[a-z]+)?\}")
_routes: dict[str, str] = {}
# Scope state keys copied into the record when present.
_STATE = ("operation_name", "operation_type", "strategy", "fallback")


def route_of(template: str) -> str:
    """The route template as dashboards know it: ids are ``{id}``."""
    route = _routes.get(template)
    if route is None:
        route = _PARAMETER.sub("{id}", template)
        if len(_routes) < 1000:
            _routes[template] = route
    return route


def path_of(scope: dict[str, Any]) -> str:
    query: bytes = scope.get("query_string") or b""
    if not query:
        return str(scope["path"])
    if b"access_token" in query.lower():
        query = _SECRET.sub(rb"\1***", query)
    return f"{scope['path']}?{query.decode('latin-1')}"


def enabled() -> bool:
    return log.isEnabledFor(logging.INFO)


def write(
    scope: dict[str, Any],
    method: str,
    status: int | str,
    duration: float,
    route: str | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """One access record (the caller checked :func:`enabled` where it matters)."""
    if state is None:
        state = scope.get("state") or {}
    if route is None:
        template = scope.get("path_template")
        route = route_of(template) if template else state.get("route", "unmatched")
    level = logging.INFO
    if route in PROBES and isinstance(status, int) and status < 400:
        level = logging.DEBUG
        if not log.isEnabledFor(level):
            return
    principal = state.get("principal")
    client = scope.get("client")
    path = path_of(scope)
    duration_ms = round(duration * 1000, 2)
    user = principal.user_id if principal is not None else None
    address = client[0] if client else None
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        "client": address,
        "user": user,
        "request_id": state.get("request_id"),
    }
    tail = [f"route={route}"]
    if address is not None:
        tail.append(f"client={address}")
    if user is not None:
        tail.append(f"user={user}")
    for key in _STATE:
        value = state.get(key)
        if value is not None:
            fields[key] = value
            tail.append(f"{key}={value}")
    message = f"{method} {path} {status} {duration_ms}ms {' '.join(tail)}"
    sink = logs.access_sink
    if sink is not None and not log.handlers and log.propagate:
        # Our own logging set-up: the buffered writer (app/logs.py).
        sink.write("INFO" if level == logging.INFO else "DEBUG", message, fields)
        return
    log.log(level, "%s", message, extra={"access": fields})
