"""Analytics on a hand-computed data set, placed on known UTC days with the app's clock.

The data set (user U; every expected number below is worked out by hand):

    session created               ends                     interactions (type)        metrics: when, totalLatencyMs/accuracy/satisfaction
    S0  2023-12-31 23:59:59   completed 2024-01-01 00:09:59 (10 min)  technical   M0 2023-12-31 23:59:59  100 / 0.0  / 3
    S1  2024-01-01 10:00      completed 10:30 (30 min)        behavioral, technical, behavioral
                                                                                   M1 2024-01-01 10:05     1000 / 0.5 / 4
                                                                                   M2 2024-01-01 23:59:59  2000 / -   / -   (after completing)
    S2  2024-01-02 09:00      paused 09:30, completed 10:30 (90 min)  technical, technical, situational, (none)
                                                                                   M3 2024-01-02 09:10     -    / 1.0  / 5
                                                                                   M4 2024-01-03 00:00:00  3000 / 0.75 / 2
    S3  2024-01-03 12:00      active                          cultural             -
    S4  2024-01-05 00:00:00   paused                          behavioral           M5 2024-01-05 00:00:00  500  / 0.25 / 1
    S5  2024-01-06 00:00:00   completed 01:00 (60 min)        situational          M6 2024-01-06 00:30     4200 / 1.0  / 5

and another user's session on 2024-01-01 (4 hours, 3 cultural questions, one metric)
that must never show up in U's numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api import Api
from tests.conftest import FakeClock

EMPTY = {
    "totalSessions": 0,
    "averageSessionDuration": None,
    "averageLatency": None,
    "averageAccuracy": None,
    "averageSatisfaction": None,
    "mostCommonQuestionTypes": [],
    "performanceTrends": [],
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def metric(latency: int | None, accuracy: float | None, satisfaction: int | None) -> dict:
    return {
        "totalLatencyMs": latency,
        "transcriptionAccuracy": accuracy,
        "userSatisfaction": satisfaction,
    }


def trend(day: str, latency: float | None, accuracy: float | None, sat: float | None) -> dict:
    return {
        "date": day,
        "metrics": {"latency": latency, "accuracy": accuracy, "satisfaction": sat},
    }


def types(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"type": t, "count": n} for t, n in pairs]


async def seed(api: Api, other: Api, clock: FakeClock) -> None:
    """Build the data set of the module docstring through the API."""

    async def session(when: str) -> str:
        clock.set(at(when))
        return str((await api.new_session())["id"])

    async def ask(sid: str, qtype: str | None) -> None:
        body: dict[str, Any] = {"question": f"A {qtype} question"}
        if qtype is not None:
            body["questionClassification"] = {"type": qtype}
        await api.new_interaction(sid, **body)

    async def measure(sid: str, when: str, values: dict[str, Any], who: Api = api) -> None:
        clock.set(at(when))
        await who.new_metric(sid, **values)

    async def status(sid: str, when: str, action: str, who: Api = api) -> None:
        clock.set(at(when))
        await who.set_status(sid, action)

    s0 = await session("2023-12-31T23:59:59")
    await ask(s0, "technical")
    await measure(s0, "2023-12-31T23:59:59", metric(100, 0.0, 3))
    await status(s0, "2024-01-01T00:09:59", "complete")

    s1 = await session("2024-01-01T10:00:00")
    for qtype in ("behavioral", "technical", "behavioral"):
        await ask(s1, qtype)
    await measure(s1, "2024-01-01T10:05:00", metric(1000, 0.5, 4))
    await status(s1, "2024-01-01T10:30:00", "complete")
    await measure(s1, "2024-01-01T23:59:59", metric(2000, None, None))

    s2 = await session("2024-01-02T09:00:00")
    for qtype in ("technical", "technical", "situational", None):
        await ask(s2, qtype)
    await measure(s2, "2024-01-02T09:10:00", metric(None, 1.0, 5))
    await status(s2, "2024-01-02T09:30:00", "pause")
    await status(s2, "2024-01-02T10:30:00", "complete")
    await measure(s2, "2024-01-03T00:00:00", metric(3000, 0.75, 2))

    s3 = await session("2024-01-03T12:00:00")
    await ask(s3, "cultural")

    s4 = await session("2024-01-05T00:00:00")
    await ask(s4, "behavioral")
    await measure(s4, "2024-01-05T00:00:00", metric(500, 0.25, 1))
    await status(s4, "2024-01-05T00:20:00", "pause")

    s5 = await session("2024-01-06T00:00:00")
    await ask(s5, "situational")
    await measure(s5, "2024-01-06T00:30:00", metric(4200, 1.0, 5))
    await status(s5, "2024-01-06T01:00:00", "complete")

    clock.set(at("2024-01-01T11:00:00"))
    o = str((await other.new_session())["id"])
    for _ in range(3):
        await other.new_interaction(o, questionClassification={"type": "cultural"})
    await measure(o, "2024-01-01T11:30:00", metric(99_999, 0.1, 1), who=other)
    await status(o, "2024-01-01T15:00:00", "complete", who=other)


WINDOWS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "no window: all of U's sessions": (
        {},
        {
            "totalSessions": 6,
            "averageSessionDuration": (10 + 30 + 90 + 60) / 4,  # 47.5
            "averageLatency": (100 + 1000 + 2000 + 3000 + 500 + 4200) / 6,  # 1800
            "averageAccuracy": (0.0 + 0.5 + 1.0 + 0.75 + 0.25 + 1.0) / 6,
            "averageSatisfaction": (3 + 4 + 5 + 2 + 1 + 5) / 6,
            "mostCommonQuestionTypes": types(
                ("technical", 4), ("behavioral", 3), ("situational", 2), ("cultural", 1)
            ),
            "performanceTrends": [
                trend("2023-12-31", 100, 0.0, 3),
                trend("2024-01-01", 1500, 0.5, 4),  # M1 and M2; M2 has no accuracy
                trend("2024-01-02", None, 1.0, 5),  # M3 has no latency
                trend("2024-01-03", 3000, 0.75, 2),  # S2's metric, on the day it was recorded
                trend("2024-01-05", 500, 0.25, 1),
                trend("2024-01-06", 4200, 1.0, 5),
            ],
        },
    ),
    "both ends, inclusive (S1..S4)": (
        {"startDate": "2024-01-01", "endDate": "2024-01-05"},
        {
            "totalSessions": 4,
            "averageSessionDuration": (30 + 90) / 2,
            "averageLatency": (1000 + 2000 + 3000 + 500) / 4,
            "averageAccuracy": (0.5 + 1.0 + 0.75 + 0.25) / 4,
            "averageSatisfaction": (4 + 5 + 2 + 1) / 4,
            # Ties by name: behavioral before technical, cultural before situational.
            "mostCommonQuestionTypes": types(
                ("behavioral", 3), ("technical", 3), ("cultural", 1), ("situational", 1)
            ),
            "performanceTrends": [
                trend("2024-01-01", 1500, 0.5, 4),
                trend("2024-01-02", None, 1.0, 5),
                trend("2024-01-03", 3000, 0.75, 2),
                trend("2024-01-05", 500, 0.25, 1),
            ],
        },
    ),
    "only startDate (S2..S5)": (
        {"startDate": "2024-01-02"},
        {
            "totalSessions": 4,
            "averageSessionDuration": (90 + 60) / 2,
            "averageLatency": (3000 + 500 + 4200) / 3,
            "averageAccuracy": (1.0 + 0.75 + 0.25 + 1.0) / 4,
            "averageSatisfaction": (5 + 2 + 1 + 5) / 4,
            "mostCommonQuestionTypes": types(
                ("situational", 2), ("technical", 2), ("behavioral", 1), ("cultural", 1)
            ),
            "performanceTrends": [
                trend("2024-01-02", None, 1.0, 5),
                trend("2024-01-03", 3000, 0.75, 2),
                trend("2024-01-05", 500, 0.25, 1),
                trend("2024-01-06", 4200, 1.0, 5),
            ],
        },
    ),
    "only endDate (S0, S1)": (
        {"endDate": "2024-01-01"},
        {
            "totalSessions": 2,
            "averageSessionDuration": (10 + 30) / 2,
            "averageLatency": (100 + 1000 + 2000) / 3,
            "averageAccuracy": (0.0 + 0.5) / 2,
            "averageSatisfaction": (3 + 4) / 2,
            "mostCommonQuestionTypes": types(("behavioral", 2), ("technical", 2)),
            "performanceTrends": [
                trend("2023-12-31", 100, 0.0, 3),
                trend("2024-01-01", 1500, 0.5, 4),
            ],
        },
    ),
    "endDate's last second is inside (S0 at 23:59:59)": (
        {"endDate": "2023-12-31"},
        {
            "totalSessions": 1,
            "averageSessionDuration": 10,
            "averageLatency": 100,
            "averageAccuracy": 0.0,
            "averageSatisfaction": 3,
            "mostCommonQuestionTypes": types(("technical", 1)),
            "performanceTrends": [trend("2023-12-31", 100, 0.0, 3)],
        },
    ),
    "one day, session created at 00:00:00 (S4, nothing completed)": (
        {"startDate": "2024-01-05", "endDate": "2024-01-05"},
        {
            "totalSessions": 1,
            "averageSessionDuration": None,
            "averageLatency": 500,
            "averageAccuracy": 0.25,
            "averageSatisfaction": 1,
            "mostCommonQuestionTypes": types(("behavioral", 1)),
            "performanceTrends": [trend("2024-01-05", 500, 0.25, 1)],
        },
    ),
    "one day, a session without metrics (S3)": (
        {"startDate": "2024-01-03", "endDate": "2024-01-03"},
        {**EMPTY, "totalSessions": 1, "mostCommonQuestionTypes": types(("cultural", 1))},
    ),
    "a day without sessions": ({"startDate": "2024-01-04", "endDate": "2024-01-04"}, EMPTY),
    "after everything": ({"startDate": "2030-01-01"}, EMPTY),
    "before everything": ({"endDate": "2023-12-30"}, EMPTY),
}


def approx_numbers(expected: dict[str, Any]) -> dict[str, Any]:
    """Averages compared to 12 significant digits (the same on both databases)."""
    out = dict(expected)
    for key in (
        "averageSessionDuration",
        "averageLatency",
        "averageAccuracy",
        "averageSatisfaction",
    ):
        if out[key] is not None:
            out[key] = pytest.approx(out[key], rel=1e-12, abs=1e-12)
    out["performanceTrends"] = [
        {
            "date": t["date"],
            "metrics": {
                k: (None if v is None else pytest.approx(v, rel=1e-12, abs=1e-12))
                for k, v in t["metrics"].items()
            },
        }
        for t in expected["performanceTrends"]
    ]
    return out


async def test_analytics_on_a_hand_computed_data_set(client, new_user, app_clock):
    api = Api(client, new_user())
    other = Api(client, new_user())
    await seed(api, other, app_clock)

    answers = {}
    for name, (params, _) in WINDOWS.items():
        r = await api.analytics(**params)
        assert r.status_code == 200, (name, r.text)
        answers[name] = r.json()
    for name, (_, expected) in WINDOWS.items():
        assert set(answers[name]) == set(EMPTY), name
        assert answers[name] == approx_numbers(expected), name

    # Whole-minute durations come back as exact numbers, not 30.000000223517418.
    assert answers["only endDate (S0, S1)"]["averageSessionDuration"] == 20.0
    assert answers["no window: all of U's sessions"]["averageLatency"] == 1800.0

    # The other user sees only their own session.
    r = await other.analytics()
    assert r.json() == {
        "totalSessions": 1,
        "averageSessionDuration": 240.0,
        "averageLatency": 99_999.0,
        "averageAccuracy": 0.1,
        "averageSatisfaction": 1.0,
        "mostCommonQuestionTypes": types(("cultural", 3)),
        "performanceTrends": [trend("2024-01-01", 99_999, 0.1, 1)],
    }


async def test_a_user_without_sessions_gets_zeros_and_nulls(client, new_user):
    r = await Api(client, new_user()).analytics()
    assert (r.status_code, r.json()) == (200, EMPTY)


async def test_durations_use_fractions_of_a_minute(client, new_user, app_clock):
    api = Api(client, new_user())
    for start, end in (
        ("2024-03-01T08:00:00", "2024-03-01T08:00:30"),  # 0.5 min
        ("2024-03-01T09:00:00", "2024-03-01T09:01:15"),  # 1.25 min
        ("2024-03-01T23:59:00", "2024-03-02T00:01:00"),  # 2 min, across midnight
    ):
        app_clock.set(at(start))
        s = await api.new_session()
        app_clock.set(at(end))
        await api.set_status(s["id"], "complete")
    r = await api.analytics()
    assert r.json()["averageSessionDuration"] == pytest.approx((0.5 + 1.25 + 2) / 3, rel=1e-12)
    assert r.json()["totalSessions"] == 3


async def test_analytics_is_a_fixed_number_of_queries(
    client, new_user, app_clock, count_statements
):
    """Aggregated by the database: more rows do not mean more statements."""
    api = Api(client, new_user())
    s = await api.new_session()
    await api.new_metric(s["id"], totalLatencyMs=1)
    count_statements.statements.clear()
    await api.analytics()
    few = len(count_statements.queries)

    for n in range(5):
        app_clock.advance(days=1)
        t = await api.new_session()
        await api.new_interaction(t["id"], questionClassification={"type": "technical"})
        await api.new_metric(t["id"], totalLatencyMs=n)
        await api.set_status(t["id"], "complete")
    count_statements.statements.clear()
    r = await api.analytics()
    assert r.json()["totalSessions"] == 6
    assert len(count_statements.queries) == few
    assert few <= 5


async def test_a_write_s_rollup_and_event_are_its_last_statements(
    client, new_user, count_statements, backend
):
    """The rows every write of a user updates (the rollups, the event sequence)
    are written last, so their locks are held until COMMIT only; on
    PostgreSQL the rollup and the event are one statement."""
    api = Api(client, new_user())
    s = await api.new_session()
    for make in (
        lambda: api.new_session(),
        lambda: api.new_interaction(s["id"], questionClassification={"type": "technical"}),
        lambda: api.new_metric(s["id"], totalLatencyMs=5),
    ):
        count_statements.statements.clear()
        await make()
        writes = [
            q
            for q in count_statements.statements
            if q.split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE", "WITH"}
        ]
        late = [
            i
            for i, q in enumerate(writes)
            if any(t in q for t in ("analytics_", "session_events", "user_event_seq"))
        ]
        assert late and late == list(range(len(writes) - len(late), len(writes))), writes
        if backend == "postgres":
            assert len(late) == 1 and "analytics_" in writes[-1] and "session_events" in writes[-1]
    body = (await api.analytics()).json()
    assert body["totalSessions"] == 2 and body["averageLatency"] == 5
    assert body["mostCommonQuestionTypes"] == [{"type": "technical", "count": 1}]


async def test_a_write_locks_its_rollups_before_the_user_s_sequence(pg_db_url, new_user):
    """Every write takes a user's rows in one order, rollups then the event
    sequence (completing or deleting a session locks its day's rollups in the
    unit of work, before its event): a create whose day row is locked waits
    for it without holding the sequence row, so the two cannot deadlock."""

    from asgi_lifespan import LifespanManager

    from app.domain.records import Principal
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(pg_db_url))  # PostgreSQL: SQLite has one writer at a time
    async with LifespanManager(app):
        await _creates_wait_for_the_rollup_row(app, Principal(new_user()))


async def _creates_wait_for_the_rollup_row(app: Any, user: Any) -> None:
    import asyncio

    from sqlalchemy import text

    from app.domain.records import CreateSession, JobContext

    service = app.service
    job = CreateSession(job_context=JobContext(title="A", company="C"))
    await service.sessions.create(user, job)  # the user's day row and sequence row exist
    params = {"u": user.user_id}
    async with app.database.engine.connect() as holder:
        await holder.begin()  # holds today's rollup row, as a completing session does
        await holder.execute(
            text("SELECT 1 FROM analytics_days WHERE user_id = :u FOR UPDATE"), params
        )
        create = asyncio.ensure_future(service.sessions.create(user, job))
        await asyncio.sleep(0.3)
        assert not create.done()  # waiting for the rollup row
        async with app.database.engine.connect() as probe:
            await probe.begin()  # the sequence row is free meanwhile
            rows = await probe.execute(
                text("SELECT seq FROM user_event_seq WHERE user_id = :u FOR UPDATE NOWAIT"),
                params,
            )
            assert rows.scalar_one() == 1
            await probe.rollback()
        await holder.rollback()
    await create
    assert len(await service.sessions.list_sessions(user, limit=10)) == 2
