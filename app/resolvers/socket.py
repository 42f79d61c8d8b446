"""``/graphql`` over WebSocket: the ``graphql-transport-ws`` protocol, and only it.

Strawberry's protocol handler speaks the protocol; this module adds what the
API promises on top (live.md):

* authentication in ``connection_init`` (``{"Authorization": "Bearer …"}``, the
  key in any case) or on the upgrade; none valid closes with 4403; no
  ``connection_init`` within ``WS_INIT_TIMEOUT`` closes with 4408; when the
  token expires the socket is closed with 4403;
* every operation spends the caller's rate-limit budget exactly as an HTTP
  request does (the pipeline's limiter, the same windows and store);
* every operation passes the same document checks as over HTTP, and every
  error carries ``extensions.code``;
* at most ``MAX_SUBSCRIPTIONS_PER_CONNECTION`` operations at once; frames over
  ``MAX_BODY_BYTES`` close the socket (1009);
* a client that stops reading is dropped (1013) once one message waited
  ``WS_SEND_TIMEOUT`` seconds: the server never buffers a subscriber's events
  without bound (it resumes with ``after``);
* a stopping server closes every socket with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import msgspec
from graphql import GraphQLError
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.litestar.controller import LitestarWebSocketAdapter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from app import access
from app.context import principal_of, request_id_of
from app.domain.records import Principal
from app.errors import DomainError
from app.metrics import (
    LIVE_EVENTS_DELIVERED,
    LIVE_SUBSCRIPTIONS,
    RATE_LIMITED,
    count_operation,
)
from app.resolvers.context import Context, build_context
from app.resolvers.documents import Admitted, Documents, Refused
from app.resolvers.schema import Schema
from app.schema.errors import coded, format_error

log = logging.getLogger("app.graphql.socket")

# A send on a socket its client has closed (uvicorn's ClientDisconnected is
# an OSError; Litestar's and Strawberry's own).
CLIENT_GONE = (OSError, WebSocketDisconnect, WebSocketDisconnected)

FORBIDDEN = 4403
TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001

# The pipeline's rate limiter, for one operation of a caller: (allowed, retry-after seconds).
Budget = Callable[[Principal | None], Awaitable[tuple[bool, int] | None]]
Authenticate = Callable[[str], tuple[Principal, float]]


class SocketSettings(msgspec.Struct, frozen=True):
    max_frame_bytes: int
    max_operations: int
    init_timeout: float
    send_timeout: float


class _Adapter(LitestarWebSocketAdapter):
    """Litestar's socket adapter, with the frame cap and the slow-reader rule."""

    def __init__(self, view: Any, ws: WebSocket[Any, Any, Any], limits: SocketSettings) -> None:
        super().__init__(view, ws, ws)
        self.limits = limits

    async def send_json(self, message: Mapping[str, object]) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
        # cancellation that arrives as the send finishes (a `complete` for
        # this operation would be lost, and it would keep streaming).
        try:
            async with asyncio.timeout(self.limits.send_timeout):
                await super().send_json(message)
        except TimeoutError:
            log.warning("a WebSocket client stopped reading; closing it (1013)")
            # If even the close cannot be written in time, the server's
            # protocol aborts the connection (app/serving.py: a peer that
            # reads nothing for WS_SEND_TIMEOUT is dropped).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self.ws.close(TRY_AGAIN_LATER, "Too far behind: resume with after")
            raise


class _View:
    """What Strawberry's protocol handler asks of a view."""

    def __init__(self, socket: GraphQLSocket) -> None:
        self.socket = socket

    async def on_ws_connect(self, context: Context) -> UnsetType:
        self.socket.authenticate(context)
        unset: UnsetType = UNSET
        return unset

    def decode_json(self, data: str | bytes) -> object:
        if len(data) > self.socket.limits.max_frame_bytes:
            raise _FrameTooBig()
        try:
            return msgspec.json.decode(data)
        except (msgspec.DecodeError, RecursionError):
            # What Strawberry's handler expects: it closes with 4400.
            raise json.JSONDecodeError("not JSON", str(data)[:20], 0) from None

    def encode_json(self, data: object) -> str:
        return msgspec.json.encode(data).decode()


class _FrameTooBig(ValueError):
    pass


