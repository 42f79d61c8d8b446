"""Every committed change is an event with its payload, and wakes the owner's
subscribers once committed (live.md): what a live client receives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.base import utcnow
from app.domain.paging import Cursors
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    RecordMetrics,
    SessionEventType,
    SessionSettings,
    SessionStatus,
    UpdateInteraction,
    UpdateSession,
)
from app.domain.service import Service
from app.domain.sessions import SessionService
from app.errors import BadRequest, Conflict, Forbidden
from tests.conftest import CLOCK_START

ALICE, BOB = Principal("alice"), Principal("bob")
ACTIVE, PAUSED, COMPLETED = SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.COMPLETED
Kind = SessionEventType


def new_session(title: str = "Engineer") -> CreateSession:
    return CreateSession(job_context=JobContext(title=title, company="Corp"))


def events(fake_db):
    return list(fake_db.store.events)


async def test_session_events_carry_the_session_as_the_change_left_it(
    domain_service, fake_db, clock
):
    svc = domain_service
    s = await svc.sessions.create(ALICE, new_session())
    clock.advance(minutes=1)
    renamed = await svc.sessions.update(
        ALICE, s.id, UpdateSession(job_context=JobContext(title="Renamed", company="Corp"))
    )
    clock.advance(minutes=1)
    paused = await svc.sessions.set_status(ALICE, s.id, PAUSED)
    clock.advance(minutes=1)
    await svc.sessions.delete(ALICE, s.id)

    got = events(fake_db)
    assert [(e.seq, e.type, e.user_id, e.session_id) for e in got] == [
        (1, Kind.SESSION_CREATED, "alice", s.id),
        (2, Kind.SESSION_UPDATED, "alice", s.id),
        (3, Kind.STATUS_CHANGED, "alice", s.id),
        (4, Kind.SESSION_DELETED, "alice", s.id),
    ]
    assert [e.session for e in got] == [s, renamed, paused, None]
    assert renamed.job_context.title == "Renamed" and paused.status is PAUSED
    assert [e.at for e in got] == [
        CLOCK_START,
        datetime(2024, 1, 1, 10, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 10, 2, tzinfo=UTC),
        datetime(2024, 1, 1, 10, 3, tzinfo=UTC),
    ]
    assert all(e.interaction is None and e.metric is None for e in got)


async def test_a_status_change_with_other_fields_is_one_status_changed_event(
    domain_service, fake_db
):
    s = await domain_service.sessions.create(ALICE, new_session())
    both = await domain_service.sessions.update(
        ALICE,
        s.id,
        UpdateSession(status=PAUSED, settings=SessionSettings(preferred_language="de")),
    )
    assert both.status is PAUSED and both.settings.preferred_language == "de"
    # The status it already has, with a new setting: an ordinary update.
    again = await domain_service.sessions.update(
        ALICE,
        s.id,
        UpdateSession(status=PAUSED, settings=SessionSettings(preferred_language="fr")),
    )
    assert again.status is PAUSED and again.settings.preferred_language == "fr"
    assert [(e.type, e.session) for e in events(fake_db)[1:]] == [
        (Kind.STATUS_CHANGED, both),
        (Kind.SESSION_UPDATED, again),
    ]


async def test_a_change_to_what_is_already_there_writes_nothing_and_tells_no_one(
    domain_service, fake_db
):
    s = await domain_service.sessions.create(ALICE, new_session())
    same = await domain_service.sessions.update(
        ALICE, s.id, UpdateSession(status=ACTIVE, job_context=s.job_context)
    )
    assert same == s
    assert await domain_service.sessions.update(ALICE, s.id, UpdateSession()) == s
    assert len(events(fake_db)) == 1


async def test_interaction_and_metric_events_carry_the_session_and_the_record(
    domain_service, fake_db, clock
):
    svc = domain_service
    s = await svc.sessions.create(ALICE, new_session())
    clock.advance(seconds=5)
    i = await svc.interactions.create(
        ALICE, CreateInteraction(session_id=str(s.id), question="Why?")
    )
    clock.advance(seconds=5)
    m = await svc.metrics.record(ALICE, RecordMetrics(session_id=str(s.id), total_latency_ms=7))
    clock.advance(seconds=5)
    chosen = await svc.interactions.update(ALICE, i.id, UpdateInteraction(selected_response="b"))

    created, recorded, updated = events(fake_db)[1:]
    assert (created.type, created.user_id, created.session_id) == (
        Kind.INTERACTION_CREATED,
        "alice",
        s.id,
    )
    assert (created.session, created.interaction, created.metric) == (s, i, None)
    assert created.at == datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)

    assert (recorded.type, recorded.user_id, recorded.session_id) == (
        Kind.METRICS_RECORDED,
        "alice",
        s.id,
    )
    assert (recorded.session, recorded.interaction, recorded.metric) == (s, None, m)
    assert recorded.at == datetime(2024, 1, 1, 10, 0, 10, tzinfo=UTC)

    assert (updated.type, updated.user_id, updated.session_id) == (
        Kind.INTERACTION_UPDATED,
        "alice",
        s.id,
    )
    assert (updated.session, updated.interaction, updated.metric) == (s, chosen, None)
    assert updated.interaction.selected_response == "b"
    assert updated.at == datetime(2024, 1, 1, 10, 0, 15, tzinfo=UTC)
    assert [e.seq for e in events(fake_db)] == [1, 2, 3, 4]


async def test_events_are_numbered_per_user(domain_service, fake_db):
    await domain_service.sessions.create(ALICE, new_session())
    await domain_service.sessions.create(BOB, new_session())
    await domain_service.sessions.create(ALICE, new_session())
    assert [(e.user_id, e.seq) for e in events(fake_db)] == [("alice", 1), ("bob", 1), ("alice", 2)]


async def test_subscribers_are_woken_once_each_change_committed(bussed_service, bus, fake_db):
    svc = bussed_service
    s = await svc.sessions.create(ALICE, new_session())
    await svc.sessions.create(BOB, new_session())
    i = await svc.interactions.create(ALICE, CreateInteraction(session_id=str(s.id), question="Q"))
    await svc.metrics.record(ALICE, RecordMetrics(session_id=str(s.id)))
    await svc.interactions.update(ALICE, i.id, UpdateInteraction(user_feedback=5))
    await svc.sessions.set_status(ALICE, s.id, PAUSED)
    await svc.sessions.delete(ALICE, s.id)
    assert bus.wakeups == [
        ("alice", 1),
        ("bob", 1),
        ("alice", 2),
        ("alice", 3),
        ("alice", 4),
        ("alice", 5),
        ("alice", 6),
    ]
    assert len(events(fake_db)) == 7


async def test_a_refused_change_wakes_no_one_and_leaves_no_event(bussed_service, bus, fake_db):
    svc = bussed_service
    s = await svc.sessions.create(ALICE, new_session())
    await svc.sessions.set_status(ALICE, s.id, COMPLETED)
    before = list(bus.wakeups)
    with pytest.raises(BadRequest):
        await svc.interactions.create(ALICE, CreateInteraction(session_id=str(s.id), question="Q"))
    with pytest.raises(BadRequest):
        await svc.sessions.set_status(ALICE, s.id, ACTIVE)
    with pytest.raises(Forbidden):
        await svc.metrics.record(BOB, RecordMetrics(session_id=str(s.id)))
    assert bus.wakeups == before == [("alice", 1), ("alice", 2)]
    assert len(events(fake_db)) == 2


async def test_a_transaction_wakes_subscribers_only_when_it_commits(bussed_service, bus, fake_db):
    tx = fake_db.transaction()
    inside = bussed_service.within(tx)
    s = await inside.sessions.create(ALICE, new_session())
    assert bus.wakeups == []
    assert fake_db.store.sessions == {}
    await tx.commit()
    assert bus.wakeups == [("alice", 1)]
    assert await bussed_service.sessions.get(ALICE, s.id) == s


async def test_a_service_part_without_a_bus_still_records_its_events(fake_db, clock):
    """A part made on its own (a script's) has no one to wake: its changes
    commit and keep their events all the same."""
    sessions = SessionService(fake_db, max_active=1, cursors=Cursors(b""), clock=clock)
    s = await sessions.create(ALICE, new_session())
    assert await sessions.get(ALICE, s.id) == s
    assert [(e.type, e.session) for e in events(fake_db)] == [(Kind.SESSION_CREATED, s)]
    with pytest.raises(Conflict):
        await sessions.create(ALICE, new_session())


async def test_a_service_without_a_bus_cannot_stream(domain_service):
    with pytest.raises(RuntimeError) as info:
        await domain_service.live.subscribe(ALICE)
    assert str(info.value) == "this service has no event bus: nothing can subscribe"


async def test_the_default_clock_is_utc_now(fake_db):
    svc = Service.build(fake_db, max_active_sessions=5)
    before = datetime.now(UTC)
    s = await svc.sessions.create(ALICE, new_session())
    after = datetime.now(UTC)
    assert s.started_at.utcoffset() is not None
    assert before <= s.started_at <= after
    now = utcnow()
    assert now.tzinfo is UTC and after <= now
