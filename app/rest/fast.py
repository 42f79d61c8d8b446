"""Fast REST reads: an execution strategy for the hottest GET routes.

``GET /interview-sessions`` (with ``limit`` and ``cursor``) and
``GET /interview-sessions/{id}/details`` are answered here, in front of
Litestar, by the controllers' own functions (``list_page``, the service's
``details``) and with the same JSON, but without Litestar's routing,
parameter extraction, dependency injection and response objects on every
request (they were a third of a list request's time; bench/README.md).

Like the compiled GraphQL plans they fail closed. A request with anything
else in its query string (another parameter, one given twice, a value not
written the one way this module reads exactly as Litestar does), an id that
is not a UUID, or whose service call raises (a bad cursor, another user's
session) is handed to Litestar untouched, which answers it from the start:
these are reads, so nothing was changed by the first try. The pipeline in
front (request id, token, rate limit, CORS, compression) is the same for
both. ``tests/rest/test_fast.py`` compares the two answer by answer.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from app.context import principal_of
from app.domain.service import Service
from app.errors import DomainError
from app.rest.controllers import Call, InterviewSessionController, list_page

ASGIApp = Any  # an ASGI application (Litestar's own is typed more narrowly)

PREFIX = InterviewSessionController.path
_DETAILS = re.compile(
    rf"^{re.escape(PREFIX)}/([0-9a-fA-F]{{8}}-(?:[0-9a-fA-F]{{4}}-){{3}}[0-9a-fA-F]{{12}})/details$"
)
DETAILS_ROUTE = f"{PREFIX}/{{id}}/details"
_LIMIT = re.compile(r"^[1-9][0-9]{0,3}$")  # what Litestar reads as that int, no other spelling
_encode = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")


class Passed(Exception):
    """This request is Litestar's to answer."""


class FastReads:
    def __init__(self, service: Service, litestar: ASGIApp) -> None:
        self.service = service
        self.litestar = litestar
        self.answered = 0  # (tests and operators read these)
        self.passed_on = 0

    def route(self, method: str, path: str) -> ASGIApp | None:
        """The handler of a request this module may answer, or None."""
        if method != "GET" or not path.startswith(PREFIX):
            return None
        if path == PREFIX:
            return self.sessions
        if path.endswith("/details") and _DETAILS.match(path):
            return self.details
        return None

    async def sessions(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["path_template"] = PREFIX
        await self._answer(scope, receive, send, self._sessions)

    async def details(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["path_template"] = DETAILS_ROUTE
        await self._answer(scope, receive, send, self._details)

    async def _answer(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        handler: Callable[[Call, dict[str, Any]], Awaitable[tuple[bytes, bytes | None]]],
    ) -> None:
        principal = principal_of(scope)
        try:
            if principal is None:
                raise Passed()  # Litestar's 401
            body, link = await handler(Call(principal, self.service), scope)
        except (Passed, DomainError) as exc:
            self.passed_on += 1
            state = scope.setdefault("state", {})
            state["strategy"] = "standard"
            state["fallback"] = "an error answer" if isinstance(exc, DomainError) else "the query"
            await self.litestar(scope, receive, send)
            return
        self.answered += 1
        scope.setdefault("state", {})["strategy"] = "fast"
        headers = [_JSON, (b"content-length", b"%d" % len(body))]
        if link is not None:
            headers.insert(0, (b"link", link))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _sessions(self, call: Call, scope: dict[str, Any]) -> tuple[bytes, bytes | None]:
        raw = scope.get("query_string", b"")
        query = parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []
        given = dict(query)
        if len(given) != len(query) or not given.keys() <= {"limit", "cursor"}:
            raise Passed()
        limit = given.get("limit")
        cursor = given.get("cursor")
        if (limit is not None and not _LIMIT.match(limit)) or cursor == "":
            raise Passed()
        if any(not value.isascii() for value in given.values()):
            raise Passed()  # (query strings are read as Latin-1 here, as UTF-8 by Litestar)
        items, link = await list_page(
            call,
            scope["path"],
            query,
            limit=None if limit is None else int(limit),
            cursor=cursor,
        )
        return _encode(items), None if link is None else link.encode("latin-1")

    async def _details(self, call: Call, scope: dict[str, Any]) -> tuple[bytes, bytes | None]:
        if scope.get("query_string"):
            raise Passed()  # an unknown query parameter: Litestar's 400
        match = _DETAILS.match(scope["path"])
        assert match is not None
        return _encode(await call.service.sessions.details(call.user, match[1])), None
