"""Compression of every answer over 1 KiB, for clients that accept it.

Brotli (Google's ``brotli`` package) or gzip (the standard library's zlib),
whichever the client prefers by its ``Accept-Encoding`` q-values (brotli on a
tie). Text-like answers always carry ``Vary: Accept-Encoding``, compressed or
not, so a cache keeps the variants apart. Streams are compressed chunk by
chunk (static files), except Server-Sent Events, whose messages must reach
the client as they are written.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import brotli

MIN_SIZE = 1024
_TEXT_LIKE = (
    b"application/json",
    b"application/graphql-response+json",
    b"application/javascript",
    b"application/vnd.oai.openapi",
    b"application/x-yaml",
    b"image/svg+xml",
    b"text/",
)
Send = Callable[[dict[str, Any]], Awaitable[None]]


def choose(accept_encoding: bytes | None) -> bytes | None:
    """``b"br"``, ``b"gzip"`` or None, by the client's preferences."""
    if not accept_encoding:
        return None
    listed: dict[bytes, float] = {}
    for part in accept_encoding.lower().split(b","):
        name, _, params = part.strip().partition(b";")
        weight = 1.0
        key, _, value = params.strip().partition(b"=")
        if key.strip() == b"q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        listed[name.strip()] = weight
    star = listed.get(b"*", 0.0)
    q = {name: listed.get(name, star) for name in (b"br", b"gzip")}
    best = max(q, key=lambda n: (q[n], n == b"br"))
    return best if q[best] > 0 else None


class _Stream:
    def __init__(self, encoding: bytes) -> None:
        if encoding == b"br":
            self._br = brotli.Compressor(quality=4)
            self._z = None
        else:
            self._br = None
            self._z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def feed(self, chunk: bytes) -> bytes:
        if self._br is not None:
            return bytes(self._br.process(chunk))
        assert self._z is not None
        return self._z.compress(chunk)

    def finish(self) -> bytes:
        if self._br is not None:
            return bytes(self._br.finish())
        assert self._z is not None
        return self._z.flush()


def compressing(send: Send, encoding: bytes | None, head: bool) -> Send:
    """Wrap ``send``: text-like answers get ``Vary``, and those over 1 KiB are
    compressed with ``encoding`` (when the client accepts one)."""
    start: dict[str, Any] | None = None
    stream: _Stream | None = None

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal start, stream
        kind = message["type"]
        if kind == "http.response.start":
            headers = message.get("headers", [])
            content_type = b""
            encoded = False
            for name, value in headers:
                if name.lower() == b"content-type":
                    content_type = value.lower()
                elif name.lower() == b"content-encoding":
                    encoded = True
            if encoded or not content_type.startswith(_TEXT_LIKE):
                await send(message)
                return
            message["headers"] = [*headers, (b"vary", b"Accept-Encoding")]
            if encoding is None or head or content_type.startswith(b"text/event-stream"):
                await send(message)
                return
            start = message  # held until the first body chunk says how big it is
            return
        if kind != "http.response.body" or start is None:
            await send(message)
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if stream is None:
            held, start = start, None
            if not more and len(body) < MIN_SIZE:
                await send(held)
                await send(message)
                return
            stream = _Stream(encoding)  # type: ignore[arg-type]
            held["headers"] = [
                (k, v) for k, v in held["headers"] if k.lower() != b"content-length"
            ] + [(b"content-encoding", encoding)]
            if not more:
                out = stream.feed(body) + stream.finish()
                held["headers"].append((b"content-length", b"%d" % len(out)))
                await send(held)
                await send({"type": "http.response.body", "body": out})
                return
            await send(held)
            start = held  # keep wrapping the rest of the stream
        out = stream.feed(body)
        if not more:
            out += stream.finish()
        await send({"type": "http.response.body", "body": out, "more_body": more})

    return wrapped
