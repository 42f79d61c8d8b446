"""Every write takes a user's rows in one order: its rollup rows, then the
user's event sequence row (app.db.late). A write whose rollup row is held by
another transaction waits for it *without* holding the sequence row, so two
writes of one user never deadlock, whatever their shape: a transaction's last
statement with several rollup rows (a delete), and the guarded single
statements of new interactions and metrics (PostgreSQL only: SQLite has one
writer at a time). PostgreSQL may run a statement's CTEs in any order it
likes unless the sequence's insert depends on the rollups' results; before
that dependency was kept (a filter on their count), these waited holding it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
)
from app.main import create_app
from tests.conftest import make_settings


@pytest.fixture
async def pg_app(pg_db_url):
    app = create_app(make_settings(pg_db_url))
    async with LifespanManager(app):
        yield app


async def _waits_without_the_sequence_row(app: Any, user: Principal, held: str, write: Any) -> None:
    params = {"u": user.user_id}
    async with app.database.engine.connect() as holder:
        await holder.begin()
        await holder.execute(text(f"SELECT 1 FROM {held} WHERE user_id = :u FOR UPDATE"), params)
        task = asyncio.ensure_future(write())
        await asyncio.sleep(0.3)
        assert not task.done()  # waiting for the rollup row
        async with app.database.engine.connect() as probe:
            await probe.begin()  # the sequence row is free meanwhile
            await probe.execute(
                text("SELECT seq FROM user_event_seq WHERE user_id = :u FOR UPDATE NOWAIT"),
                params,
            )
            await probe.rollback()
        await holder.rollback()
    await task


@pytest.mark.parametrize(
    ("held", "write"),
    [
        ("analytics_days", "delete"),
        ("analytics_metric_days", "delete"),
        ("analytics_question_types", "delete"),
        ("analytics_metric_days", "metric"),
        ("analytics_question_types", "interaction"),
        ("analytics_days", "create"),
    ],
)
async def test_a_write_waits_for_a_rollup_row_without_the_sequence_row(pg_app, held, write):
    service = pg_app.service
    user = Principal(f"locks-{uuid.uuid4()}")
    job = CreateSession(job_context=JobContext(title="A", company="C"))
    s = await service.sessions.create(user, job)
    technical = QuestionClassification(type=QuestionType.TECHNICAL)
    await service.interactions.create(
        user,
        CreateInteraction(session_id=str(s.id), question="Q", question_classification=technical),
    )
    await service.metrics.record(user, RecordMetrics(session_id=str(s.id), total_latency_ms=5))
    writes = {
        "delete": lambda: service.sessions.delete(user, s.id),
        "metric": lambda: service.metrics.record(
            user, RecordMetrics(session_id=str(s.id), total_latency_ms=7)
        ),
        "interaction": lambda: service.interactions.create(
            user,
            CreateInteraction(
                session_id=str(s.id), question="Q", question_classification=technical
            ),
        ),
        "create": lambda: service.sessions.create(user, job),
    }
    await _waits_without_the_sequence_row(pg_app, user, held, writes[write])
