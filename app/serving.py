"""The HTTP server's own guards against slow and greedy clients.

uvicorn reads request heads and bodies for as long as a client cares to send
them, of any size, accepts connections without bound, and waits for ever for
a client that stops reading its answer. These protocols (uvicorn's httptools
and WebSocket protocols, used through ``uvicorn.run(http=..., ws=...)``) add,
per process:

* ``HTTP_HEADER_TIMEOUT``: a request's head (from the connection, or from
  the first byte of a later request on it) must arrive within this time;
* ``HTTP_BODY_TIMEOUT``: its body must arrive within this time after the head;
* ``MAX_HEADER_BYTES`` and ``MAX_HEADERS``: a larger head is answered 431
  (the contract's error body) and the connection closed, before more of it
  is read;
* ``MAX_CONNECTIONS``: a connection accepted while the process already holds
  that many is over the cap: its request is answered 503 with
  ``Retry-After: 1`` (the contract's error body; its request is read first,
  so the client gets the answer, not a reset) and it is closed. The
  connections already held are not touched: the newest ones are refused, the
  others keep being answered;
* ``HTTP_SEND_TIMEOUT`` (an answer, an SSE stream included) and
  ``WS_SEND_TIMEOUT`` (a WebSocket): a client that reads nothing of what it
  was sent for this long (the transport's buffer stays over its high-water
  mark) is dropped: the connection is aborted, as no close can reach a
  client that does not read. Its subscriptions end; it resumes with its
  cursor when it reconnects.

Either read timeout answers 408 with the contract's error body, unless the
application has started its answer already, and closes the connection; the
application sees a disconnect. WebSocket connections are guarded until the
upgrade by the HTTP protocol, then by theirs (their own limits are in
:mod:`app.resolvers.socket`).

uvicorn's protocols are subclassed here, and only here: the hooks used are
listed in :data:`UVICORN_HOOKS` (uvicorn is pinned below its next minor
release, and tests/protection/test_serving_hooks.py fails if one changes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from app.config import Settings, load_settings
from app.context import error_bytes


@functools.cache
def _limits() -> Settings:
    # Read once per process: worker processes are spawned with the same environment.
    return load_settings()


def _raw_answer(status: int, reason: str, message: str) -> bytes:
    body = error_bytes(status, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii")
    return head + body


HEAD_TOO_SLOW = _raw_answer(408, "Request Timeout", "The request head did not arrive in time")
BODY_TOO_SLOW = _raw_answer(408, "Request Timeout", "The request body did not arrive in time")
log = logging.getLogger("app.serving")


def head_too_large(max_bytes: int, max_headers: int) -> bytes:
    return _raw_answer(
        431,
        "Request Header Fields Too Large",
        f"The request head is too large: at most {max_bytes} bytes and {max_headers} headers",
    )


TOO_MANY_BODY = error_bytes(503, "Too many connections; retry shortly")


async def too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    """The answer to a request on a connection over ``MAX_CONNECTIONS``."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(TOO_MANY_BODY)),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_MANY_BODY})


