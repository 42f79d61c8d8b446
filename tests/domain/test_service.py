"""The domain service called directly (no HTTP), with a controlled clock.

Rules run on the in-memory fakes of the ports (``fakes.py``); the tests of
what SQL does (cascading deletes, aggregates) run on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
    SessionSettings,
    SessionStatus,
    UpdateInteraction,
    UpdateSession,
)
from app.errors import BadRequest, Conflict, Forbidden, NotFound
from tests.api import stored_rows
from tests.conftest import CLOCK_START

ALICE, BOB = Principal("alice"), Principal("bob")
ACTIVE, PAUSED, COMPLETED = SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.COMPLETED


def new_session(title: str = "Engineer") -> CreateSession:
    return CreateSession(job_context=JobContext(title=title, company="Corp"))


def ask(session_id: Any, qtype: QuestionType | None = None) -> CreateInteraction:
    qc = None if qtype is None else QuestionClassification(type=qtype)
    return CreateInteraction(session_id=str(session_id), question="Q?", question_classification=qc)


async def test_create_uses_the_clock_and_the_principal(domain_service):
    s = await domain_service.sessions.create(ALICE, new_session())
    assert s.user_id == "alice"
    assert s.status is ACTIVE
    assert s.started_at == s.created_at == CLOCK_START
    assert s.ended_at is None
    assert s.settings == SessionSettings()
    assert await domain_service.sessions.get(ALICE, s.id) == s
    assert await domain_service.sessions.get(ALICE, str(s.id)) == s


async def test_lists_are_newest_first_limited_and_filtered(domain_service, clock):
    made = []
    for n in range(3):
        clock.advance(minutes=1)
        made.append(await domain_service.sessions.create(ALICE, new_session(f"R{n}")))
    await domain_service.sessions.create(BOB, new_session())
    await domain_service.sessions.set_status(ALICE, made[1].id, PAUSED)

    listed = await domain_service.sessions.list_sessions(ALICE)
    assert [s.id for s in listed] == [made[2].id, made[1].id, made[0].id]
    assert [s.id for s in await domain_service.sessions.list_sessions(ALICE, limit=1)] == [
        made[2].id
    ]
    assert [s.id for s in await domain_service.sessions.active(ALICE)] == [
        made[2].id,
        made[0].id,
    ]
    with pytest.raises(BadRequest):
        await domain_service.sessions.list_sessions(ALICE, limit=0)


async def test_every_session_operation_checks_ownership(domain_service):
    s = await domain_service.sessions.create(ALICE, new_session())
    i = await domain_service.interactions.create(ALICE, ask(s.id))
    await domain_service.metrics.record(
        ALICE, RecordMetrics(session_id=str(s.id), total_latency_ms=5)
    )
    before = await domain_service.sessions.details(ALICE, s.id)

    svc = domain_service
    calls = {
        "get": lambda: svc.sessions.get(BOB, s.id),
        "details": lambda: svc.sessions.details(BOB, s.id),
        "update": lambda: svc.sessions.update(BOB, s.id, UpdateSession(status=PAUSED)),
        "set_status": lambda: svc.sessions.set_status(BOB, s.id, COMPLETED),
        "delete": lambda: svc.sessions.delete(BOB, s.id),
        "create interaction": lambda: svc.interactions.create(BOB, ask(s.id)),
        "list interactions": lambda: svc.interactions.list_for_session(BOB, s.id),
        "update interaction": lambda: svc.interactions.update(
            BOB, i.id, UpdateInteraction(user_feedback=1)
        ),
        "record metrics": lambda: svc.metrics.record(BOB, RecordMetrics(session_id=str(s.id))),
        "list metrics": lambda: svc.metrics.list_for_session(BOB, s.id),
    }
    for name, call in calls.items():
        with pytest.raises(Forbidden) as info:
            await call()
        assert info.value.message == "Access denied to this session", name
    assert await domain_service.sessions.details(ALICE, s.id) == before
    # The batch readers only return the user's own data.
    assert await svc.interactions.for_sessions(BOB, [s.id]) == {s.id: []}
    assert await svc.metrics.for_sessions(BOB, [s.id]) == {s.id: []}
    assert [x.id for x in (await svc.interactions.for_sessions(ALICE, [s.id]))[s.id]] == [i.id]


async def test_missing_sessions_and_interactions_are_not_found(domain_service):
    missing = uuid.uuid4()
    svc = domain_service
    for call in (
        lambda: svc.sessions.get(ALICE, missing),
        lambda: svc.sessions.update(ALICE, missing, UpdateSession()),
        lambda: svc.sessions.delete(ALICE, missing),
        lambda: svc.interactions.create(ALICE, ask(missing)),
        lambda: svc.metrics.record(ALICE, RecordMetrics(session_id=str(missing))),
    ):
        with pytest.raises(NotFound) as info:
            await call()
        assert info.value.message == "Interview session not found"
    with pytest.raises(NotFound) as info:
        await svc.interactions.update(ALICE, missing, UpdateInteraction(user_feedback=2))
    assert info.value.message == "Interaction not found"
    with pytest.raises(BadRequest) as info:
        await svc.sessions.get(ALICE, "nope")
    assert info.value.message == "Validation failed (uuid is expected)"


class TestActiveCap:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"max_active_sessions": 2}

    async def test_create_and_resume_respect_the_cap(self, domain_service):
        a = await domain_service.sessions.create(ALICE, new_session())
        b = await domain_service.sessions.create(ALICE, new_session())
        with pytest.raises(Conflict) as info:
            await domain_service.sessions.create(ALICE, new_session())
        assert "2" in str(info.value.message)
        await domain_service.sessions.create(BOB, new_session())  # Bob has his own budget

        await domain_service.sessions.set_status(ALICE, a.id, PAUSED)
        c = await domain_service.sessions.create(ALICE, new_session())
        with pytest.raises(Conflict):
            await domain_service.sessions.set_status(ALICE, a.id, ACTIVE)
        with pytest.raises(Conflict):
            await domain_service.sessions.update(
                ALICE,
                a.id,
                UpdateSession(status=ACTIVE, job_context=JobContext(title="X", company="Y")),
            )
        assert (await domain_service.sessions.get(ALICE, a.id)).status is PAUSED
        assert (await domain_service.sessions.get(ALICE, a.id)).job_context.title == "Engineer"
        # Starting an already active session is a no-op, even at the cap.
        assert await domain_service.sessions.set_status(ALICE, b.id, ACTIVE) == b
        await domain_service.sessions.set_status(ALICE, c.id, COMPLETED)
        assert (await domain_service.sessions.set_status(ALICE, a.id, ACTIVE)).status is ACTIVE


async def test_update_replaces_fields_and_completion_is_final(domain_service, clock):
    s = await domain_service.sessions.create(ALICE, new_session())
    clock.advance(minutes=45)
    done = await domain_service.sessions.set_status(ALICE, s.id, COMPLETED)
    assert done.ended_at == datetime(2024, 1, 1, 10, 45, tzinfo=UTC)

    clock.advance(minutes=10)
    fixed = await domain_service.sessions.update(
        ALICE,
        s.id,
        UpdateSession(
            job_context=JobContext(title="Fixed", company="Corp"),
            settings=SessionSettings(preferred_language="fr"),
        ),
    )
    assert fixed.status is COMPLETED and fixed.ended_at == done.ended_at
    assert fixed.settings == SessionSettings(preferred_language="fr")

    with pytest.raises(BadRequest) as info:
        await domain_service.sessions.update(
            ALICE,
            s.id,
            UpdateSession(status=ACTIVE, job_context=JobContext(title="Nope", company="Corp")),
        )
    assert info.value.message == "Invalid status transition from 'completed' to 'active'"
    assert await domain_service.sessions.get(ALICE, s.id) == fixed


async def test_interactions_stop_at_completion_metrics_do_not(domain_service):
    s = await domain_service.sessions.create(ALICE, new_session())
    await domain_service.sessions.set_status(ALICE, s.id, COMPLETED)
    with pytest.raises(BadRequest) as info:
        await domain_service.interactions.create(ALICE, ask(s.id))
    assert info.value.message == "Cannot add interactions to a completed session"
    m = await domain_service.metrics.record(
        ALICE, RecordMetrics(session_id=str(s.id), user_satisfaction=4)
    )
    assert await domain_service.metrics.list_for_session(ALICE, s.id) == [m]
    assert await domain_service.interactions.list_for_session(ALICE, s.id) == []


async def test_delete_cascades_in_the_database(sql_domain_service):
    svc = sql_domain_service
    s = await svc.sessions.create(ALICE, new_session())
    await svc.interactions.create(ALICE, ask(s.id))
    await svc.metrics.record(ALICE, RecordMetrics(session_id=str(s.id)))
    engine = svc.db.engine  # type: ignore[attr-defined]
    assert await stored_rows(engine, str(s.id)) == {"sessions": 1, "interactions": 1, "metrics": 1}
    await svc.sessions.delete(ALICE, s.id)
    assert await stored_rows(engine, str(s.id)) == {"sessions": 0, "interactions": 0, "metrics": 0}
    with pytest.raises(NotFound):
        await svc.sessions.get(ALICE, s.id)


async def test_a_rule_that_fails_leaves_nothing_behind(domain_service, fake_db):
    s = await domain_service.sessions.create(ALICE, new_session())
    await domain_service.sessions.set_status(ALICE, s.id, COMPLETED)
    writes = fake_db.writes
    with pytest.raises(BadRequest):
        await domain_service.sessions.update(
            ALICE,
            s.id,
            UpdateSession(status=ACTIVE, settings=SessionSettings(preferred_language="x")),
        )
    assert fake_db.writes == writes + 1
    assert (await domain_service.sessions.get(ALICE, s.id)).settings == SessionSettings()


async def test_analytics_window_and_durations_in_sql(sql_domain_service, clock):
    await check_analytics(sql_domain_service, clock)


async def test_analytics_window_and_durations_on_the_fake(domain_service, clock):
    await check_analytics(domain_service, clock)


async def check_analytics(svc, clock):
    clock.set(datetime(2024, 1, 1, 23, 0, tzinfo=UTC))
    a = await svc.sessions.create(ALICE, new_session())
    await svc.interactions.create(ALICE, ask(a.id, QuestionType.TECHNICAL))
    await svc.metrics.record(ALICE, RecordMetrics(session_id=str(a.id), total_latency_ms=100))
    clock.set(datetime(2024, 1, 2, 0, 15, tzinfo=UTC))  # 75 minutes, across midnight
    await svc.sessions.set_status(ALICE, a.id, COMPLETED)
    await svc.metrics.record(ALICE, RecordMetrics(session_id=str(a.id), total_latency_ms=300))

    clock.set(datetime(2024, 1, 2, 12, 0, tzinfo=UTC))
    b = await svc.sessions.create(ALICE, new_session())
    await svc.interactions.create(ALICE, ask(b.id, QuestionType.BEHAVIORAL))

    everything = await svc.analytics.for_user(ALICE)
    assert everything.total_sessions == 2
    assert everything.average_session_duration == 75.0
    assert everything.average_latency == 200.0
    assert everything.average_accuracy is None
    assert [(t.date, t.metrics.latency) for t in everything.performance_trends] == [
        (date(2024, 1, 1), 100.0),
        (date(2024, 1, 2), 300.0),
    ]
    assert [(c.type, c.count) for c in everything.most_common_question_types] == [
        (QuestionType.BEHAVIORAL, 1),
        (QuestionType.TECHNICAL, 1),
    ]

    day_two = await svc.analytics.for_user(ALICE, date(2024, 1, 2), date(2024, 1, 2))
    assert day_two.total_sessions == 1
    assert day_two.average_session_duration is None
    assert day_two.average_latency is None
    assert [(c.type, c.count) for c in day_two.most_common_question_types] == [
        (QuestionType.BEHAVIORAL, 1)
    ]
    assert (await svc.analytics.for_user(BOB)).total_sessions == 0
    with pytest.raises(BadRequest):
        await svc.analytics.for_user(ALICE, date(2024, 1, 3), date(2024, 1, 2))
