"""The server's own guards (app/serving.py) against a real server process:
request heads capped in size and count, and clients that stop reading their
answers dropped within their send timeouts (a WebSocket subscriber and an
SSE reader), who then resume with their cursor and miss nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import bearer, make_token
from tests.live.client import PROTOCOL, Socket, ws_url
from tests.protection.test_hostile import raw_request
from tests.server import running_server

# ---------------------------------------------------------------- heads


def test_request_heads_are_capped_in_size_and_count(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/heads.db",
        "MAX_HEADER_BYTES": "16384",
        "MAX_HEADERS": "50",
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "server.log"
    with running_server(env, log=log) as base:
        port = int(base.rsplit(":", 1)[1])
        for head in (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4_000_000 + b"\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 51 + b"\r\n",
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            started = time.monotonic()
            answer = raw_request(port, head, timeout=10)
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
            assert b"connection: close" in answer.lower()
            body = json.loads(answer.partition(b"\r\n\r\n")[2])
            assert body == {
                "statusCode": 431,
                "message": "The request head is too large: at most 16384 bytes and 50 headers",
                "error": "Request Header Fields Too Large",
            }
            assert time.monotonic() - started < 5
        # Within the caps: answered, and a large body is not counted as head,
        # nor is the next request on the same connection.
        ok = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 15_000 + b"\r\n"
        ok += b"X-A: b\r\n" * 40 + b"\r\n"
        assert raw_request(port, ok).startswith(b"HTTP/1.1 200 ")
        token = make_token(f"heads-{uuid.uuid4()}")
        body = json.dumps(
            {"jobContext": {"title": "T", "company": "C", "description": "d" * 9000}}
        ).encode()
        post = (
            b"POST /interview-sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(post + post.replace(b"POST", b"POST", 1))  # two, pipelined
            got = b""
            while got.count(b"HTTP/1.1 201 ") < 2:
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
    text = Path(log).read_text(errors="replace")
    assert " ERROR " not in text and "Traceback" not in text, text[-3000:]


# ---------------------------------------------------------------- readers that stop reading

BIG = "x" * 20_000
SUBSCRIPTION = """subscription($after: String) { myEvents(after: $after) {
  cursor type interaction { question generatedResponses { content } } } }"""
EVENTS = 40


def small_socket() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s


async def write_big_events(base: str, token: str, sid: str) -> None:
    """Events of ~200 KB each: a few MB in all, more than the kernel buffers hold."""
    responses = [{"id": f"r{n}", "content": BIG, "structure": "direct"} for n in range(10)]
    async with httpx.AsyncClient(base_url=base, headers=bearer(token), timeout=30) as c:
        for n in range(EVENTS):
            r = await c.post(
                "/interview-sessions/interactions",
                json={"sessionId": sid, "question": f"Q{n}", "generatedResponses": responses},
            )
            assert r.status_code == 201, r.text


async def new_session(base: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=base, headers=bearer(token)) as c:
        r = await c.post("/interview-sessions", json={"jobContext": {"title": "T", "company": "C"}})
        return str(r.json()["id"])


async def dropped(log: Path, seconds: float) -> float:
    """How long until the server logged that it dropped a connection."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if "dropping its connection" in log.read_text(errors="replace"):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"no connection dropped within {seconds}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def slow_server(db_url, tmp_path):
    env = {
        "DATABASE_URL": db_url,
        "RATE_LIMITS": "100000/minute",
        "WS_SEND_TIMEOUT": "1",
        "HTTP_SEND_TIMEOUT": "1",
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "server.log"
    with running_server(env, log=log) as base:
        yield base, log


async def test_a_websocket_reader_that_stops_is_dropped_then_resumes(slow_server):
    base, log = slow_server
    token = make_token(f"stall-{uuid.uuid4()}")
    sid = await new_session(base, token)
    sock = small_socket()
    sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    received: list[dict] = []
    async with connect(
        ws_url(base), subprotocols=[PROTOCOL], sock=sock, max_queue=1, open_timeout=10
    ) as ws:
        s = Socket(ws)
        await s.init(token)
        await s.subscribe("1", SUBSCRIPTION)
        await asyncio.sleep(0.3)
        await write_big_events(base, token, sid)  # and read none of them
        await dropped(log, 15)
        # Reading now: what the kernel held, then the end (not the rest).
        closed = False
        while not closed:
            try:
                message = await s.recv(timeout=10)
            except ConnectionClosed:
                closed = True
            else:
                received.append(message["payload"]["data"]["myEvents"])
    assert len(received) < EVENTS
    # It reconnects and resumes with its cursor: every event once, in order.
    async with connect(ws_url(base), subprotocols=[PROTOCOL], open_timeout=10) as ws:
        s = Socket(ws)
        await s.init(token)
        after = received[-1]["cursor"] if received else None
        await s.subscribe("2", SUBSCRIPTION, {"after": after})
        while len(received) < EVENTS + 1:  # SESSION_CREATED came before the subscription
            message = await s.recv(timeout=15)
            received.append(message["payload"]["data"]["myEvents"])
            if len(received) == EVENTS:
                break
    questions = [e["interaction"]["question"] for e in received]
    assert questions == [f"Q{n}" for n in range(EVENTS)]


async def test_an_sse_reader_that_stops_is_dropped(slow_server):
    base, log = slow_server
    token = make_token(f"stall-{uuid.uuid4()}")
    sid = await new_session(base, token)
    sock = small_socket()
    sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    sock.sendall(
        b"GET /interview-sessions/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
        + f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    await asyncio.sleep(0.3)
    await write_big_events(base, token, sid)  # and read none of them
    await dropped(log, 15)
    # Reading now: what the kernel held, then the end of the connection.
    sock.settimeout(10)
    got = 0
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            got += len(chunk)
    sock.close()
    assert got < EVENTS * 200_000


# ---------------------------------------------------------------- clients that go away


async def test_clients_that_go_away_are_not_server_errors(db_url, tmp_path):
    """A client that disconnects mid-body (REST and /graphql), or closes its
    socket right after a query: INFO at most, never an ERROR or a traceback."""
    from tests.live.client import socket as ws_socket

    log = tmp_path / "server.log"
    env = {"DATABASE_URL": db_url, "LOG_LEVEL": "INFO", "RATE_LIMITS": "100000/minute"}
    with running_server(env, log=log) as base:
        port = int(base.rsplit(":", 1)[1])
        token = make_token(f"gone-{uuid.uuid4()}")
        for path, start in (
            (b"/interview-sessions", b'{"jobContext":'),
            (b"/graphql", b'{"query":'),
        ):
            for _ in range(10):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(
                    b"POST "
                    + path
                    + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n".encode()
                    + start
                )
                await asyncio.sleep(0.05)
                s.close()
        for _ in range(30):
            async with ws_socket(base) as ws:
                s = Socket(ws)
                await s.init(token)
                await s.subscribe("1", "{ sessions { id interactions { id } } }")
        await asyncio.sleep(1)
    text = log.read_text(errors="replace")
    assert " ERROR " not in text and "Traceback" not in text, text[-5000:]
    assert text.count("the client went away before its request was read") == 20