class HeldWrites:
    """A response's transport that holds its first write (uvicorn writes the
    status line and headers, then the body, each at once: two system calls
    and two TCP segments for every answer) until the next write, which sends
    both in one, or until the event loop's next turn (a streamed answer's
    head is not held longer than that). Everything else is the transport's."""

    __slots__ = ("held", "loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + data)
        elif data:
            self.held = data
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        held, self.held = self.held, None
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class HeadTooLarge(Exception):
    """More headers than MAX_HEADERS: the parser stops on it."""


class StallGuard:
    """A connection whose client reads nothing for ``seconds`` is aborted.

    asyncio pauses a protocol's writing when its transport's buffer passes
    the high-water mark (the socket's own buffers are full: the client is
    not reading) and resumes it when the buffer drains; paused for the whole
    timeout, the connection goes."""

    __slots__ = ("seconds", "timer", "transport")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.BaseTransport | None = None

    def paused(self, transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        if self.timer is None:
            self.timer = loop.call_later(self.seconds, self._stalled)

    def resumed(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _stalled(self) -> None:
        self.timer = None
        transport = self.transport
        if transport is not None:  # closing or not: a close never flushes to such a client
            log.info(
                "a client read nothing for %ss; dropping its connection (it resumes with "
                "its cursor)",
                self.seconds,
            )
            transport.abort()  # type: ignore[attr-defined]


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = _limits()
        self.header_timeout = limits.http_header_timeout
        self.body_timeout = limits.http_body_timeout
        self.max_connections = limits.max_connections
        self.max_header_bytes = limits.max_header_bytes
        self.max_headers = limits.max_headers
        self._guard: asyncio.TimerHandle | None = None
        self._stall = StallGuard(limits.http_send_timeout)
        # The head being read: how many of its bytes and headers came so far
        # (None between a head's end and the end of its request).
        self._head: list[int] | None = [0, 0]
        self._head_refused = False
        self._over_cap = False

    def _arm(self, seconds: float, answer: bytes) -> None:
        self._disarm()
        self._guard = self.loop.call_later(seconds, self._expired, answer)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _expired(self, answer: bytes) -> None:
        self._guard = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(answer)
        elif isinstance(cycle.transport, HeldWrites):
            cycle.transport.flush()  # what was answered so far goes first
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn has added this one to the process's connections: decided
        # once, here, so the connections held before it are never refused.
        self._over_cap = len(self.connections) > self.max_connections
        self._arm(self.header_timeout, HEAD_TOO_SLOW)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stall.resumed()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall.paused(self.transport, self.loop)

    def resume_writing(self) -> None:
        self._stall.resumed()
        super().resume_writing()

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head is None:  # a body: not counted here
            super().data_received(data)
            return
        room = self.max_header_bytes - head[0]
        if len(data) <= room:
            head[0] += len(data)
            super().data_received(data)
            return
        # Only what may still belong to the head is parsed; if the head has
        # not ended within it, it is too large (never buffered further).
        head[0] += room
        super().data_received(data[:room])
        if self.transport.is_closing() or self.parser is None:
            return  # answered (or upgraded to a WebSocket) meanwhile
        if self._head is head:  # still reading that head
            self._refuse_head()
        else:  # it ended: the rest is its body, or the next request
            self.data_received(data[room:])

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        if head is not None:
            head[1] += 1
            if head[1] > self.max_headers:
                # The parser stops on it; uvicorn answers a parser error with
                # send_400_response, which answers 431 instead (below).
                self._head_refused = True
                raise HeadTooLarge()
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._head_refused:
            self._refuse_head()
            return
        super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._disarm()
        self._head = None
        if not self.transport.is_closing():
            self.transport.write(head_too_large(self.max_header_bytes, self.max_headers))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head is None:  # a later request on a kept-alive connection
            self._head = [0, 0]
        if self._guard is None:
            self._arm(self.header_timeout, HEAD_TOO_SLOW)

    def on_headers_complete(self) -> None:
        self._head = None  # the body (if any) is not part of the head
        self._disarm()
        app = self.app
        if self._over_cap:
            self.app = too_many_connections
        try:
            super().on_headers_complete()
        finally:
            self.app = app
        if self.parser.should_upgrade():
            return
        self.cycle.transport = HeldWrites(self.transport, self.loop)  # type: ignore[assignment]
        for name, value in self.headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() not in (b"", b"0")
            ):
                self._arm(self.body_timeout, BODY_TOO_SLOW)
                break

    def on_message_complete(self) -> None:
        self._disarm()
        self._head = [0, 0]  # what comes next is the next request's head
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()
        # The socket's own protocol has the transport now; this one is done.
        # Its parser holds its callbacks (a reference cycle that uvicorn breaks
        # in connection_lost, which an upgraded connection never reaches here):
        # break it now, so the object is freed at once, not by the collector.
        self.parser = None  # type: ignore[assignment]


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with the slow-reader rule
    (``WS_SEND_TIMEOUT``): a socket whose client reads nothing for that long
    is aborted. Without it, a send waits for the buffer to drain for ever,
    the close frame included (the application's own timeout cannot close a
    socket nobody reads)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stall = StallGuard(_limits().ws_send_timeout)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall.paused(self.transport, self.loop)

    def resume_writing(self) -> None:
        self._stall.resumed()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stall.resumed()
        super().connection_lost(exc)


# The uvicorn internals this module relies on (uvicorn is pinned below its
# next minor release; tests/protection/test_serving_hooks.py checks each).
UVICORN_HOOKS = {
    HttpToolsProtocol: (
        "data_received",
        "on_header",
        "on_message_begin",
        "on_headers_complete",
        "on_message_complete",
        "connection_made",
        "connection_lost",
        "pause_writing",
        "resume_writing",
        "handle_websocket_upgrade",
        "send_400_response",
        # attributes read or set: transport, loop, parser, cycle, app, connections, headers
    ),
    WebSocketsSansIOProtocol: ("pause_writing", "resume_writing", "connection_lost"),
}
