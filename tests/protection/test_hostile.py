"""The edges a hostile client found (issue 12), one test each.

Most run in process on both databases; the ones about the HTTP server itself
(slow clients, the connection cap, raw bytes on the wire, the log file) run
the real server (`interview-api serve`) and talk to it over sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
import uuid
from pathlib import Path

import jwt
import pytest

from app.logs import LOG_FORMAT, OneLineFormatter
from app.ratelimit import RateLimiter
from tests.api import Api
from tests.conftest import TEST_SECRET, bearer, make_token
from tests.server import running_server


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


# ---------------------------------------------------------------- 2. invalid UTF-8

BAD_UTF8 = b'{"jobContext": {"title": "\xff\xfe", "company": "C"}}'


async def test_invalid_utf8_in_a_json_body_is_400_everywhere(api, client, caplog):
    s = await api.new_session()
    json = {"content-type": "application/json"}
    for method, path in (
        ("POST", "/interview-sessions"),
        ("PUT", f"/interview-sessions/{s['id']}"),
        ("PUT", f"/interview-sessions/{s['id']}/pause"),
        ("POST", "/interview-sessions/interactions"),
        ("POST", "/interview-sessions/metrics"),
    ):
        r = await api.request(method, path, content=BAD_UTF8, headers=json)
        assert r.status_code == 400, (method, path, r.text)
        assert r.json() == {
            "statusCode": 400,
            "message": "Request body is not valid UTF-8",
            "error": "Bad Request",
        }
    body = b'{"query": "{ sessions { id } }", "variables": {"x": "\xff"}}'
    for who in (api, Api(client, None)):  # anonymous too
        r = await who.request("POST", "/graphql", content=body, headers=json)
        assert r.status_code == 400, r.text
        assert codes(r.json()) == ["BAD_REQUEST"]
        assert "UTF-8" in r.json()["errors"][0]["message"]
    assert [rec for rec in caplog.records if rec.levelno >= logging.ERROR] == []
    assert (await api.get(s["id"])).json()["status"] == "active"  # nothing changed


# ---------------------------------------------------------------- 3. suggestions


@pytest.mark.parametrize("settings_overrides", [{"graphql_introspection": False}])
async def test_without_introspection_no_error_suggests_a_name(api, settings_overrides):
    probes = [  # a near miss, and the name a suggestion would give away
        ("{ sessions(limt: 1) { id } }", "'limit'"),  # an argument
        ("{ sessions(status: ACTIV) { id } }", "ACTIVE"),  # an enum value
        (
            'mutation { createSession(input: {jobContext: {titl: "T", title: "T", company: "C"}}) '
            "{ id } }",
            "'title'",  # an input field
        ),
        ("{ sessions { ... on InterviewSesion { id } } }", "'InterviewSession'"),  # a type
        ("{ sessions { statu } }", "'status'"),  # a field
    ]
    for query, leaked in probes:
        body = await api.graphql(query)
        assert codes(body) and set(codes(body)) == {"BAD_REQUEST"}, (query, body)
        for error in body["errors"]:
            assert "Did you mean" not in error["message"], (query, error)
            assert leaked not in error["message"], (query, error)


async def test_with_introspection_suggestions_stay(api):
    body = await api.graphql("{ sessions(limt: 1) { id } }")
    assert "Did you mean" in body["errors"][0]["message"]


# ---------------------------------------------------------------- 4. log injection


def test_a_log_record_never_spans_two_lines():
    record = logging.LogRecord(
        "app",
        logging.WARNING,
        __file__,
        1,
        "refused %s",
        ("/x\n2026-01-01 FORGED\r\x1b[31m",),
        None,
    )
    record.request_id = "r"
    line = OneLineFormatter(LOG_FORMAT).format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\\n2026-01-01 FORGED" in line


def test_request_data_cannot_forge_a_line_in_the_server_log(tmp_path):
    log = tmp_path / "server.log"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/log.db", "LOG_LEVEL": "DEBUG"}
    token = make_token(f"log-{uuid.uuid4()}")
    with running_server(env, log=log) as base:
        port = int(base.rsplit(":", 1)[1])
        for target in (
            "/interview-sessions/%0a2026-01-01%20FORGED",
            "/nowhere%0d%0a2026-01-01%20FORGED",
            "/interview-sessions?limit=%0a2026-01-01%20FORGED",
            "/graphql?query=%7B%0a2026-01-01%20FORGED",
        ):
            raw_request(
                port,
                f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Connection: close\r\n\r\n".encode(),
            )
        raw_request(port, b"GET /\x00\r\n2026-01-01 FORGED\r\n\r\n")  # not even HTTP
    lines = log.read_text(errors="replace").splitlines()
    assert lines and not any(line.startswith("2026-01-01 FORGED") for line in lines), lines


# ---------------------------------------------------------------- 5. body caps on /graphql


def test_graphql_answers_a_declared_oversized_body_at_once(tmp_path):
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/caps.db"}
    token = make_token(f"cap-{uuid.uuid4()}")
    with running_server(env) as base:
        port = int(base.rsplit(":", 1)[1])
        head = (
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n{{"
        )
        started = time.monotonic()
        answer = raw_request(port, head.encode(), timeout=5)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert time.monotonic() - started < 2  # not after a body read timeout
        big = b"query { " + b"a " * 600_000 + b"}"  # 1.2 MB of text/plain, no length trick
        answer = raw_request(
            port,
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(big)}\r\n\r\n".encode()
            + big,
            timeout=5,
        )
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


# ---------------------------------------------------------------- 7. rate-limit store


class SilentServer:
    """Accepts TCP connections and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            while data := await reader.read(4096):
                self.received += len(data)

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_store_that_never_answers_costs_one_short_timeout(caplog):
    silent = SilentServer()
    async with silent as url:
        limiter = RateLimiter("5/second", url, timeout=0.2, breaker_seconds=30)
        started = time.monotonic()
        assert await limiter.hit("k") is None  # let through, not limited
        assert time.monotonic() - started < 1.5
        await asyncio.sleep(0.1)
        asked = (silent.connections, silent.received)
        assert asked[1] > 0
        for _ in range(50):  # the breaker is open: the store is not asked
            assert await limiter.hit("k") is None
        await asyncio.sleep(0.1)
        assert (silent.connections, silent.received) == asked
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "requests are not limited" in errors[0].getMessage()


