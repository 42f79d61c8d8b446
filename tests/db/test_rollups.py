"""The analytics rollups (app/db/rollups.py) always equal the rows they sum.

A Hypothesis state machine drives the domain service on a real database of
each backend and, with the same clock and the same operations, on the
in-memory fakes (whose analytics are computed from the rows, in Python):
creating sessions on different days, classified and unclassified
interactions, metrics with missing values, pausing, completing (twice),
deleting. After every step the analytics over every window agree, and the
rollup rows equal a rebuild from scratch.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from app.db.engine import Database
from app.db.models import (
    analytics_days_table,
    analytics_metric_days_table,
    analytics_types_table,
)
from app.db.rollups import rebuild_statements
from app.domain.records import (
    Analytics,
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
    SessionStatus,
)
from app.domain.service import Service
from tests.conftest import FakeClock, make_settings
from tests.domain.fakes import FakeDatabase

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = [DAY0.date() + timedelta(days=d) for d in range(4)]
WINDOWS = [(None, None), (DAYS[1], None), (None, DAYS[1]), *((d, d) for d in DAYS)]
ROLLUPS = (analytics_days_table, analytics_metric_days_table, analytics_types_table)


def comparable(a: Analytics) -> dict[str, Any]:
    def num(x: float | None) -> Any:
        return None if x is None else pytest.approx(x, rel=1e-12, abs=1e-12)

    return {
        "total": a.total_sessions,
        "duration": num(a.average_session_duration),
        "latency": num(a.average_latency),
        "accuracy": num(a.average_accuracy),
        "satisfaction": num(a.average_satisfaction),
        "types": [(t.type, t.count) for t in a.most_common_question_types],
        "trends": [
            (t.date, num(t.metrics.latency), num(t.metrics.accuracy), num(t.metrics.satisfaction))
            for t in a.performance_trends
        ],
    }


moments = st.builds(
    lambda d, minutes: DAY0 + timedelta(days=d, minutes=minutes),
    st.integers(0, 3),
    st.integers(0, 24 * 60 - 1),
)


def machine(db_url: str) -> type[RuleBasedStateMachine]:
    class Rollups(RuleBasedStateMachine):
        sessions = Bundle("sessions")

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.clock = FakeClock(DAY0)
            self.db = Database(make_settings(db_url))
            self.sql = Service.build(self.db, max_active_sessions=1000, clock=self.clock)
            self.fake = Service.build(FakeDatabase(), max_active_sessions=1000, clock=self.clock)
            self.user = Principal(user_id=f"rollup-{uuid.uuid4()}")
            self.ids: dict[uuid.UUID, uuid.UUID] = {}  # sql id -> fake id

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        def both(self, call: Any) -> tuple[Any, Any]:
            return self.run(call(self.sql, True)), self.run(call(self.fake, False))

        def teardown(self) -> None:
            self.run(self.db.dispose())
            self.loop.close()

        def later(self, at: datetime) -> None:
            # The clock never goes back within a session's life.
            self.clock.set(max(at, self.clock.now))

        @rule(target=sessions, at=moments)
        def create(self, at):
            self.clock.set(at)
            cmd = CreateSession(job_context=JobContext(title="T", company="C"))
            a, b = self.both(lambda svc, _: svc.sessions.create(self.user, cmd))
            self.ids[a.id] = b.id
            return a.id

        def sid(self, sql_id: uuid.UUID, real: bool) -> str:
            return str(sql_id if real else self.ids[sql_id])

        @rule(sid=sessions, qtype=st.none() | st.sampled_from(list(QuestionType)), at=moments)
        def interaction(self, sid, qtype, at):
            if sid not in self.ids:
                return
            self.later(at)
            qc = None if qtype is None else QuestionClassification(type=qtype)

            async def call(svc: Service, real: bool) -> Any:
                cmd = CreateInteraction(
                    session_id=self.sid(sid, real), question="Q?", question_classification=qc
                )
                try:
                    return await svc.interactions.create(self.user, cmd)
                except Exception as exc:  # completed: refused by both
                    return type(exc)

            a, b = self.both(call)
            assert (a if isinstance(a, type) else None) == (b if isinstance(b, type) else None)

        @rule(
            sid=sessions,
            latency=st.none() | st.integers(0, 100_000),
            accuracy=st.none() | st.floats(0, 1),
            satisfaction=st.none() | st.integers(1, 5),
            at=moments,
        )
        def metric(self, sid, latency, accuracy, satisfaction, at):
            if sid not in self.ids:
                return
            self.later(at)
            self.both(
                lambda svc, real: svc.metrics.record(
                    self.user,
                    RecordMetrics(
                        session_id=self.sid(sid, real),
                        total_latency_ms=latency,
                        transcription_accuracy=accuracy,
                        user_satisfaction=satisfaction,
                    ),
                )
            )

        @rule(sid=sessions, to=st.sampled_from(list(SessionStatus)), minutes=st.integers(0, 3000))
        def move(self, sid, to, minutes):
            if sid not in self.ids:
                return
            self.clock.advance(minutes=minutes, microseconds=minutes * 7)

            async def call(svc: Service, real: bool) -> Any:
                try:
                    return (
                        await svc.sessions.set_status(self.user, self.sid(sid, real), to)
                    ).status
                except Exception as exc:
                    return type(exc)

            a, b = self.both(call)
            assert a == b

        @rule(sid=sessions)
        def delete(self, sid):
            if sid not in self.ids:
                return
            self.both(lambda svc, real: svc.sessions.delete(self.user, self.sid(sid, real)))
            del self.ids[sid]

        @rule(
            a=sessions,
            b=sessions,
            c=sessions,
            qtype=st.sampled_from(list(QuestionType)),
            latency=st.integers(0, 100_000),
        )
        def race(self, a, b, c, qtype, latency):
            """Two deletes and another session's new interaction and metric, at
            once on the database (in some order on the fakes: they commute)."""
            if len({a, b, c}) < 3 or not {a, b, c} <= set(self.ids):
                return
            qc = QuestionClassification(type=qtype)

            def calls(svc: Service, real: bool) -> list[Any]:
                return [
                    svc.sessions.delete(self.user, self.sid(a, real)),
                    svc.sessions.delete(self.user, self.sid(b, real)),
                    svc.interactions.create(
                        self.user,
                        CreateInteraction(
                            session_id=self.sid(c, real), question="Q?", question_classification=qc
                        ),
                    ),
                    svc.metrics.record(
                        self.user,
                        RecordMetrics(session_id=self.sid(c, real), total_latency_ms=latency),
                    ),
                ]

            async def at_once() -> list[Any]:
                return await asyncio.gather(*calls(self.sql, True), return_exceptions=True)

            async def in_turn() -> list[Any]:
                out: list[Any] = []
                for call in calls(self.fake, False):
                    try:
                        out.append(await call)
                    except Exception as exc:
                        out.append(exc)
                return out

            def outcome(results: list[Any]) -> list[Any]:
                return [type(r) if isinstance(r, BaseException) else None for r in results]

            # The same outcome both ways: a completed session refuses the
            # interaction on both; nothing else fails.
            assert outcome(self.run(at_once())) == outcome(self.run(in_turn()))
            del self.ids[a], self.ids[b]

        @invariant()
        def analytics_agree(self):
            for start, end in WINDOWS:
                a, b = self.both(
                    lambda svc, _, s=start, e=end: svc.analytics.for_user(self.user, s, e)
                )
                assert comparable(a) == comparable(b), (start, end)

        @invariant()
        def rollups_equal_a_rebuild(self):
            assert self.run(rollup_rows(self.db, self.user.user_id)) == self.run(
                rebuilt_rows(self.db, self.user.user_id)
            )

    return Rollups


async def rollup_rows(db: Database, user_id: str) -> list[list[tuple[Any, ...]]]:
    async with db.engine.connect() as conn:
        return [await _rows(conn, table, user_id) for table in ROLLUPS]


async def rebuilt_rows(db: Database, user_id: str) -> list[list[tuple[Any, ...]]]:
    """The same tables rebuilt from scratch, in a transaction rolled back after."""
    async with db.engine.connect() as conn:
        trans = await conn.begin()
        if conn.dialect.name == "sqlite":
            await conn.execute(text("SELECT 1"))
        for stmt in rebuild_statements(conn.dialect.name):
            await conn.execute(stmt)
        found = [await _rows(conn, table, user_id) for table in ROLLUPS]
        await trans.rollback()
        return found


async def _rows(conn: Any, table: Any, user_id: str) -> list[tuple[Any, ...]]:
    keys = [c for c in table.primary_key.columns]
    result = await conn.execute(select(table).where(table.c.user_id == user_id).order_by(*keys))

    def norm(v: Any) -> Any:
        return round(v, 9) if isinstance(v, float) else v

    return [tuple(norm(v) for v in row) for row in result]


def test_rollups_always_equal_the_rows(db_url):
    run_state_machine_as_test(
        machine(db_url),
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


async def test_concurrent_writers_lose_no_increment(service):
    """Twenty interactions and twenty metrics at once, in one session's day."""
    user = Principal(user_id=f"race-{uuid.uuid4()}")
    s = await service.sessions.create(
        user, CreateSession(job_context=JobContext(title="T", company="C"))
    )
    qc = QuestionClassification(type=QuestionType.TECHNICAL)
    await asyncio.gather(
        *(
            service.interactions.create(
                user,
                CreateInteraction(session_id=str(s.id), question="Q", question_classification=qc),
            )
            for _ in range(20)
        ),
        *(
            service.metrics.record(user, RecordMetrics(session_id=str(s.id), total_latency_ms=n))
            for n in range(20)
        ),
    )
    a = await service.analytics.for_user(user)
    assert [(t.type, t.count) for t in a.most_common_question_types] == [
        (QuestionType.TECHNICAL, 20)
    ]
    assert a.average_latency == sum(range(20)) / 20


