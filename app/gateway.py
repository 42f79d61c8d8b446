"""The ASGI layer in front of both faces, so it also sees unknown routes.

Per HTTP request, once: a request id (the client's ``X-Request-ID`` or a new
one, echoed on the response and put in every log line), the bearer token
verified into a :class:`Principal` (or ``None``; each face decides what an
anonymous request may do), and the rate limit (see :mod:`app.ratelimit`).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from app.auth import Authenticator
from app.domain.records import Principal
from app.errors import INTERNAL_ERROR, DomainError
from app.ratelimit import RateLimiter, Verdict
from app.rest.errors import error_bytes

Scope = dict[str, Any]
ASGIApp = Any

log = logging.getLogger("app.gateway")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Echoed ids: printable ASCII without spaces, so they cannot break a log line.
_SAFE_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")
_SLASHES = re.compile(r"/{2,}")

EXEMPT_PATHS = frozenset({"/health"})


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def principal_of(scope: Scope) -> Principal | None:
    state = scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else None


def request_id_of(scope: Scope) -> str:
    return str((scope.get("state") or {}).get("request_id", "-"))


class Gateway:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        limiter: RateLimiter | None = None,
        protected: tuple[str, ...] = (),
        graphql: FastGraphQL | None = None,
        max_body_bytes: int = 1024 * 1024,
        fix_options: Callable[[dict[str, Any], Scope], None] | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        # Path prefixes no anonymous request may enter (401 before any parsing).
        self.protected = protected
        # Compiled GraphQL queries answered here; anything else goes on to Strawberry.
        self.graphql = graphql
        self.max_body_bytes = max_body_bytes
        self.fix_options = fix_options  # applied to OPTIONS answers only
        self._limiter_failure_logged = -1e9

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = None
        authorization = None
        json_body = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _SAFE_ID.match(value):
                    request_id = value.decode()
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                json_body = value.startswith(b"application/json")
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
            await self._handle(
                scope, receive, send, principal, request_id, json_body, extra_headers
            )
        except Exception:
            # Litestar answers for everything below it; this catches what fails
            # here, so even that answer has the contract's body and our headers.
            log.exception("unhandled error in the gateway")
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
        request_id: str,
        json_body: bool,
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

        if (
            self.graphql is not None
            and json_body
            and scope["method"] == "POST"
            and scope["path"] == GRAPHQL_PATH
        ):
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await _send_error(send, 413, "Request Entity Too Large", extra_headers)
                return
            answer = await self.graphql.answer(body, principal, request_id)
            if answer is not None:
                await _send_json(send, answer, extra_headers)
                return
            receive = _replay(body)

        fix = self.fix_options if scope["method"] == "OPTIONS" else None

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if fix is not None:
                    fix(message, scope)
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

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


GRAPHQL_PATH = "/graphql"


class FastGraphQL(Protocol):
    async def answer(
        self, body: bytes, principal: Principal | None, request_id: str
    ) -> bytes | None: ...


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past ``limit``."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    """A receive() that hands the already-read body to the next app."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