def test_the_server_keeps_answering_with_a_hung_rate_limit_store(tmp_path):
    async def scenario() -> list[tuple[int, float]]:
        async with SilentServer() as url:
            env = {
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hung.db",
                "RATE_LIMIT_STORAGE": url,
                "GRAPHQL_APQ_STORAGE": "memory://",
            }
            headers = bearer(make_token(f"hung-{uuid.uuid4()}"))

            def requests() -> list[tuple[int, float]]:
                import httpx

                out = []
                with running_server(env) as base:
                    for _ in range(5):
                        started = time.monotonic()
                        r = httpx.get(f"{base}/interview-sessions", headers=headers, timeout=10)
                        out.append((r.status_code, time.monotonic() - started))
                return out

            return await asyncio.to_thread(requests)

    answers = asyncio.run(scenario())
    assert [status for status, _ in answers] == [200] * 5
    assert max(seconds for _, seconds in answers) < 2  # never the 5 s of a socket timeout


# ---------------------------------------------------------------- 8. small contract gaps


async def test_head_health_answers_the_status_without_a_body(client):
    r = await client.head("/health")
    assert r.status_code == 200 and r.content == b""
    assert "head" in (await client.get("/schema/openapi.json")).json()["paths"]["/health"]


async def test_a_jwt_whose_exp_is_a_string_is_refused(client):
    token = jwt.encode(
        {"sub": "u", "exp": str(int(time.time()) + 3600)}, TEST_SECRET, algorithm="HS256"
    )
    r = await client.get("/interview-sessions", headers=bearer(token))
    assert r.status_code == 401, r.text


async def test_several_operations_need_an_operation_name(api):
    body = await api.graphql("query A { sessions { id } } query B { activeSessions { id } }")
    assert codes(body) == ["BAD_REQUEST"] and "data" not in body
    assert "operation name" in body["errors"][0]["message"]


# ---------------------------------------------------------------- 9. slow clients


