"""The one pipeline every answer passes: the ASGI layer in front of both faces.

Per HTTP request (and WebSocket upgrade), once and in this order:

1. the request id (the client's ``X-Request-ID`` or a new one), on the answer
   and in every log line;
2. one ``send`` for everything that follows, which adds the request id, the
   CORS headers (:mod:`.cors`) and compresses (:mod:`.compression`), so an
   answer the pipeline gives itself is dressed exactly like one from a route;
3. a CORS preflight is answered here: no token, no rate-limit budget;
4. the bearer token, verified into a :class:`Principal` (or ``None``; each
   face decides what an anonymous request may do);
5. the rate limit (:mod:`app.ratelimit`), with its ``RateLimit-*`` headers;
6. 401 for anonymous requests to the REST routes, 413 for a body announced
   too large by ``Content-Length`` (before a byte of it is read).

Because it wraps the whole Litestar app it also sees unknown routes, 405s,
errors, the docs and every GraphQL answer, whichever strategy executed it. It
imports only downward (context, auth, limiter).
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
from urllib.parse import parse_qsl

import msgspec

from app import access, metrics, tracing
from app.auth import Authenticator
from app.context import (
    BodyTooLarge,
    ClientGone,
    Scope,
    error_bytes,
    read_body,
    replay,
    request_id_var,
)
from app.domain.records import Principal
from app.errors import INTERNAL_ERROR, DomainError
from app.idempotency import BAD_KEY, Idempotency
from app.metrics import RATE_LIMITED
from app.pipeline.compression import choose, compressing
from app.pipeline.cors import Cors
from app.ratelimit import RateLimiter, Verdict

ASGIApp = Any
Send = Callable[[dict[str, Any]], Any]

log = logging.getLogger("app.pipeline")
# Echoed ids: printable ASCII without spaces, so they cannot break a log line.
_SAFE_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")
_SLASHES = re.compile(r"/{2,}")

# No token, no rate-limit budget: probes, metrics, and the IDE's and docs'
# pages and files (a page loads a dozen files; behind a proxy every user's
# IDE would share one bucket).
_EVENT_STREAM = re.compile(r"^/interview-sessions/(?:events|[^/]+/events)$")


def _query_token(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string") or b""
    if b"access_token=" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "access_token" and value:
            return f"Bearer {value}"
    return None


EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics", "/schema"})
EXEMPT_PREFIXES = ("/static/", "/schema/")


def exempt(method: str, path: str, scope: Scope) -> bool:
    if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
        return True
    # GraphiQL's page (GET /graphql asking for HTML, no query): not a request
    # of the API.
    return (
        path == "/graphql"
        and method == "GET"
        and not scope.get("query_string")
        and any(n == b"accept" and b"text/html" in v for n, v in scope["headers"])
    )


class Request:
    """What the pipeline reads from the request headers, in one pass."""

    __slots__ = (
        "accept_encoding",
        "authorization",
        "content_length",
        "host",
        "idempotency_key",
        "origin",
        "preflight_headers",
        "preflight_method",
        "request_id",
    )

    def __init__(self, scope: Scope) -> None:
        self.request_id: str | None = None
        self.authorization: str | None = None
        self.origin: str | None = None
        self.host: str | None = None
        self.accept_encoding: bytes | None = None
        self.content_length: int | None = None
        self.idempotency_key: bytes | None = None
        self.preflight_method: str | None = None
        self.preflight_headers: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"x-request-id":
                if _SAFE_ID.match(value):
                    self.request_id = value.decode()
            elif name == b"origin":
                self.origin = value.decode("latin-1")
            elif name == b"accept-encoding":
                self.accept_encoding = value
            elif name == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.content_length = None
            elif name == b"host":
                self.host = value.decode("latin-1")
            elif name == b"idempotency-key":
                self.idempotency_key = value
            elif name == b"access-control-request-method":
                self.preflight_method = value.decode("latin-1")
            elif name == b"access-control-request-headers":
                self.preflight_headers = value.decode("latin-1")


class Pipeline:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        limiter: RateLimiter | None = None,
        protected: tuple[str, ...] = (),
        max_body_bytes: int = 1024 * 1024,
        fix_options: Callable[[dict[str, Any], Scope], None] | None = None,
        cors: Cors | None = None,
        idempotency: Idempotency | None = None,
        graphql_path: str = "/graphql",
        keyed_routes: Callable[[str, str], str | None] | None = None,
        direct: dict[str, ASGIApp] | None = None,
        fast: Callable[[str, str], ASGIApp | None] | None = None,
        access_log: bool = True,
        root_path: str = "",
        metrics: bool = True,
        route_of: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.route_of = route_of
        self.app = app
        self.access_log = access_log
        self.metrics = metrics
        # ROOT_PATH: the prefix a proxy serves us under; a request arriving
        # with it (a proxy that keeps it) is routed without it.
        self.root_path = root_path
        # HTTP paths answered by an ASGI app of their own (the GraphQL
        # endpoint), without Litestar's routing around it; the rest of this
        # pipeline is the same for them.
        self.direct: dict[str, ASGIApp] = dict(direct or {})
        # (method, path) -> the handler of a read answered in front of Litestar
        # (app.rest.fast, which hands back to Litestar what it does not answer).
        self.fast = fast
        self.authenticator = authenticator
        self.limiter = limiter
        # Path prefixes no anonymous request may enter (401 before any parsing).
        self.protected = protected
        self.max_body_bytes = max_body_bytes
        self.fix_options = fix_options  # applied to OPTIONS answers only
        self.cors = cors or Cors(None, development=False)
        self._limiter_failure_logged = -1e9
        self.idempotency = idempotency
        self.graphql_path = graphql_path
        # (method, path) of the REST writes that take an Idempotency-Key; any
        # other request (an unknown route, a method a route lacks) answers as usual.
        self.keyed_routes = keyed_routes or (lambda _method, _path: None)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.root_path:
            path = scope["path"]
            if path == self.root_path or path.startswith(self.root_path + "/"):
                scope["path"] = path[len(self.root_path) :] or "/"
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return

        started = time.perf_counter()
        req = Request(scope)
        request_id = req.request_id or next_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = None
        status = 0  # what the access record says if no answer started
        extra_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        method = scope["method"]
        preflight = method == "OPTIONS" and req.origin is not None and req.preflight_method
        if not preflight:
            extra_headers += self.cors.answer_headers(req.origin)
        fix = self.fix_options if method == "OPTIONS" else None
        encoding = choose(req.accept_encoding)

        async def add_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                nonlocal status
                status = message["status"]
                if tracing.enabled:  # (the request's span ends with the answer)
                    tracing.name_request(method, self._route(scope, state, method))
                if fix is not None:
                    fix(message, scope)
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        out = compressing(add_headers, encoding, head=method == "HEAD")
        token = request_id_var.set(request_id)
        try:
            if preflight:
                assert req.origin is not None
                extra_headers += self.cors.preflight_headers(req.origin, req.preflight_headers)
                await _send_empty(out, 204)
                return
            principal: Principal | None = None
            if req.authorization is None and method == "GET" and _EVENT_STREAM.match(scope["path"]):
                # A browser's EventSource cannot send headers: on the two event
                # streams only, the token may come as ?access_token= (RFC 6750).
                req.authorization = _query_token(scope)
            if req.authorization is not None:
                try:
                    principal, state["expires"] = self.authenticator.credentials(req.authorization)
                except DomainError:
                    principal = None
            state["principal"] = principal
            await self._handle(scope, receive, out, principal, req, extra_headers)
        except ClientGone:
            # Its business, not a failure of ours: nobody is left to answer.
            log.info("the client went away before its request was read: %s", scope["path"])
        except Exception:
            # Litestar answers for everything below it; this catches what fails
            # here, so even that answer has the contract's body and our headers.
            log.exception("unhandled error in the pipeline")
            with contextlib.suppress(Exception):  # fails if the response had started
                await _send_error(out, 500, INTERNAL_ERROR)
        finally:
            duration = time.perf_counter() - started
            if self.metrics:
                route = self._route(scope, state, method)
                metrics.http(method, route, status, duration, state)
            if self.access_log and access.enabled():
                route = self._route(scope, state, method)
                access.write(scope, method, status, duration, route=route, state=state)
            request_id_var.reset(token)

    def _route(self, scope: Scope, state: dict[str, Any], method: str) -> str:
        """The request's route template, for the metrics, the trace and the log."""
        template = scope.get("path_template")
        if template:
            return access.route_of(template)
        route: str | None = state.get("route")
        if route is None:
            # Answered before routing (a 401, a 429, a 413) or not found.
            template = self.route_of(method, scope["path"]) if self.route_of else None
            route = state["route"] = access.route_of(template) if template else "unmatched"
        return route

    async def _handle(
        self,
        scope: Scope,
        receive: Any,
        send: Send,
        principal: Principal | None,
        req: Request,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> None:
        path = scope["path"]
        if "//" in path:
            path = _SLASHES.sub("/", path)
        if self.limiter is not None and not exempt(scope["method"], path, scope):
            key = f"user:{principal.user_id}" if principal else f"ip:{_client(scope)}"
            verdict = await self._limit(key)
            if verdict is not None:
                extra_headers.extend(verdict.headers())
                if not verdict.allowed:
                    RATE_LIMITED.inc()
                    if path == self.graphql_path:
                        await _send_graphql_limited(send, verdict.message())
                    else:
                        await _send_error(send, 429, verdict.message())
                    return
        if principal is None and path.startswith(self.protected):
            await _send_error(send, 401, "Unauthorized")
            return
        if req.content_length is not None and req.content_length > self.max_body_bytes:
            # Announced too large: refused before a byte of it is read, and the
            # connection closed (not kept to swallow the body nobody will read).
            await _send_error(send, 413, "Request Entity Too Large", close=True)
            return
        method = scope["method"]
        if self.idempotency is not None and principal is not None and method in KEYED_METHODS:
            graphql = path == self.graphql_path and method == "POST"
            template = None if graphql else self.keyed_routes(method, path)
            if graphql or template is not None:
                if template is not None:  # (a replay never reaches the router)
                    scope["state"]["route"] = access.route_of(template)
                await self._keyed(scope, receive, send, principal, req, path)
                return
        handler = self.fast(method, scope["path"]) if self.fast is not None else None
        if handler is None and (handler := self.direct.get(path)) is not None:
            scope["state"]["route"] = path
        await (handler or self.app)(scope, receive, send)

    async def _keyed(
        self,
        scope: Scope,
        receive: Any,
        send: Send,
        principal: Principal,
        req: Request,
        path: str,
    ) -> None:
        """A write that may carry an ``Idempotency-Key`` (app/idempotency.py)."""
        assert self.idempotency is not None
        graphql = path == self.graphql_path
        key = req.idempotency_key
        app: ASGIApp = self.direct.get(path) or self.app
        if graphql:
            scope["state"]["route"] = path
        if key is None and not graphql:
            await app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            await _send_error(send, 413, "Request Entity Too Large", close=True)
            return
        if key is None and b"idempotencyKey" in body:  # GraphQL: or in the extensions
            key = _key_in_extensions(body)
        if key is None:
            await app(scope, replay(body, receive), send)
            return
        if not self.idempotency.valid(key):
            await _send_error(send, 400, BAD_KEY)
            return
        await self.idempotency.handle(
            app,
            scope,
            receive,
            body,
            send,
            user_id=principal.user_id,
            key=key.decode("ascii"),
            graphql=graphql,
        )

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        """The upgrade gets a request id (on the 101 answer and in the logs) and
        its principal, from the upgrade's Authorization header if any. A browser
        page from an origin that is not allowed is refused (403)."""
        req = Request(scope)
        request_id = req.request_id or next_request_id()
        principal = None
        expires = None
        if req.authorization is not None:
            with contextlib.suppress(DomainError):
                principal, expires = self.authenticator.credentials(req.authorization)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = principal
        state["expires"] = expires
        state["spend"] = self._spend_for(scope)
        token = request_id_var.set(request_id)
        try:
            refused = None
            if req.origin is not None and not (
                self.cors.allowed(req.origin) or _same_origin(req.origin, req.host)
            ):
                log.warning("WebSocket upgrade refused: origin %r is not allowed", req.origin)
                refused = (403, "Origin not allowed")
            elif (verdict := await state["spend"](principal)) is not None and not verdict[0]:
                RATE_LIMITED.inc()
                refused = (429, f"Rate limit exceeded: retry in {verdict[1]} seconds")
            if refused is not None:
                await receive()  # websocket.connect
                await _deny_upgrade(scope, send, *refused, request_id)
                return

            async def send_with_id(message: dict[str, Any]) -> None:
                if message["type"] == "websocket.accept":
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    def _spend_for(self, scope: Scope) -> Any:
        """For the socket: one operation of ``principal`` spends the same budget
        as an HTTP request (same key, windows and store); (allowed, retry after).
        (It keeps the client's address, not ``scope``: the scope holds it.)"""
        client = _client(scope)

        async def spend(principal: Principal | None) -> tuple[bool, int] | None:
            if self.limiter is None:
                return None
            key = f"user:{principal.user_id}" if principal else f"ip:{client}"
            verdict = await self._limit(key)
            if verdict is None:
                return None
            return verdict.allowed, max(verdict.reset, 1)

        return spend

    async def _limit(self, key: str) -> Verdict | None:
        """The limiter's verdict; None (let the request through) when its shared
        storage fails (bounded, and logged once, by :class:`app.ratelimit.RateLimiter`)
        or the limiter itself does (logged at most every 10 s)."""
        assert self.limiter is not None
        try:
            return await self.limiter.hit(key)
        except Exception:
            now = time.monotonic()
            if now - self._limiter_failure_logged > 10:
                self._limiter_failure_logged = now
                log.exception("rate limit storage failed; requests are not being limited")
            return None


KEYED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _key_in_extensions(body: bytes) -> bytes | None:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None  # the GraphQL endpoint answers for a body it cannot read
    extensions = data.get("extensions") if isinstance(data, dict) else None
    value = extensions.get("idempotencyKey") if isinstance(extensions, dict) else None
    return value.encode("utf-8") if isinstance(value, str) else None


_ID_PREFIX = uuid.uuid4().hex[:12]
_ids = itertools.count(1)


def next_request_id() -> str:
    """Unique per process start and request, without a random draw per request."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


def _same_origin(origin: str, host: str | None) -> bool:
    """A page of this server itself (GraphiQL): its origin names our Host."""
    if host is None:
        return False
    return origin.split("://", 1)[-1] == host


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _deny_upgrade(
    scope: Scope, send: Send, status: int, message: str, request_id: str
) -> None:
    """Refuse a WebSocket upgrade: with the status and the contract's body when
    the server can send an HTTP answer here, else a close before accepting (403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = error_bytes(status, message)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008})


async def _send_graphql_limited(send: Send, message: str) -> None:
    """A 429 on /graphql in the shape GraphQL clients read (``Retry-After`` and
    the ``RateLimit-*`` headers are added like on every answer)."""
    body = msgspec.json.encode(
        {
            "errors": [
                {"message": message, "extensions": {"code": "RATE_LIMITED", "statusCode": 429}}
            ]
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_empty(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _send_error(send: Send, status: int, message: str, *, close: bool = False) -> None:
    body = error_bytes(status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
