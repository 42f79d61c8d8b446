"""The HTTP server's own guards against slow and greedy clients.

uvicorn reads request heads and bodies for as long as a client cares to send
them, and accepts connections without bound: 500 connections sending one
header byte a second were never closed. This protocol (uvicorn's httptools
protocol, used through ``uvicorn.run(http=...)``) adds, per process:

* ``HTTP_HEADER_TIMEOUT``: a request's head (from the connection, or from
  the first byte of a later request on it) must arrive within this time;
* ``HTTP_BODY_TIMEOUT``: its body must arrive within this time after the head;
* ``MAX_CONNECTIONS``: a request on a connection over the cap is answered 503
  (the contract's error body) and the connection closed.

Either timeout answers 408 with the contract's error body, unless the
application has started its answer already, and closes the connection; the
application sees a disconnect. WebSocket connections are guarded until the
upgrade (their own limits are in :mod:`app.resolvers.socket`).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = _limits()
        self.header_timeout = limits.http_header_timeout
        self.body_timeout = limits.http_body_timeout
        self.max_connections = limits.max_connections
        self._guard: asyncio.TimerHandle | None = None

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
        self._arm(self.header_timeout, HEAD_TOO_SLOW)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._guard is None:  # a later request on a kept-alive connection
            self._arm(self.header_timeout, HEAD_TOO_SLOW)

    def on_headers_complete(self) -> None:
        self._disarm()
        app = self.app
        if len(self.connections) > self.max_connections:
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
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()
        # The socket's own protocol has the transport now; this one is done.
        # Its parser holds its callbacks (a reference cycle that uvicorn breaks
        # in connection_lost, which an upgraded connection never reaches here):
        # break it now, so the object is freed at once, not by the collector.
        self.parser = None  # type: ignore[assignment]
