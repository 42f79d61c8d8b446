"""Live streams against real server processes, on both databases: Server-Sent
Events, replay with after / Last-Event-ID, delivery across processes, a
broker outage, retention, and a stopping server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import bearer, make_token
from tests.live.client import MY_EVENTS, Socket, socket, sse_events
from tests.server import running_server


@contextlib.contextmanager
def servers(db_url: str, tmp_path, n: int = 1, **env: str) -> Iterator[list[str]]:
    base_env = {"DATABASE_URL": db_url, "RATE_LIMITS": "100000/minute", **env}
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(running_server(base_env, log=tmp_path / f"server{i}.log"))
            for i in range(n)
        ]


def new_user() -> tuple[str, dict[str, str]]:
    u = f"user-{uuid.uuid4()}"
    return u, bearer(make_token(u))


async def write_some(client: httpx.AsyncClient, auth: dict[str, str], n: int) -> list[str]:
    """n changes: a session, then interactions and metrics; the expected types."""
    s = (
        await client.post(
            "/interview-sessions", json={"jobContext": {"title": "T", "company": "C"}}, headers=auth
        )
    ).json()
    types = ["session_created"]
    for k in range(n - 1):
        if k % 2:
            await client.post(
                "/interview-sessions/metrics",
                json={"sessionId": s["id"], "totalLatencyMs": k},
                headers=auth,
            )
            types.append("metrics_recorded")
        else:
            await client.post(
                "/interview-sessions/interactions",
                json={"sessionId": s["id"], "question": f"Q{k}"},
                headers=auth,
            )
            types.append("interaction_created")
    return types


async def collect_sse(client, path, auth, count, extra=None) -> list[dict[str, Any]]:
    out = []
    async for message in sse_events(client, path, {**auth, **(extra or {})}, count):
        if "data" in message:
            out.append(message)
            if len(out) == count:
                return out
    return out


async def test_sse_delivers_events_and_resumes_with_last_event_id(db_url, tmp_path):
    with servers(db_url, tmp_path, SSE_HEARTBEAT_SECONDS="0.3") as [base]:
        _u, auth = new_user()
        async with httpx.AsyncClient(base_url=base) as c:
            reader = asyncio.ensure_future(collect_sse(c, "/interview-sessions/events", auth, 3))
            await asyncio.sleep(0.5)
            types = await write_some(c, auth, 5)
            first = await asyncio.wait_for(reader, 15)
            assert [m["event"] for m in first] == types[:3]
            data = first[1]["data"]
            assert data["type"] == "interaction_created"  # REST values, not GraphQL names
            assert set(data) == {
                "cursor",
                "type",
                "sessionId",
                "at",
                "session",
                "interaction",
                "metric",
            }
            assert data["interaction"]["question"] == "Q0" and data["session"]["status"] == "active"
            assert first[0]["id"] == first[0]["data"]["cursor"]
            # A browser reconnecting sends Last-Event-ID: the rest, exactly.
            rest = await collect_sse(
                c, "/interview-sessions/events", auth, 2, {"last-event-id": first[2]["id"]}
            )
            assert [m["event"] for m in rest] == types[3:]
            again = await collect_sse(
                c, f"/interview-sessions/events?after={first[0]['id']}", auth, 4
            )
            assert [m["event"] for m in again] == types[1:]


async def test_sse_of_one_session_and_its_refusals(db_url, tmp_path):
    with servers(db_url, tmp_path, SSE_HEARTBEAT_SECONDS="0.2") as [base]:
        _u, auth = new_user()
        _o, other = new_user()
        async with httpx.AsyncClient(base_url=base) as c:
            s = (
                await c.post(
                    "/interview-sessions",
                    json={"jobContext": {"title": "T", "company": "C"}},
                    headers=auth,
                )
            ).json()
            for path, headers, status in (
                (f"/interview-sessions/{s['id']}/events", other, 403),
                (f"/interview-sessions/{uuid.uuid4()}/events", auth, 404),
                ("/interview-sessions/nope/events", auth, 400),
                ("/interview-sessions/events?after=bogus", auth, 400),
                ("/interview-sessions/events", {}, 401),
            ):
                r = await c.get(path, headers=headers)
                assert r.status_code == status, (path, r.text)
                assert r.json()["statusCode"] == status
            # Heartbeats while nothing happens, then only this session's events.
            seen: list[dict[str, Any]] = []
            async for message in sse_events(
                c, f"/interview-sessions/{s['id']}/events?after=", auth, 0
            ):
                seen.append(message)
                if sum("comment" in m for m in seen) >= 3:
                    break
            assert any(m.get("comment") == "keep-alive" for m in seen)


async def test_a_subscriber_on_one_process_receives_writes_of_another(db_url, tmp_path):
    with servers(db_url, tmp_path, n=2) as [a, b]:
        _u, auth = new_user()
        async with socket(a) as ws, httpx.AsyncClient(base_url=b) as writer:
            s = Socket(ws)
            await s.init(auth["Authorization"].split(" ", 1)[1])
            await s.subscribe("1", MY_EVENTS)
            await asyncio.sleep(0.3)
            types = await write_some(writer, auth, 4)
            got = [(await s.recv())["payload"]["data"]["myEvents"]["type"] for _ in types]
            assert got == [t.upper() for t in types]


async def test_replay_after_a_disconnect_then_live_without_gap_or_duplicate(db_url, tmp_path):
    with servers(db_url, tmp_path, n=2) as [a, b]:
        _u, auth = new_user()
        token = auth["Authorization"].split(" ", 1)[1]
        async with httpx.AsyncClient(base_url=b) as writer:
            async with socket(a) as ws:
                s = Socket(ws)
                await s.init(token)
                await s.subscribe("1", MY_EVENTS)
                await asyncio.sleep(0.3)
                first = await write_some(writer, auth, 3)
                got = [(await s.recv())["payload"]["data"]["myEvents"] for _ in first]
            # Disconnected: more happens meanwhile.
            missed = await write_some(writer, auth, 3)
            async with socket(a) as ws:
                s = Socket(ws)
                await s.init(token)
                await s.subscribe("1", MY_EVENTS, {"after": got[-1]["cursor"]})
                replayed = [(await s.recv())["payload"]["data"]["myEvents"] for _ in missed]
                live = await write_some(writer, auth, 2)
                live_got = [(await s.recv())["payload"]["data"]["myEvents"] for _ in live]
                with pytest.raises(TimeoutError):
                    await s.recv(timeout=0.5)  # nothing more: no duplicate
        every = got + replayed + live_got
        assert [e["type"].lower() for e in every] == first + missed + live
        assert len({e["cursor"] for e in every}) == len(every)


async def test_a_broker_outage_loses_nothing(pg_db_url, tmp_path):
    """PostgreSQL: the LISTEN connection is killed while writes go on; the
    subscribers catch up from the event table when the bus reconnects."""
    with servers(pg_db_url, tmp_path, n=2) as [a, b]:
        _u, auth = new_user()
        token = auth["Authorization"].split(" ", 1)[1]
        admin = await asyncpg.connect(pg_db_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            async with socket(a) as ws, httpx.AsyncClient(base_url=b) as writer:
                s = Socket(ws)
                await s.init(token)
                await s.subscribe("1", MY_EVENTS)
                await asyncio.sleep(0.3)
                before = await write_some(writer, auth, 2)
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'interview-api-events' "
                    "AND datname = current_database()"  # this test's servers only
                )
                assert killed == 1  # a's; b has no subscriber, so it does not listen
                during = await write_some(writer, auth, 4)
                expected = before + during
                got = [
                    (await s.recv(timeout=15))["payload"]["data"]["myEvents"]["type"].lower()
                    for _ in expected
                ]
                assert got == expected
        finally:
            await admin.close()


async def test_a_stopping_server_ends_sse_streams(db_url, tmp_path):
    with servers(db_url, tmp_path) as [base]:
        _u, auth = new_user()
        async with httpx.AsyncClient(base_url=base) as c:

            async def read_all() -> list[dict[str, Any]]:
                return [m async for m in sse_events(c, "/interview-sessions/events", auth, 0, 20)]

            reader = asyncio.ensure_future(read_all())
            await asyncio.sleep(0.5)
            os.kill(base.proc.pid, signal.SIGTERM)  # type: ignore[attr-defined]
            messages = await asyncio.wait_for(reader, 15)  # ends, without an error
        assert messages[0].get("comment") == "connected"


async def test_a_session_stream_resumes_after_its_session_is_deleted(db_url, tmp_path):
    """Resuming a session's stream (Last-Event-ID, ``after``, GraphQL ``after``)
    whose session was deleted since the cursor: what was missed arrives, the
    deletion last, then the stream ends (SSE) or completes (GraphQL). Without
    a cursor, or with a cursor past the deletion, it is 404 as before; someone
    else's deleted session stays 404 too."""
    with servers(db_url, tmp_path) as [base]:
        _u, auth = new_user()
        async with httpx.AsyncClient(base_url=base, timeout=15) as c:
            s = (
                await c.post(
                    "/interview-sessions",
                    json={"jobContext": {"title": "T", "company": "C"}},
                    headers=auth,
                )
            ).json()
            path = f"/interview-sessions/{s['id']}/events"
            reader = asyncio.ensure_future(collect_sse(c, path, auth, 1))
            await asyncio.sleep(0.5)
            await c.post(
                "/interview-sessions/interactions",
                json={"sessionId": s["id"], "question": "Q1"},
                headers=auth,
            )
            [first] = await reader
            cursor = first["id"]
            # Offline meanwhile: one more change, then the delete.
            await c.post("/interview-sessions/metrics", json={"sessionId": s["id"]}, headers=auth)
            assert (
                await c.delete(f"/interview-sessions/{s['id']}", headers=auth)
            ).status_code == 204

            for extra, url in (
                ({"Last-Event-ID": cursor}, path),
                ({}, f"{path}?after={cursor}"),
            ):
                got = []
                async for message in sse_events(c, url, {**auth, **extra}, 10):
                    if "data" in message:
                        got.append(message["event"])
                # The stream ended by itself after the deletion (no timeout).
                assert got == ["metrics_recorded", "session_deleted"], got

            deleted_cursor = None
            async with socket(base) as ws:
                sock = Socket(ws)
                await sock.init(auth["Authorization"].split()[1])
                await sock.subscribe(
                    "1",
                    "subscription($id: ID!, $after: String) { sessionEvents(sessionId: $id, "
                    "after: $after) { cursor type session { id } } }",
                    {"id": s["id"], "after": cursor},
                )
                types = []
                while True:
                    message = await sock.recv()
                    if message["type"] == "complete":
                        break
                    event = message["payload"]["data"]["sessionEvents"]
                    types.append(event["type"])
                    deleted_cursor = event["cursor"]
                assert types == ["METRICS_RECORDED", "SESSION_DELETED"]

            r = await c.get(path, headers={**auth, "accept": "text/event-stream"})
            assert r.status_code == 404  # no cursor
            r = await c.get(
                path,
                headers={**auth, "accept": "text/event-stream", "Last-Event-ID": deleted_cursor},
            )
            assert r.status_code == 404  # past the deletion: nothing to resume
            _other, other_auth = new_user()
            r = await c.get(
                f"{path}?after={cursor}", headers={**other_auth, "accept": "text/event-stream"}
            )
            assert r.status_code == 400  # another user's cursor is not theirs
