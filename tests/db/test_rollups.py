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
