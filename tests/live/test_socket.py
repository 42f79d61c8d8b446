"""GraphQL over WebSocket (graphql-transport-ws) against a real server process,
on both databases: authentication, closes, limits, errors, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import bearer, make_token
from tests.live.client import MY_EVENTS, SESSION_EVENTS, Socket, socket
from tests.server import running_server


@pytest.fixture
def server(db_url, tmp_path, request) -> Iterator[str]:
    env = {
        "DATABASE_URL": db_url,
        "RATE_LIMITS": "100000/minute",
        "WS_INIT_TIMEOUT": "0.5",
        "MAX_SUBSCRIPTIONS_PER_CONNECTION": "3",
        "MAX_BODY_BYTES": "20000",
        "CORS_ORIGINS": "http://allowed.example",
        **getattr(request, "param", {}),
    }
    with running_server(env, log=tmp_path / "server.log") as base:
        yield base


def user() -> tuple[str, str]:
    u = f"user-{uuid.uuid4()}"
    return u, make_token(u)


async def test_token_in_connection_init_any_key_case(server):
    for key in ("Authorization", "authorization", "AUTHORIZATION"):
        async with socket(server) as ws:
            assert (await Socket(ws).init(user()[1], key)) == {"type": "connection_ack"}


async def test_token_on_the_upgrade(server):
    async with socket(server, headers=bearer(user()[1])) as ws:
        assert (await Socket(ws).init(None)) == {"type": "connection_ack"}


@pytest.mark.parametrize("token", [None, "not-a-jwt", make_token("x", secret="0" * 40)])
async def test_a_missing_or_bad_token_closes_with_4403(server, token):
    async with socket(server) as ws:
        s = Socket(ws)
        await s.send(
            {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {token}"} if token else {},
            }
        )
        assert (await s.closed())[0] == 4403


async def test_a_bad_token_in_init_is_refused_even_with_a_good_upgrade(server):
    async with socket(server, headers=bearer(user()[1])) as ws:
        s = Socket(ws)
        await s.send({"type": "connection_init", "payload": {"Authorization": "Bearer junk"}})
        assert (await s.closed())[0] == 4403


async def test_no_connection_init_in_time_closes_with_4408(server):
    async with socket(server) as ws:
        assert (await Socket(ws).closed())[0] == 4408


async def test_the_legacy_protocol_is_refused(server):
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with socket(server, protocols=["graphql-ws"]) as ws:
            await Socket(ws).init(user()[1])


async def test_an_origin_that_is_not_allowed_is_refused(server):
    with pytest.raises(InvalidStatus) as info:
        async with socket(server, headers={"Origin": "http://evil.example"}):
            pass
    assert info.value.response.status_code == 403
    async with socket(server, headers={"Origin": "http://allowed.example"}) as ws:
        assert (await Socket(ws).init(user()[1]))["type"] == "connection_ack"


async def test_subscribe_before_ack_closes_with_4401(server):
    async with socket(server) as ws:
        s = Socket(ws)
        await s.subscribe("1", MY_EVENTS)
        assert (await s.closed())[0] == 4401


async def test_forbidden_missing_and_bad_ids_are_errors_with_codes(server):
    _owner, owner_token = user()
    async with httpx.AsyncClient(base_url=server) as c:
        r = await c.post(
            "/interview-sessions",
            json={"jobContext": {"title": "T", "company": "C"}},
            headers=bearer(owner_token),
        )
        sid = r.json()["id"]
    async with socket(server) as ws:
        s = Socket(ws)
        await s.init(user()[1])
        for op, session_id, code in (
            ("a", sid, "FORBIDDEN"),
            ("b", str(uuid.uuid4()), "NOT_FOUND"),
            ("c", "nope", "BAD_REQUEST"),
        ):
            await s.subscribe(op, SESSION_EVENTS, {"id": session_id})
            message = await s.recv()
            assert (message["id"], message["type"]) == (op, "error"), message
            assert message["payload"][0]["extensions"]["code"] == code
        await s.subscribe("d", MY_EVENTS, {"after": "tampered"})
        message = await s.recv()
        assert message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
        await s.subscribe("e", "subscription { nope }")
        message = await s.recv()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_queries_and_mutations_over_the_socket_obey_http_rules(server):
    _u, token = user()
    async with socket(server) as ws:
        s = Socket(ws)
        await s.init(token)
        await s.subscribe(
            "m", 'mutation { createSession(input: {jobContext: {title: "", company: "C"}}) { id } }'
        )
        message = await s.recv()
        assert message["type"] == "next"
        assert message["payload"]["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert (await s.recv())["type"] == "complete"
        deep = "{ sessions { " + "jobContext { " * 12 + "title" + " }" * 12 + " } }"
        await s.subscribe("d", deep)
        message = await s.recv()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_at_most_n_operations_at_once(server):
    async with socket(server) as ws:
        s = Socket(ws)
        await s.init(user()[1])
        for n in range(3):
            await s.subscribe(str(n), MY_EVENTS)
        await s.subscribe("4", MY_EVENTS)
        message = await s.recv()
        assert message["id"] == "4" and message["type"] == "error"
        assert "At most 3 operations" in message["payload"][0]["message"]
        await s.send({"id": "0", "type": "complete"})
        await asyncio.sleep(0.2)
        await s.subscribe("5", MY_EVENTS)  # room again
        with pytest.raises(TimeoutError):
            await s.recv(timeout=0.5)  # no error: it runs


async def test_a_frame_over_the_body_cap_closes_the_socket(server):
    async with socket(server) as ws:
        s = Socket(ws)
        await s.init(user()[1])
        await s.send({"id": "1", "type": "subscribe", "payload": {"query": "#" + "x" * 30000}})
        assert (await s.closed())[0] == 1009


@pytest.mark.parametrize("server", [{"RATE_LIMITS": "4/minute"}], indirect=True)
async def test_socket_operations_spend_the_http_budget(server):
    _u, token = user()
    async with httpx.AsyncClient(base_url=server, headers=bearer(token)) as c:
        assert (await c.get("/interview-sessions")).status_code == 200  # 1 of 4
        # The upgrade carries no token: it spends the client address's budget.
        async with socket(server) as ws:
            s = Socket(ws)
            await s.init(token)
            for op in "abc":  # 2, 3, 4 of 4
                await s.subscribe(op, "{ sessions { id } }")
                assert (await s.recv())["type"] == "next"
                assert (await s.recv())["type"] == "complete"
            await s.subscribe("d", "{ sessions { id } }")  # over
            message = await s.recv()
            assert message["type"] == "error"
            assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert (await c.get("/interview-sessions")).status_code == 429  # the same budget


async def test_the_socket_closes_with_4403_when_the_token_expires(server):
    u = f"user-{uuid.uuid4()}"
    # Expired 28 s ago: valid for 2 more seconds within the 30 s leeway.
    token = make_token(u, ttl=-28)
    async with socket(server) as ws:
        s = Socket(ws)
        assert (await s.init(token))["type"] == "connection_ack"
        started = time.monotonic()
        code, _ = await s.closed(timeout=10)
        assert code == 4403
        assert time.monotonic() - started < 8


async def test_a_stopping_server_closes_sockets_with_1001(db_url, tmp_path):
    env = {"DATABASE_URL": db_url}
    with running_server(env, log=tmp_path / "server.log") as base:
        async with socket(base) as ws:
            s = Socket(ws)
            await s.init(user()[1])
            await s.subscribe("1", MY_EVENTS)
            await asyncio.sleep(0.2)
            os.kill(base.proc.pid, signal.SIGTERM)
            code, _ = await s.closed(timeout=10)
    assert code == 1001


@pytest.mark.parametrize("server", [{"MAX_SUBSCRIPTIONS_PER_CONNECTION": "10"}], indirect=True)
async def test_nothing_is_sent_after_complete_even_under_load(server):
    """150 subscriptions started and completed while events stream in: once
    the server has had the completes, no event arrives for any of them, and
    they no longer count against the cap."""
    _u, token = user()
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=server, headers=bearer(token)) as c:
        sid = (
            await c.post("/interview-sessions", json={"jobContext": {"title": "T", "company": "C"}})
        ).json()["id"]

        async def write() -> None:
            while not stop.is_set():
                r = await c.post("/interview-sessions/metrics", json={"sessionId": sid})
                assert r.status_code == 201

        async with socket(server) as ws:
            s = Socket(ws)
            await s.init(token)
            writers = [asyncio.create_task(write()) for _ in range(4)]
            completed: set[str] = set()
            late: list[dict] = []
            closed = False

            async def read() -> None:
                while True:
                    message = await s.recv(timeout=30)
                    if closed and message.get("id") in completed:
                        late.append(message)

            reader = asyncio.create_task(read())
            try:
                for round_ in range(15):
                    ids = [f"{round_}-{n}" for n in range(10)]
                    for op in ids:
                        await s.subscribe(op, MY_EVENTS)
                    await asyncio.sleep(0.01 * (round_ % 4))
                    for op in ids:
                        await s.send({"id": op, "type": "complete"})
                    completed.update(ids)
                await asyncio.sleep(0.5)  # what was on its way before the completes
                closed = True
                await asyncio.sleep(1.5)  # events keep coming: none for them
            finally:
                stop.set()
                await asyncio.gather(*writers)
            assert late == []
            reader.cancel()
            # The cap counts only what runs: ten more start.
            for n in range(10):
                await s.subscribe(f"new-{n}", MY_EVENTS)
            await asyncio.sleep(0.3)
            await c.post("/interview-sessions/metrics", json={"sessionId": sid})
            got = set()
            while len(got) < 10:
                message = await s.recv()
                assert message["type"] == "next", message
                got.add(message["id"])


async def test_each_event_reads_the_nested_lists_anew(server):
    """A subscription's nested fields (the session's interactions) are read
    for each event, not from the first event's DataLoaders."""
    _u, token = user()
    query = "subscription { myEvents { type session { interactions { question } } } }"
    async with httpx.AsyncClient(base_url=server, headers=bearer(token)) as c:
        sid = (
            await c.post("/interview-sessions", json={"jobContext": {"title": "T", "company": "C"}})
        ).json()["id"]
        async with socket(server) as ws:
            s = Socket(ws)
            await s.init(token)
            await s.subscribe("1", query)
            await asyncio.sleep(0.3)
            seen = []
            for n in range(3):
                r = await c.post(
                    "/interview-sessions/interactions", json={"sessionId": sid, "question": f"Q{n}"}
                )
                assert r.status_code == 201
                message = await s.recv()
                event = message["payload"]["data"]["myEvents"]
                seen.append([i["question"] for i in event["session"]["interactions"]])
            assert seen == [["Q0"], ["Q0", "Q1"], ["Q0", "Q1", "Q2"]]
            # A query on the same socket reads what is stored now, too.
            await s.subscribe("q", f'{{ session(id: "{sid}") {{ interactions {{ question }} }} }}')
            message = await s.recv()
            assert len(message["payload"]["data"]["session"]["interactions"]) == 3
