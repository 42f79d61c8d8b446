"""Correct ``Allow`` on automatic OPTIONS answers.

Litestar builds an OPTIONS handler per route handler; when several handlers
share a path (GET, PUT and DELETE on /interview-sessions/{id}) the one that
answers lists only some of the methods. The gateway calls this fix on OPTIONS
answers only, rewriting ``Allow`` from the merged route, so clients (and
schemathesis) see every supported method.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute


def allow_header_fixer(app: Litestar) -> Any:
    allowed: dict[int, bytes] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            methods = ", ".join(sorted(route.methods)).encode()
            for handler in route.route_handlers:
                if "OPTIONS" in handler.http_methods:
                    allowed[id(handler)] = methods

    def fix(message: Any, scope: Any) -> None:
        methods = allowed.get(id(scope.get("route_handler")))
        if methods is not None:
            message["headers"] = [
                (k, methods if k.lower() == b"allow" else v) for k, v in message["headers"]
            ]

    return fix