class _Operation(Operation[Any, Any]):
    """Every error of an operation leaves with its code, and nothing leaves
    for an operation the client completed (or the server ended): its task is
    cancelled, and should a message still be on its way it is not sent."""

    subscription = False
    failed = False  # an error was sent (the operations counter's outcome)

    async def send_operation_message(self, message: Any) -> None:
        if self.handler.operations.get(self.id) is not self:
            raise asyncio.CancelledError()  # completed: this task is over
        await super().send_operation_message(message)

    async def send_next(self, execution_result: ExecutionResult) -> None:
        if self.subscription:
            LIVE_EVENTS_DELIVERED.inc()
        if execution_result.errors:
            self.failed = True
            execution_result.errors = [
                format_error(e, suggestions=self.handler.suggestions)  # type: ignore[attr-defined]
                for e in execution_result.errors
            ]
        await super().send_next(execution_result)

    async def send_initial_errors(self, errors: list[GraphQLError]) -> None:
        self.failed = True
        await super().send_initial_errors(
            [format_error(e, suggestions=self.handler.suggestions) for e in errors]  # type: ignore[attr-defined]
        )


class _Handler(BaseGraphQLTransportWSHandler[Any, Any]):
    def __init__(self, socket: GraphQLSocket, scope: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.socket = socket
        self.socket_scope = scope
        self.suggestions = socket.schema.introspection

    async def handle_subscribe(self, message: Any) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        op_id = message.get("id")
        payload = message.get("payload")
        if not isinstance(op_id, str) or not isinstance(payload, dict):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        if op_id in self.operations:
            await self.websocket.close(code=4409, reason=f"Subscriber for {op_id} already exists")
            return
        started = time.perf_counter()
        admitted = await self.socket.admit(self.context, payload, len(self.operations))
        if isinstance(admitted, list):
            errors = [format_error(e, suggestions=self.suggestions).formatted for e in admitted]
            self._access(started, "refused", payload.get("operationName"), None)
            await self.send_message({"id": op_id, "type": "error", "payload": errors})
            return
        operation = _Operation(
            self, op_id, admitted.query, payload.get("variables"), payload.get("operationName")
        )
        name = payload.get("operationName") or (
            admitted.operation.name.value if admitted.operation.name else None
        )
        kind = admitted.operation.operation.value
        if kind == "subscription":
            operation.subscription = True
            LIVE_SUBSCRIPTIONS.inc()
        operation.task = asyncio.create_task(self.run_operation(operation))
        operation.task.add_done_callback(self._task_done)

        def ended(task: asyncio.Task[Any]) -> None:
            failed = not task.cancelled() and task.exception() is not None
            if operation.subscription:
                LIVE_SUBSCRIPTIONS.dec()
            count_operation(kind, name, not (failed or operation.failed))
            self._access(started, "error" if failed else "complete", name, kind)

        operation.task.add_done_callback(ended)
        self.operations[op_id] = operation

    def _access(self, started: float, status: str, name: Any, kind: str | None) -> None:
        """The access record of one operation (app/access.py): method ``WS``."""
        if not (self.socket.access_log and access.enabled()):
            return
        scope = self.socket_scope
        state = {
            "request_id": request_id_of(scope),
            "principal": getattr(self.context, "principal", None),
            "operation_name": name[:64] if isinstance(name, str) else None,
            "operation_type": kind,
        }
        access.write(
            scope, "WS", status, time.perf_counter() - started, route=scope["path"], state=state
        )

    def forget_id(self, id: str) -> None:
        # An operation that ends as the client completes it (or the socket
        # closes) was forgotten already: not an error.
        self.operations.pop(id, None)

    async def handle_task_exception(self, error: Exception) -> None:
        if isinstance(error, TimeoutError):  # the slow-reader rule closed the socket
            return
        if isinstance(error, CLIENT_GONE):
            # The client closed the socket while an answer was on its way:
            # its business, not a failure of ours.
            log.info("a WebSocket client went away before its answer was sent")
            return
        log.error("a WebSocket operation failed", exc_info=error)


class GraphQLSocket:
    """Runs one ``/graphql`` WebSocket connection."""

    def __init__(
        self,
        schema: Schema,
        service: Any,
        documents: Documents,
        authenticate: Authenticate,
        limits: SocketSettings,
        access_log: bool = True,
    ) -> None:
        self.schema = schema
        self.service = service
        self.documents = documents
        self.authenticate_header = authenticate
        self.limits = limits
        self.open: set[WebSocket[Any, Any, Any]] = set()
        self.closing = False
        self.access_log = access_log

    # ---------------------------------------------------------------- connection

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ws: WebSocket[Any, Any, Any] = WebSocket(scope, receive, send)  # type: ignore[arg-type]
        offered = scope.get("subprotocols") or []
        if GRAPHQL_TRANSPORT_WS_PROTOCOL not in offered or self.closing:
            # The legacy subscriptions-transport-ws ("graphql-ws") is refused.
            await ws.close(code=4406, reason="Subprotocol not acceptable")
            ws.receive, ws.send = receive, send  # no cycle left behind (see below)
            return
        await ws.accept(subprotocols=GRAPHQL_TRANSPORT_WS_PROTOCOL)
        self.open.add(ws)
        state = scope.get("state", {})
        context = build_context(self.service, principal_of(scope), request_id_of(scope))
        connection = _Connection(state.get("spend"), state.get("expires"), ws)
        context.connection = connection
        handler = _Handler(
            self,
            scope,
            view=_View(self),
            websocket=_Adapter(_View(self), ws, self.limits),
            context=context,
            root_value=None,
            schema=self.schema,
            connection_init_wait_timeout=timedelta(seconds=self.limits.init_timeout),
            max_subscriptions_per_connection=None,  # counted in refusal(), with a code
        )
        try:
            await handler.handle()
        except _FrameTooBig:
            with contextlib.suppress(Exception):
                await ws.close(code=TOO_BIG, reason="Message too big")
        finally:
            connection.disarm()
            self.open.discard(ws)
            # Litestar's WebSocket keeps its receive/send as closures over
            # itself: a reference cycle that holds the connection's scope,
            # context and handler until a garbage collection (1,000 sockets
            # closing at once left tens of thousands of objects to one long
            # collection).
            # The connection is over: hand it the plain ASGI callables.
            ws.receive, ws.send = receive, send

    def authenticate(self, context: Context) -> None:
        """``connection_init``: the payload's Authorization (any case), else the
        upgrade's; a token that does not verify is refused even if the other
        would have."""
        params = getattr(context, "connection_params", None) or {}
        header = next(
            (v for k, v in params.items() if isinstance(k, str) and k.lower() == "authorization"),
            None,
        )
        after = params.get("after")
        context.resume_after = after if isinstance(after, str) and after else None
        connection: _Connection = context.connection
        if header is not None:
            try:
                context.principal, connection.expires = self.authenticate_header(str(header))
            except DomainError:
                raise ConnectionRejectionError() from None
        elif context.principal is None:
            raise ConnectionRejectionError()
        connection.arm()

    async def close_all(self) -> None:
        """A stopping server: every socket closes with 1001 (going away)."""
        self.closing = True
        for ws in list(self.open):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=GOING_AWAY, reason="Server shutting down"), 1)

    # ---------------------------------------------------------------- operations

    async def admit(
        self, context: Context, payload: dict[str, Any], running: int
    ) -> Admitted | list[GraphQLError]:
        """The operation to start, or why it may not (with codes): the rate
        limit, the operations cap, and the same admission as over HTTP
        (persisted and trusted documents, the document checks)."""
        connection: _Connection = context.connection
        if connection.spend is not None:
            verdict = await connection.spend(context.principal)
            if verdict is not None and not verdict[0]:
                RATE_LIMITED.inc()
                return [
                    coded(
                        f"Rate limit exceeded: retry in {verdict[1]} seconds",
                        "RATE_LIMITED",
                        429,
                    )
                ]
        if running >= self.limits.max_operations:
            return [
                coded(
                    f"At most {self.limits.max_operations} operations at once on one connection",
                    "BAD_REQUEST",
                    400,
                )
            ]
        fields = {
            "query": payload.get("query"),
            "variables": payload.get("variables"),
            "operationName": payload.get("operationName"),
            "extensions": payload.get("extensions"),
            "documentId": payload.get("documentId"),
        }
        for name, value in fields.items():
            expected = dict if name in ("variables", "extensions") else str
            if value is not None and not isinstance(value, expected):
                kind = "an object" if expected is dict else "a string"
                return [coded(f"The '{name}' must be {kind}", "BAD_REQUEST", 400)]
        try:
            return await self.documents.admit(
                fields["query"],
                fields["variables"],
                fields["operationName"],
                fields["extensions"],
                fields["documentId"],
            )
        except Refused as refused:
            return refused.errors


class _Connection:
    """Per-connection state kept on the GraphQL context."""

    # A timer handle, not a task per connection: an idle subscription's memory
    # is what a server with many of them pays (bench.live measures it).
    __slots__ = ("closing", "expires", "spend", "timer", "ws")

    def __init__(
        self, spend: Budget | None, expires: float | None, ws: WebSocket[Any, Any, Any]
    ) -> None:
        self.spend = spend
        self.expires = expires  # of the upgrade's token, until connection_init says otherwise
        self.ws = ws
        self.timer: asyncio.TimerHandle | None = None
        self.closing: asyncio.Future[None] | None = None

    def arm(self) -> None:
        """Authenticated: the socket closes (4403) when its token expires."""
        self.disarm()
        if self.expires is not None:
            delay = max(0.0, self.expires - time.time())
            self.timer = asyncio.get_running_loop().call_later(delay, self._expired)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        self.closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        log.info("closing a WebSocket: its token expired")
        with contextlib.suppress(Exception):
            await self.ws.close(code=FORBIDDEN, reason="Token expired")
