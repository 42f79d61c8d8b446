"""The one pipeline every answer passes: the ASGI layer in front of both faces.

Per HTTP request (and WebSocket upgrade), once: a request id (the client's
``X-Request-ID`` or a new one, echoed on the response and put in every log
line), the bearer token verified into a :class:`Principal` (or ``None``; each
face decides what an anonymous request may do), the rate limit (see
:mod:`app.ratelimit`), the body cap announced by ``Content-Length``. Because it
wraps the whole Litestar app, it also sees unknown routes, 405s, errors and
every GraphQL answer, whichever strategy executed it: a header set here is set
on every answer. It imports only downward (context, auth, limiter).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from app.auth import Authenticator
from app.context import Scope, error_bytes, request_id_var
from app.domain.records import Principal
from app.errors import INTERNAL_ERROR, DomainError
from app.ratelimit import RateLimiter, Verdict

ASGIApp = Any

log = logging.getLogger("app.pipeline")
# Echoed ids: printable ASCII without spaces, so they cannot break a log line.
_SAFE_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")
_SLASHES = re.compile(r"/{2,}")

EXEMPT_PATHS = frozenset({"/health"})


class Pipeline:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        limiter: RateLimiter | None = None,
        protected: tuple[str, ...] = (),
        max_body_bytes: int = 1024 * 1024,
        fix_options: Callable[[dict[str, Any], Scope], None] | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        # Path prefixes no anonymous request may enter (401 before any parsing).
        self.protected = protected
        self.max_body_bytes = max_body_bytes
        self.fix_options = fix_options  # applied to OPTIONS answers only
        self._limiter_failure_logged = -1e9

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _SAFE_ID.match(value):
                    request_id = value.decode()
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        if request_id is None:
            request_id = next_request_id()

        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = None
        extra_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        token = request_id_var.set(request_id)
        try:
            principal: Principal | None = None
            if authorization is not None:
                try:
                    principal = self.authenticator.principal_from_header(authorization)
                except DomainError:
                    principal = None
            state["principal"] = principal
            await self._handle(scope, receive, send, principal, extra_headers)
        except Exception:
            # Litestar answers for everything below it; this catches what fails
            # here, so even that answer has the contract's body and our headers.
            log.exception("unhandled error in the pipeline")
            with contextlib.suppress(Exception):  # fails if the response had started
                await _send_error(send, 500, INTERNAL_ERROR, extra_headers)
        finally:
            request_id_var.reset(token)

    async def _handle(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        principal: Principal | None,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> None:
        path = scope["path"]
        if "//" in path:
            path = _SLASHES.sub("/", path)
        if self.limiter is not None and path not in EXEMPT_PATHS:
            key = f"user:{principal.user_id}" if principal else f"ip:{_client(scope)}"
            verdict = await self._limit(key)
            if verdict is not None:
                extra_headers.extend(verdict.headers())
                if not verdict.allowed:
                    await _send_error(send, 429, verdict.message(), extra_headers)
                    return
        if principal is None and path.startswith(self.protected):
            await _send_error(send, 401, "Unauthorized", extra_headers)
            return

        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            # Announced too large: refused before a byte of it is read.
            await _send_error(send, 413, "Request Entity Too Large", extra_headers)
            return

        fix = self.fix_options if scope["method"] == "OPTIONS" else None

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if fix is not None:
                    fix(message, scope)
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        """The upgrade gets a request id (on the 101 answer and in the logs) and
        its principal, from the upgrade's Authorization header if any."""
        request_id = None
        principal = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SAFE_ID.match(value):
                request_id = value.decode()
            elif name == b"authorization":
                with contextlib.suppress(DomainError):
                    principal = self.authenticator.principal_from_header(value.decode("latin-1"))
        request_id = request_id or next_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = principal

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    async def _limit(self, key: str) -> Verdict | None:
        """The limiter's verdict; None (let the request through) when its storage
        fails: an unreachable Redis must not take the API down with it."""
        assert self.limiter is not None
        try:
            return await self.limiter.hit(key)
        except Exception:
            now = time.monotonic()
            if now - self._limiter_failure_logged > 10:
                self._limiter_failure_logged = now
                log.exception("rate limit storage failed; requests are not being limited")
            return None


_ID_PREFIX = uuid.uuid4().hex[:12]
_ids = itertools.count(1)


def next_request_id() -> str:
    """Unique per process start and request, without a random draw per request."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _send_error(
    send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = error_bytes(status, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
