"""SQLite reads on plain sqlite3 connections (RawSqliteExecutor, SQLITE_RAW_READS):
every read the service makes answers exactly as on SQLAlchemy's connections."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from app.db.engine import Database
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


@pytest.fixture
async def both(sqlite_template, tmp_path):
    path = tmp_path / "raw.db"
    path.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite+aiosqlite:///{path}"
    raw, plain = Database(make_settings(url)), Database(make_settings(url, sqlite_raw_reads=False))
    try:
        assert raw._raw_sqlite_path is not None and plain._raw_sqlite_path is None
        yield raw, plain
    finally:
        await raw.dispose()
        await plain.dispose()


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