async def test_racing_deletes_and_writes_keep_the_rollups_exact(app, client):
    """Through HTTP, many rounds: two deletes of one user's sessions of one day
    (every session of that day, so it empties), racing the first interaction
    of a new question type and a metric in another session of that day, and a
    new session. Every answer is 201 or 204, and after each round the rollups
    equal a rebuild and analytics the rows they sum."""
    from tests.api import Api

    for _round in range(15):
        api = Api(client, f"race-{uuid.uuid4()}")
        a, b, c = [(await api.new_session())["id"] for _ in range(3)]
        for sid in (a, b):
            await api.new_interaction(sid, questionClassification={"type": "technical"})
            await api.new_metric(sid, totalLatencyMs=100, transcriptionAccuracy=0.3)
        answers = await asyncio.gather(
            api.delete(a),
            api.delete(b),
            api.add_interaction(c, questionClassification={"type": "behavioral"}),
            api.record_metrics(c, totalLatencyMs=40, transcriptionAccuracy=0.1),
            api.create_session(),
        )
        assert [r.status_code for r in answers] == [204, 204, 201, 201, 201], [
            r.text for r in answers
        ]
        assert await rollup_rows(app.database, api.user) == await rebuilt_rows(
            app.database, api.user
        )
        got = (await api.analytics()).json()
        assert got["totalSessions"] == 2
        assert got["averageLatency"] == 40
        assert got["averageAccuracy"] == pytest.approx(0.1, rel=1e-12)
        assert got["mostCommonQuestionTypes"] == [{"type": "behavioral", "count": 1}]
        # The last session of a day goes, and the day with it.
        answers = await asyncio.gather(api.delete(c), api.delete(answers[4].json()["id"]))
        assert [r.status_code for r in answers] == [204, 204]
        assert await rollup_rows(app.database, api.user) == [[], [], []]
        got = (await api.analytics()).json()
        assert (got["totalSessions"], got["averageLatency"], got["performanceTrends"]) == (
            0,
            None,
            [],
        )
