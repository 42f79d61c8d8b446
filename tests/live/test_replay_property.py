"""Property: whatever the writes, disconnects and resume points, every stream
a client opens is exactly the committed history after its cursor, and
resuming from the last event seen yields the whole history, once, in order.

Scenarios are drawn by Hypothesis (a random pace of writes from a second
server process, random disconnects, resume points that are the last event
seen or an earlier one), then played against real server processes over real
sockets, on both databases.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import bearer, make_token
from tests.live.client import MY_EVENTS, Socket, socket
from tests.live.test_streams import servers

SCENARIOS = 6


def scenarios(n: int) -> list[dict[str, Any]]:
    drawn: list[dict[str, Any]] = []
    scenario = st.fixed_dictionaries(
        {
            "writes": st.integers(8, 25),
            "pace_ms": st.integers(0, 30),
            # per connection: how many events to read before dropping it, and
            # whether to resume from the last event seen or an earlier one
            "segments": st.lists(
                st.tuples(st.integers(1, 6), st.booleans()), min_size=2, max_size=5
            ),
            "seed": st.integers(0, 2**16),
        }
    )

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(scenario)
    def collect(example: dict[str, Any]) -> None:
        drawn.append(example)

    collect()
    return drawn


async def committed(db_url: str, user: str) -> list[tuple[int, str]]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT seq, type FROM session_events WHERE user_id = :u ORDER BY seq"),
                {"u": user},
            )
            return [(int(r[0]), str(r[1])) for r in rows]
    finally:
        await engine.dispose()


async def writer(base: str, auth: dict[str, str], n: int, pace: float, rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, headers=auth) as c:
        s = (
            await c.post("/interview-sessions", json={"jobContext": {"title": "T", "company": "C"}})
        ).json()
        for k in range(n - 1):
            choice = rng.random()
            if choice < 0.5:
                await c.post(
                    "/interview-sessions/interactions",
                    json={"sessionId": s["id"], "question": f"Q{k}"},
                )
            elif choice < 0.8:
                await c.post(
                    "/interview-sessions/metrics",
                    json={"sessionId": s["id"], "userSatisfaction": 3},
                )
            else:
                action = "pause" if k % 2 else "start"
                await c.put(f"/interview-sessions/{s['id']}/{action}")
            await asyncio.sleep(pace * rng.random())


async def play(reader_base: str, writer_base: str, db_url: str, scenario: dict[str, Any]) -> None:
    rng = random.Random(scenario["seed"])
    user = f"prop-{uuid.uuid4()}"
    token = make_token(user)
    auth = bearer(token)
    subscribed = asyncio.Event()

    async def writes_after_the_first_subscription() -> None:
        await subscribed.wait()
        await writer(writer_base, auth, scenario["writes"], scenario["pace_ms"] / 1000, rng)

    writes = asyncio.ensure_future(writes_after_the_first_subscription())
    seen: list[tuple[str, str]] = []  # (cursor, type) of every event received, in order
    segments: list[tuple[str | None, list[tuple[str, str]]]] = []
    resume: str | None = None
    started = False

    async def connection(
        after: str | None, limit: int | None, until: int | None = None
    ) -> list[tuple[str, str]]:
        got: list[tuple[str, str]] = []
        async with socket(reader_base) as ws:
            s = Socket(ws)
            await s.init(token)
            await s.subscribe("1", MY_EVENTS, {"after": after} if after else {})
            if not subscribed.is_set():
                await asyncio.sleep(0.3)  # the subscription is running: now write
                subscribed.set()
            while (limit is None or len(got) < limit) and (until is None or len(got) < until):
                try:
                    message = await s.recv(timeout=5 if until is not None else 1.5)
                except TimeoutError:
                    break
                event = message["payload"]["data"]["myEvents"]
                got.append((event["cursor"], event["type"].lower()))
        return got  # the socket is dropped here, maybe with events in flight

    for limit, from_last in scenario["segments"]:
        if not started:
            got = await connection(None, limit)
            started = True
            start_cursor = None
        else:
            if from_last or len(seen) < 2:
                start_cursor = seen[-1][0] if seen else None
            else:
                start_cursor = seen[rng.randrange(len(seen) - 1)][0]
            got = await connection(start_cursor, limit)
        segments.append((start_cursor, got))
        seen += [g for g in got if g[0] not in {c for c, _ in seen}]
        resume = seen[-1][0] if seen else None
    await writes
    history = await committed(db_url, user)
    # Finally resume from the last event seen and drain what is left.
    tail = await connection(resume, None, until=len(history) - len(seen))
    segments.append((resume, tail))
    seen += [g for g in tail if g[0] not in {c for c, _ in seen}]

    by_cursor_index = {cursor: i for i, (cursor, _) in enumerate(seen)}
    # Every stream is a contiguous slice of the history, right after its cursor.
    types = [t for _, t in history]
    for start_cursor, got in segments:
        first = 0 if start_cursor is None else by_cursor_index[start_cursor] + 1
        assert [t for _, t in got] == types[first : first + len(got)], (start_cursor, got)
    # And the events seen, once each, are the whole history in order.
    assert [t for _, t in seen] == types


@pytest.mark.slow
async def test_streams_are_the_committed_history_whatever_the_disconnects(db_url, tmp_path):
    with servers(db_url, tmp_path, n=2) as [reader_base, writer_base]:
        for scenario in scenarios(SCENARIOS):
            await play(reader_base, writer_base, db_url, scenario)
