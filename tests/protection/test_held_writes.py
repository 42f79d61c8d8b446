"""An answer's head and body leave in one write (app.serving.HeldWrites):
uvicorn writes them one after the other, two system calls and two TCP
segments per answer otherwise. A head alone (a stream's) still leaves on the
event loop's next turn, and nothing held is lost when the connection closes."""

from __future__ import annotations

import asyncio

from app.serving import HeldWrites


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_head_and_body_are_one_write():
    t = Transport()
    held = HeldWrites(t, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert t.written == []
    held.write(b"{}")
    assert t.written == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    held.write(b"more")  # later writes are held the same way
    await asyncio.sleep(0)
    assert t.written == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"more"]


async def test_a_head_alone_leaves_on_the_next_turn():
    t = Transport()
    held = HeldWrites(t, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
    await asyncio.sleep(0)
    assert t.written == [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"]


async def test_close_sends_what_is_held_first():
    t = Transport()
    held = HeldWrites(t, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"head")
    held.close()
    assert t.written == [b"head"] and t.closed
    await asyncio.sleep(0)  # the flush after close writes nothing more
    assert t.written == [b"head"]
    assert held.is_closing()
    assert held.get_extra_info("peername") == "info:peername"  # the rest: the transport's