def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes; read one answer (its head and Content-Length bytes of body),
    or what arrives until the server closes or ``timeout`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):  # the server may close before it all went
            s.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
            head, sep, body = got.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
        return got


def test_slow_heads_and_bodies_are_cut_and_connections_capped(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/slow.db",
        "HTTP_HEADER_TIMEOUT": "1",
        "HTTP_BODY_TIMEOUT": "1",
        "MAX_CONNECTIONS": "5",
    }
    with running_server(env) as base:
        port = int(base.rsplit(":", 1)[1])
        started = time.monotonic()
        answer = raw_request(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", timeout=6)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"statusCode":408' in answer
        assert time.monotonic() - started < 4
        # Nothing at all sent: closed too.
        assert raw_request(port, b"", timeout=6).startswith(b"HTTP/1.1 408 ")

        token = make_token(f"slow-{uuid.uuid4()}")
        answer = raw_request(
            port,
            b"POST /interview-sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"jobContext":',
            timeout=6,
        )
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"did not arrive in time" in answer

        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
        try:
            time.sleep(0.2)
            answer = raw_request(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b'"statusCode":503' in answer
        finally:
            for s in idle:
                s.close()
        time.sleep(1.5)  # the idle ones were cut by the header timeout anyway
        import httpx

        assert httpx.get(f"{base}/health", timeout=5).status_code == 200


def test_over_the_connection_cap_only_the_newest_connections_are_refused(tmp_path):
    """MAX_CONNECTIONS refuses the connections accepted over the cap, with a
    503 and Retry-After after reading their request (no reset), and keeps
    answering the ones it already held, on every request they send."""
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cap.db", "MAX_CONNECTIONS": "3"}
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

    def ask(s: socket.socket) -> bytes:
        s.sendall(health)
        got = b""
        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got

    with running_server(env) as base:
        port = int(base.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            for s in held:
                assert ask(s).startswith(b"HTTP/1.1 200 ")
            for _ in range(2):  # over the cap, twice: refused each time
                answer = raw_request(port, health, timeout=5)
                assert answer.startswith(b"HTTP/1.1 503 "), answer
                assert re.search(rb"(?im)^retry-after: 1\r$", answer), answer
                assert b'"statusCode":503' in answer
            # Refused ones, one still open: the held connections are answered,
            # again and again, as if nothing happened.
            extra = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                for s in held * 2:
                    assert ask(s).startswith(b"HTTP/1.1 200 ")
                refused = ask(extra)
                assert refused.startswith(b"HTTP/1.1 503 "), refused
                assert extra.recv(1) == b""  # and closed after its answer
            finally:
                extra.close()
            # One held connection goes: the next newcomer is under the cap.
            held.pop().close()
            time.sleep(0.2)
            assert raw_request(port, health, timeout=5).startswith(b"HTTP/1.1 200 ")
        finally:
            for s in held:
                s.close()


# ---------------------------------------------------------------- raw bytes, both faces


def _request_variants(token: str) -> list[bytes]:
    auth = f"Authorization: Bearer {token}\r\n".encode()
    bodies = [
        BAD_UTF8,
        b'{"jobContext": {"title": "T", "comp',  # truncated JSON
        b"\xff\xfe\x00\x01" * 8,
        b'{"query": "{ sessions { id } }"',
        b'{"sessionId": "' + b"\xc3" + b'"}',
        b"[" * 5000,
        b'{"query": "\\ud800"}',
        b"",
    ]
    types = [b"application/json", b"text/plain", b"application/xml", b"multipart/form-data", None]
    paths = [
        b"POST /interview-sessions",
        b"PUT /interview-sessions/00000000-0000-0000-0000-000000000000",
        b"PUT /interview-sessions/00000000-0000-0000-0000-000000000000/complete",
        b"POST /interview-sessions/interactions",
        b"POST /interview-sessions/metrics",
        b"POST /graphql",
        b"GET /graphql?query=%FF%FE",
    ]
    out = []
    for i, body in enumerate(bodies):
        for j, path in enumerate(paths):
            kind = types[(i + j) % len(types)]
            head = path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth
            if kind is not None:
                head += b"Content-Type: " + kind + b"\r\n"
            out.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    big = b"X-Big: " + b"a" * 200_000 + b"\r\n"
    out.append(b"GET /interview-sessions HTTP/1.1\r\nHost: x\r\n" + auth + big + b"\r\n")
    out.append(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n")
    out.append(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")  # short
    out.append(b"GET /\xff\xfe HTTP/1.1\r\nHost: \xff\r\n\r\n")
    return out


def test_raw_bytes_never_get_a_5xx_or_an_error_log(db_url, tmp_path):
    log = tmp_path / "server.log"
    env = {
        "DATABASE_URL": db_url,
        "LOG_LEVEL": "INFO",
        "RATE_LIMITS": "1000000/second",
        "HTTP_BODY_TIMEOUT": "1",
    }
    with running_server(env, log=log) as base:
        port = int(base.rsplit(":", 1)[1])
        statuses = []
        for data in _request_variants(make_token(f"raw-{uuid.uuid4()}")):
            answer = raw_request(port, data, timeout=5)
            status = answer[9:12]
            statuses.append(status)
            assert not status.startswith(b"5"), (data[:200], answer[:300])
    assert any(s.startswith(b"4") for s in statuses)
    text = Path(log).read_text(errors="replace")
    assert " ERROR " not in text and "Traceback" not in text, text[-5000:]
