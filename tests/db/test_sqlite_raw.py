"""SQLite's one read path (plain sqlite3 connections on the event loop's
thread, app/db/sqlite.py): every read the service makes answers exactly as on
SQLAlchemy's connections, the general path every statement is written for;
a read that meets a lock waits off the loop and answers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.db.engine import Database
from app.db.executor import SQLAlchemyExecutor
from app.db.repositories import UnitOfWork
from app.domain.paging import Page, PageRequest, SessionFilter
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    GeneratedResponse,
    JobContext,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
    ResponseStructure,
    SessionStatus,
)
from app.domain.service import Service
from tests.conftest import as_principal, make_settings


class SQLAlchemyReads:
    """The database with its reads on SQLAlchemy's connections: the reference."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def read(self, work: Any, *, consistent: bool = False) -> Any:
        async with self.db.engine.connect() as conn:
            return await work(UnitOfWork(SQLAlchemyExecutor(conn)))

    async def write(self, work: Any) -> Any:
        return await self.db.write(work)

    def transaction(self) -> Any:
        return self.db.transaction()


@pytest.fixture
async def both(sqlite_template, tmp_path):
    path = tmp_path / "raw.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(make_settings(f"sqlite+aiosqlite:///{path}"))
    try:
        yield db, SQLAlchemyReads(db)
    finally:
        await db.dispose()


async def test_every_read_agrees_with_sqlalchemys(both):
    raw, plain = both
    user = as_principal("u-raw")
    service = Service.build(raw, max_active_sessions=10)
    reference = Service.build(plain, max_active_sessions=10)
    sids = []
    for n in range(4):
        s = await service.sessions.create(
            user,
            CreateSession(
                job_context=JobContext(
                    title=f"T{n}", company="C", interview_type=QuestionType.TECHNICAL
                )
            ),
        )
        sids.append(s.id)
    response = GeneratedResponse(
        id="r", content="c", structure=ResponseStructure.STAR, confidence=0.30000000000000004
    )
    await service.interactions.create(
        user,
        CreateInteraction(
            session_id=str(sids[0]),
            question="Q?",
            question_classification=QuestionClassification(type=QuestionType.BEHAVIORAL),
            generated_responses=[response],
        ),
    )
    await service.metrics.record(
        user,
        RecordMetrics(session_id=str(sids[0]), total_latency_ms=7, transcription_accuracy=0.96),
    )
    await service.sessions.set_status(user, sids[1], SessionStatus.COMPLETED)

    calls = [
        lambda s: s.sessions.get(user, sids[0]),
        lambda s: s.sessions.details(user, sids[0]),
        lambda s: s.sessions.details(user, sids[1]),
        lambda s: s.sessions.list_sessions(user, limit=10),
        lambda s: s.sessions.active(user),
        lambda s: s.sessions.page(user, SessionFilter(), PageRequest(2)),
        lambda s: s.sessions.page(
            user, SessionFilter(status=(SessionStatus.COMPLETED,)), PageRequest(5)
        ),
        lambda s: s.interactions.for_sessions(user, sids),
        lambda s: s.metrics.for_sessions(user, sids),
        lambda s: s.interactions.counts(user, sids),
        # An IN list's SQL is kept per count of values: other counts, and the
        # same count with other values, bind their own.
        lambda s: s.interactions.for_sessions(user, sids[:1]),
        lambda s: s.interactions.for_sessions(user, sids[1:2]),
        lambda s: s.metrics.for_sessions(user, [sids[1], sids[0]]),
        lambda s: s.interactions.for_sessions(user, []),
        lambda s: s.analytics.for_user(user, date(2000, 1, 1), None),
    ]

    def plain(value):
        if isinstance(value, Page):  # (its cursors are made on demand)
            return value.items, value.has_next, value.end_cursor
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    for call in calls:
        assert plain(await call(service)) == plain(await call(reference))
    found = await service.sessions.get(user, sids[0])
    assert found.created_at.tzinfo is UTC and isinstance(found.id, uuid.UUID)
    assert found.created_at <= datetime.now(UTC)
    details = await service.sessions.details(user, sids[0])
    assert details.interactions[0].generated_responses == [response]


async def test_a_read_that_meets_a_lock_waits_off_the_loop(sqlite_template, tmp_path):
    """A reader never waits for a lock on the event loop (busy timeout 0): it
    tries again after a pause, off the loop, and answers once the lock goes
    (not a 503); the loop keeps serving meanwhile."""
    path = tmp_path / "locked.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(make_settings(f"sqlite+aiosqlite:///{path}"))
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        # An exclusive transaction in rollback-journal mode: no reader may start.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        release.wait(10)
        conn.execute("ROLLBACK")
        conn.close()

    async def count(uow: Any) -> int:
        return len(await uow.events.after("nobody", 0, None, 10))

    locker = threading.Thread(target=hold_lock)
    locker.start()
    try:
        assert held.wait(10)
        threading.Timer(0.5, release.set).start()
        reading = asyncio.ensure_future(db.read(count))
        ticks = 0
        while not reading.done():  # the loop is free while the read waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert await reading == 0
        assert ticks >= 20
    finally:
        release.set()
        locker.join()
        await db.dispose()
