"""Logs as an operator reads them (operations.md, "Logs"), from a real server
process on both databases: ``LOG_FORMAT=json`` lines, one access record per
HTTP request and per WebSocket operation with its fields and the strategy that
answered, probes quiet, no token in any line."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api import JOB
from tests.conftest import bearer, make_token
from tests.live.client import Socket, socket
from tests.server import running_server

SECRET_MARK = "eyJ"  # every JWT starts so: no line may hold one


@pytest.fixture
def served(db_url, tmp_path, request) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "server.log"
    env = {
        "DATABASE_URL": db_url,
        "RATE_LIMITS": "100000/minute",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        **getattr(request, "param", {}),
    }
    with running_server(env, log=log) as base:
        yield base, log


def records(log: Path) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line parses


def wait_for(log: Path, predicate, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in records(log) if r.get("logger") == "app.access" and predicate(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_every_line_is_json_and_each_request_has_one_access_record(served):
    base, log = served
    user = f"user-{uuid.uuid4()}"
    token = make_token(user)
    headers = {**bearer(token), "x-request-id": "trace-me-1"}
    with httpx.Client(base_url=base, timeout=10) as c:
        created = c.post("/interview-sessions", json={"jobContext": JOB}, headers=headers)
        assert created.status_code == 201
        sid = created.json()["id"]
        assert c.get("/interview-sessions", headers=headers).status_code == 200
        assert c.get(f"/interview-sessions/{sid}/details", headers=headers).status_code == 200
        assert c.get(f"/interview-sessions/{sid}", headers=headers).status_code == 200
        gql = c.post(
            "/graphql",
            json={"query": "query Mine { sessions(limit: 5) { id status } }"},
            headers=headers,
        )
        assert gql.status_code == 200 and "errors" not in gql.json()
        assert c.get("/nowhere", headers=headers).status_code == 404
        assert c.get("/health").status_code == 200
    # The access log is written out every 0.2 s: wait for the last request's line.
    mine = wait_for(
        log, lambda r: r.get("request_id") == "trace-me-1" and r["route"] == "unmatched"
    )
    assert mine, log.read_text()
    access = [r for r in records(log) if r["logger"] == "app.access"]
    for r in records(log):
        assert {"time", "level", "logger", "message", "request_id"} <= r.keys()
        assert r["time"].endswith("+00:00")
    by_route = {(r["method"], r["route"]): r for r in access if r["request_id"] == "trace-me-1"}
    assert set(by_route) == {
        ("POST", "/interview-sessions"),
        ("GET", "/interview-sessions"),
        ("GET", "/interview-sessions/{id}/details"),
        ("GET", "/interview-sessions/{id}"),
        ("POST", "/graphql"),
        ("GET", "unmatched"),
    }
    for r in by_route.values():
        assert r["user"] == user
        assert r["client"] == "127.0.0.1"
        assert isinstance(r["duration_ms"], float | int) and r["duration_ms"] >= 0
        assert r["level"] == "INFO"
    assert by_route[("POST", "/interview-sessions")]["status"] == 201
    assert by_route[("GET", "unmatched")]["status"] == 404
    assert by_route[("GET", "/interview-sessions/{id}/details")]["path"] == (
        f"/interview-sessions/{sid}/details"
    )
    # Which strategy answered: the fast REST reads and a compiled GraphQL plan.
    assert by_route[("GET", "/interview-sessions")]["strategy"] == "fast"
    assert by_route[("GET", "/interview-sessions/{id}/details")]["strategy"] == "fast"
    graphql = by_route[("POST", "/graphql")]
    assert graphql["operation_name"] == "Mine"
    assert graphql["operation_type"] == "query"
    assert graphql["strategy"] == "compiled"
    # Probes answering 200 are not written at INFO.
    assert not [r for r in access if r["route"] == "/health"]
    assert SECRET_MARK not in log.read_text()


def test_a_query_the_plans_do_not_take_names_the_standard_executor_and_why(served):
    base, log = served
    headers = {**bearer(make_token(f"user-{uuid.uuid4()}")), "x-request-id": "fallback-1"}
    # @include on a variable: the plans do not take it.
    query = "query Odd($x: Boolean!) { sessions(limit: 1) { id @include(if: $x) } }"
    body = {"query": query, "variables": {"x": True}}
    r = httpx.post(f"{base}/graphql", json=body, headers=headers, timeout=10)
    assert r.status_code == 200 and "errors" not in r.json()
    found = wait_for(log, lambda r: r.get("request_id") == "fallback-1")
    assert len(found) == 1
    assert found[0]["strategy"] == "standard"
    assert found[0]["fallback"] == "@skip/@include on a variable"  # why
    assert found[0]["operation_name"] == "Odd"


def test_an_access_token_in_the_query_string_is_written_as_stars(served):
    base, log = served
    token = make_token(f"user-{uuid.uuid4()}")
    r = httpx.get(
        f"{base}/interview-sessions?access_token={token}&limit=2",
        headers={"x-request-id": "masked-1"},
        timeout=10,
    )
    assert r.status_code in (200, 401)
    found = wait_for(log, lambda r: r.get("request_id") == "masked-1")
    assert found and found[0]["path"] == "/interview-sessions?access_token=***&limit=2"
    assert token not in log.read_text()


async def test_each_websocket_operation_has_an_access_record(served):
    base, log = served
    user = f"user-{uuid.uuid4()}"
    token = make_token(user)
    async with socket(base, headers={"x-request-id": "socket-1"}) as ws:
        s = Socket(ws)
        assert (await s.init(token)) == {"type": "connection_ack"}
        await s.send(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "query Count { sessions { id } }"},
            }
        )
        assert (await s.recv())["type"] == "next"
        assert (await s.recv())["type"] == "complete"
        await s.send({"id": "2", "type": "subscribe", "payload": {"query": "{ nope }"}})
        assert (await s.recv())["type"] == "error"
    await asyncio.sleep(0.2)
    found = wait_for(log, lambda r: r.get("request_id") == "socket-1" and r["method"] == "WS")
    assert [(r["status"], r.get("operation_name")) for r in found] == [
        ("complete", "Count"),
        ("refused", None),
    ]
    assert found[0]["user"] == user and found[0]["operation_type"] == "query"
    assert found[0]["route"] == "/graphql"
    assert token not in log.read_text()


@pytest.mark.parametrize("served", [{"ACCESS_LOG": "false"}], indirect=True)
def test_access_log_off(served):
    base, log = served
    headers = {**bearer(make_token("quiet")), "x-request-id": "quiet-1"}
    assert httpx.get(f"{base}/interview-sessions", headers=headers).status_code == 200
    time.sleep(0.3)
    assert not [r for r in records(log) if r["logger"] == "app.access"]


@pytest.mark.parametrize("served", [{"LOG_FORMAT": "text"}], indirect=True)
def test_text_format_writes_one_line_per_request(served):
    base, log = served
    headers = {**bearer(make_token("texty")), "x-request-id": "text-1"}
    assert httpx.get(f"{base}/interview-sessions", headers=headers).status_code == 200
    deadline = time.monotonic() + 5
    while "[text-1]" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(x for x in log.read_text().splitlines() if "[text-1]" in x)
    assert " INFO app.access [text-1] GET /interview-sessions 200 " in line
    assert "route=/interview-sessions" in line and "user=texty" in line
    assert "strategy=fast" in line
