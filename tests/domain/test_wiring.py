"""The service as the faces assemble it: one service over a request's own
transaction, the timestamps and JSON it writes, the errors of its ports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.domain.ports import Retry
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    QuestionType,
    RecordMetrics,
    to_json_value,
    write_datetime,
)
from app.errors import Conflict

ALICE = Principal("alice")


def new_session() -> CreateSession:
    return CreateSession(job_context=JobContext(title="Engineer", company="Corp"))


async def test_within_a_transaction_every_part_commits_with_it(bussed_service, fake_db):
    svc = bussed_service
    kept = await svc.sessions.create(ALICE, new_session())
    tx = fake_db.transaction()
    inside = svc.within(tx)
    assert await inside.healthy() is True

    s = await inside.sessions.create(ALICE, new_session())
    sub = await inside.live.subscribe(ALICE, str(s.id))  # a session only the transaction has
    i = await inside.interactions.create(
        ALICE, CreateInteraction(session_id=str(s.id), question="Q")
    )
    await inside.metrics.record(ALICE, RecordMetrics(session_id=str(s.id), total_latency_ms=1))
    # Each part reads what the transaction wrote so far ...
    assert await inside.interactions.list_for_session(ALICE, s.id) == [i]
    assert len(await inside.metrics.list_for_session(ALICE, s.id)) == 1
    assert (await inside.analytics.for_user(ALICE)).total_sessions == 2
    assert (await sub.next_within(1)).interaction == i
    # ... while the service outside it does not, until it commits.
    assert [x.id for x in await svc.sessions.list_sessions(ALICE)] == [kept.id]
    assert (await svc.analytics.for_user(ALICE)).total_sessions == 1
    await tx.commit()
    assert await svc.sessions.get(ALICE, s.id) == s
    assert await svc.interactions.list_for_session(ALICE, s.id) == [i]
    assert len(await svc.metrics.list_for_session(ALICE, s.id)) == 1


async def test_within_leaves_the_service_itself_as_it_was(bussed_service, fake_db):
    svc = bussed_service
    tx = fake_db.transaction()
    svc.within(tx)
    # Outside the transaction, every part still commits at once.
    s = await svc.sessions.create(ALICE, new_session())
    i = await svc.interactions.create(ALICE, CreateInteraction(session_id=str(s.id), question="Q"))
    m = await svc.metrics.record(ALICE, RecordMetrics(session_id=str(s.id)))
    assert fake_db.store.sessions == {s.id: s}
    assert fake_db.store.interactions == {i.id: i}
    assert fake_db.store.metrics == {m.id: m}
    assert tx.draft.sessions == {}
    assert (await svc.analytics.for_user(ALICE)).total_sessions == 1
    assert await svc.healthy() is True


async def test_pages_read_within_a_transaction_take_the_service_s_cursors(
    bussed_service, fake_db, clock
):
    svc = bussed_service
    s = await svc.sessions.create(ALICE, new_session())
    for n in range(3):
        clock.advance(seconds=1)
        await svc.interactions.create(
            ALICE, CreateInteraction(session_id=str(s.id), question=f"{n}")
        )
    inside = svc.within(fake_db.transaction())
    page = await inside.interactions.page(
        ALICE, s.id, inside.interactions.page_request(s.id, 1, None)
    )
    req = svc.interactions.page_request(s.id, 5, page.end_cursor)
    assert [i.question for i in (await svc.interactions.page(ALICE, s.id, req)).items] == ["1", "2"]


def test_timestamps_are_written_in_utc_with_a_z():
    assert write_datetime(datetime(2024, 1, 1, 10, 0, tzinfo=UTC)) == "2024-01-01T10:00:00Z"
    assert write_datetime(datetime(2024, 1, 1, 10, 0, 0, 5, tzinfo=UTC)) == (
        "2024-01-01T10:00:00.000005Z"
    )
    paris = timezone(timedelta(hours=1))
    assert write_datetime(datetime(2024, 1, 1, 11, 30, tzinfo=paris)) == "2024-01-01T10:30:00Z"
    # A naive value is UTC already (what SQLite hands back).
    assert write_datetime(datetime(2024, 1, 1, 10, 0)) == "2024-01-01T10:00:00Z"


@pytest.fixture
def server_in_new_york(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamps_do_not_depend_on_the_server_s_time_zone(server_in_new_york):
    assert write_datetime(datetime(2024, 1, 1, 10, 0)) == "2024-01-01T10:00:00Z"
    assert write_datetime(datetime(2024, 7, 1, 10, 0, tzinfo=UTC)) == "2024-07-01T10:00:00Z"


def test_value_objects_are_stored_as_their_external_json():
    value = to_json_value(
        JobContext(
            title="T", company="C", requirements=["Go"], interview_type=QuestionType.CULTURAL
        )
    )
    assert value == {
        "title": "T",
        "company": "C",
        "description": None,
        "requirements": ["Go"],
        "interviewType": "cultural",
        "seniority": None,
    }


def test_a_lost_optimistic_race_is_a_conflict_to_retry():
    err = Retry()
    assert isinstance(err, Conflict)
    assert (err.status_code, err.message) == (409, "Session was modified concurrently")
