"""Live sessions (live.md) on the fakes: what a subscriber receives, from
where it resumes, what it is refused, and when its stream ends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from app.domain.live import expired_message
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    RecordMetrics,
    SessionEventType,
    SessionStatus,
)
from app.domain.service import Service
from app.errors import BadRequest, Forbidden, NotFound
from tests.domain.fakes import FakeBus

ALICE, BOB = Principal("alice"), Principal("bob")
Kind = SessionEventType


def new_session(title: str = "Engineer") -> CreateSession:
    return CreateSession(job_context=JobContext(title=title, company="Corp"))


async def next_of(sub):
    """``anext`` with a bound: a stream that spins instead of waiting fails."""
    return await asyncio.wait_for(anext(sub), 5)


async def drain(sub) -> list:
    """What is committed and not yet delivered (stops at the first empty read)."""
    got = []
    while (event := await sub.next_within(1.0)) is not None:
        got.append(event)
        if sub.ended:
            break
    return got


@pytest.fixture
def svc(bussed_service: Service) -> Service:
    return bussed_service


async def test_without_a_cursor_the_stream_starts_with_what_commits_next(svc, bus):
    old = await svc.sessions.create(ALICE, new_session("old"))
    sub = await svc.live.subscribe(ALICE)
    assert await sub.next_within(2.5) is None
    assert sub.waiter.waits == [2.5]

    new = await svc.sessions.create(ALICE, new_session("new"))
    await svc.sessions.create(BOB, new_session("bob's"))
    await svc.sessions.set_status(ALICE, old.id, SessionStatus.PAUSED)
    got = await drain(sub)
    assert [(e.seq, e.type, e.session_id, e.user_id) for e in got] == [
        (2, Kind.SESSION_CREATED, new.id, "alice"),
        (3, Kind.STATUS_CHANGED, old.id, "alice"),
    ]
    assert got[0].session == new
    assert sub.position == 3 and not sub.ended


async def test_a_committed_event_is_delivered_at_once_without_waiting(svc):
    sub = await svc.live.subscribe(ALICE)
    s = await svc.sessions.create(ALICE, new_session())
    event = await sub.next_within(5)
    assert event is not None and event.session == s
    assert sub.waiter.waits == []


async def test_a_subscriber_is_woken_by_its_own_user_s_commits(svc, bus):
    sub = await svc.live.subscribe(ALICE)
    assert [w.user_id for w in bus.waiters] == ["alice"]
    await svc.sessions.create(BOB, new_session())
    assert not sub.waiter.pending
    await svc.sessions.create(ALICE, new_session())
    assert sub.waiter.pending


async def test_an_event_committed_while_waiting_is_delivered(svc):
    sub = await svc.live.subscribe(ALICE)
    made = []

    async def another_request():
        made.append(await svc.sessions.create(ALICE, new_session()))

    sub.waiter.meanwhile.append(another_request)
    event = await sub.next_within(3)
    assert event is not None and event.session == made[0]
    assert sub.waiter.waits == [3]


async def test_iterating_waits_at_most_the_safety_poll_between_reads(svc):
    sub = await svc.live.subscribe(ALICE)
    made = []

    async def another_request():
        made.append(await svc.sessions.create(ALICE, new_session()))

    sub.waiter.meanwhile.append(another_request)
    event = await next_of(sub)
    assert event.type is Kind.SESSION_CREATED and event.session == made[0]
    # Woken or not, a subscriber reads again within 30 seconds.
    assert sub.waiter.waits == [30.0]
    assert sub.__aiter__() is sub


async def test_iterating_delivers_what_is_ready_without_waiting(svc):
    sub = await svc.live.subscribe(ALICE)
    a = await svc.sessions.create(ALICE, new_session("a"))
    b = await svc.sessions.create(ALICE, new_session("b"))
    assert [(await next_of(sub)).session for _ in range(2)] == [a, b]
    assert sub.waiter.waits == []
    assert sub.position == 2


async def test_a_cursor_resumes_after_its_event(svc):
    sub = await svc.live.subscribe(ALICE)
    for n in range(4):
        await svc.sessions.create(ALICE, new_session(f"s{n}"))
    first, second, *_ = await drain(sub)
    cursor = svc.live.cursor(second)
    assert cursor != svc.live.cursor(first)
    again = await svc.live.subscribe(ALICE, after=cursor)
    assert [e.seq for e in await drain(again)] == [3, 4]
    from_first = await svc.live.subscribe(ALICE, after=svc.live.cursor(first))
    assert [e.seq for e in await drain(from_first)] == [2, 3, 4]


async def test_the_cursor_of_the_latest_event_resumes_with_nothing_missed(svc):
    sub = await svc.live.subscribe(ALICE)
    await svc.sessions.create(ALICE, new_session())
    (latest,) = await drain(sub)
    resumed = await svc.live.subscribe(ALICE, after=svc.live.cursor(latest))
    assert await resumed.next_within(1) is None
    s = await svc.sessions.create(ALICE, new_session())
    assert [e.session for e in await drain(resumed)] == [s]


async def test_more_events_than_one_read_are_all_delivered_in_order(svc):
    sub = await svc.live.subscribe(ALICE)
    s = await svc.sessions.create(ALICE, new_session())
    for _ in range(120):
        await svc.metrics.record(ALICE, RecordMetrics(session_id=str(s.id)))
    assert [e.seq for e in await drain(sub)] == list(range(1, 122))


async def test_a_cursor_is_the_user_s_own(svc):
    sub = await svc.live.subscribe(ALICE)
    await svc.sessions.create(ALICE, new_session())
    (event,) = await drain(sub)
    with pytest.raises(BadRequest) as info:
        await svc.live.subscribe(BOB, after=svc.live.cursor(event))
    assert info.value.message == "Invalid cursor: it is not one this list gave you"
    with pytest.raises(BadRequest):
        await svc.live.subscribe(ALICE, after="not-a-cursor")


async def test_a_session_stream_has_only_that_session_s_events(svc):
    a = await svc.sessions.create(ALICE, new_session("a"))
    b = await svc.sessions.create(ALICE, new_session("b"))
    sub = await svc.live.subscribe(ALICE, str(a.id))
    await svc.interactions.create(ALICE, CreateInteraction(session_id=str(b.id), question="Q"))
    i = await svc.interactions.create(ALICE, CreateInteraction(session_id=str(a.id), question="Q"))
    got = await drain(sub)
    assert [(e.type, e.session_id, e.interaction) for e in got] == [
        (Kind.INTERACTION_CREATED, a.id, i)
    ]
    assert sub.session_id == a.id


async def test_a_session_stream_ends_with_its_deletion(svc, bus):
    a = await svc.sessions.create(ALICE, new_session("a"))
    sub = await svc.live.subscribe(ALICE, a.id)
    await svc.sessions.delete(ALICE, a.id)
    deleted = await sub.next_within(1)
    assert deleted is not None and deleted.type is Kind.SESSION_DELETED
    assert sub.ended is True
    with pytest.raises(StopAsyncIteration):
        await next_of(sub)
    sub.close()
    assert sub.waiter.closed and bus.waiters == []


async def test_a_user_stream_goes_on_after_a_deletion(svc):
    a = await svc.sessions.create(ALICE, new_session("a"))
    sub = await svc.live.subscribe(ALICE)
    await svc.sessions.delete(ALICE, a.id)
    b = await svc.sessions.create(ALICE, new_session("b"))
    deleted = await next_of(sub)
    assert deleted.type is Kind.SESSION_DELETED and sub.ended is False
    assert (await next_of(sub)).session == b


async def test_resuming_a_deleted_session_delivers_what_was_missed_then_ends(svc):
    a = await svc.sessions.create(ALICE, new_session("a"))
    sub = await svc.live.subscribe(ALICE, a.id)
    await svc.metrics.record(ALICE, RecordMetrics(session_id=str(a.id)))
    (recorded,) = await drain(sub)
    sub.close()
    i = await svc.interactions.create(ALICE, CreateInteraction(session_id=str(a.id), question="Q"))
    await svc.sessions.delete(ALICE, a.id)

    resumed = await svc.live.subscribe(ALICE, str(a.id), after=svc.live.cursor(recorded))
    got = await drain(resumed)
    assert [(e.type, e.interaction) for e in got] == [
        (Kind.INTERACTION_CREATED, i),
        (Kind.SESSION_DELETED, None),
    ]
    assert resumed.ended

    # Its deletion delivered, the session is gone for good.
    with pytest.raises(NotFound):
        await svc.live.subscribe(ALICE, str(a.id), after=svc.live.cursor(got[-1]))


async def test_a_missing_session_cannot_be_streamed(svc):
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as info:
        await svc.live.subscribe(ALICE, str(missing))
    assert info.value.message == "Interview session not found"
    # Nor resumed, when it never was the caller's.
    a = await svc.sessions.create(ALICE, new_session())
    sub = await svc.live.subscribe(ALICE)
    await svc.sessions.delete(ALICE, a.id)
    (deleted,) = await drain(sub)
    with pytest.raises(NotFound):
        await svc.live.subscribe(ALICE, str(missing), after=svc.live.cursor(deleted))
    with pytest.raises(BadRequest) as bad:
        await svc.live.subscribe(ALICE, "nope")
    assert bad.value.message == "Validation failed (uuid is expected)"


async def test_a_deleted_session_cannot_be_streamed_without_a_cursor(svc):
    a = await svc.sessions.create(ALICE, new_session())
    await svc.sessions.delete(ALICE, a.id)
    with pytest.raises(NotFound):
        await svc.live.subscribe(ALICE, str(a.id))


async def test_someone_else_s_session_cannot_be_streamed(svc, bus):
    bobs = await svc.sessions.create(BOB, new_session())
    with pytest.raises(Forbidden):
        await svc.live.subscribe(ALICE, str(bobs.id))
    # Not even after Bob deleted it, from a cursor of Alice's own.
    await svc.sessions.create(ALICE, new_session())
    sub = await svc.live.subscribe(ALICE, after=None)
    await svc.sessions.create(ALICE, new_session())
    (mine,) = await drain(sub)
    sub.close()
    await svc.sessions.delete(BOB, bobs.id)
    with pytest.raises(NotFound):
        await svc.live.subscribe(ALICE, str(bobs.id), after=svc.live.cursor(mine))
    # A refused subscription holds no waiter.
    assert bus.waiters == []


async def prune(fake_db, before) -> int:
    """What the maintenance task does: events older than ``before`` go."""
    return await fake_db.write(lambda uow: uow.events.prune(before, 1000))


def cursor_at(svc: Service, user: Principal, seq: int) -> str:
    """A cursor as another deployment with the same secret would have issued it."""
    return svc.live.cursors.encode_number(svc.live.scope(user.user_id), seq)


async def test_a_cursor_ahead_of_the_stream_is_refused(svc, bus):
    await svc.sessions.create(ALICE, new_session())
    with pytest.raises(BadRequest) as info:
        await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, 2))
    assert info.value.message == expired_message(timedelta(days=7))
    assert bus.waiters == []
    assert (await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, 1))).position == 1


async def test_a_cursor_older_than_the_events_kept_is_refused(svc, fake_db, clock):
    for _ in range(4):
        await svc.sessions.create(ALICE, new_session())
        clock.advance(days=1)
    await svc.sessions.create(BOB, new_session())
    # Events 1 and 2 of Alice's are pruned: a client that saw 1 missed 2.
    assert await prune(fake_db, before=fake_db.store.events[2].at) == 2
    with pytest.raises(BadRequest) as info:
        await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, 1))
    assert info.value.message == (
        "after: this cursor is older than the events kept (EVENT_RETENTION, 7 days); "
        "subscribe again without after"
    )
    # One that saw 2 misses nothing: 3 is kept.
    resumed = await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, 2))
    assert [e.seq for e in await drain(resumed)] == [3, 4]


async def test_once_every_event_is_pruned_only_the_latest_cursor_resumes(svc, fake_db, clock):
    for _ in range(3):
        await svc.sessions.create(ALICE, new_session())
    clock.advance(days=30)
    await prune(fake_db, before=clock())
    assert fake_db.store.events == []
    resumed = await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, 3))
    assert resumed.position == 3
    for seq in (1, 2):
        with pytest.raises(BadRequest):
            await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, seq))


async def test_the_expired_message_names_the_retention():
    assert "(EVENT_RETENTION, 7 days)" in expired_message(timedelta(days=7))
    assert "(EVENT_RETENTION, 1 days)" in expired_message(timedelta(days=1))
    assert "(EVENT_RETENTION, 1.5 days)" in expired_message(timedelta(hours=36))
    assert "(EVENT_RETENTION, 43200 seconds)" in expired_message(timedelta(hours=12))
    assert "(EVENT_RETENTION, 86399 seconds)" in expired_message(timedelta(seconds=86399))
    assert expired_message(timedelta(seconds=90)) == (
        "after: this cursor is older than the events kept (EVENT_RETENTION, 90 seconds); "
        "subscribe again without after"
    )


async def test_the_retention_named_is_the_service_s(fake_db):
    svc = Service.build(fake_db, max_active_sessions=5, bus=FakeBus(), retention=timedelta(hours=1))
    await svc.sessions.create(ALICE, new_session())
    with pytest.raises(BadRequest) as info:
        await svc.live.subscribe(ALICE, after=cursor_at(svc, ALICE, 9))
    assert "(EVENT_RETENTION, 3600 seconds)" in str(info.value.message)


async def test_interrupting_wakes_a_waiting_stream(svc):
    sub = await svc.live.subscribe(ALICE)
    sub.interrupt()
    assert sub.waiter.pending
    assert await sub.next_within(10) is None


async def test_a_service_built_without_a_secret_signs_as_it_always_has(fake_db):
    """Resuming after a deploy: the cursors of a service built without a
    cursor secret are the ones the previous release issued."""
    svc = Service.build(fake_db, max_active_sessions=5, bus=FakeBus())
    sub = await svc.live.subscribe(ALICE)
    await svc.sessions.create(ALICE, new_session())
    (event,) = await drain(sub)
    assert svc.live.cursor(event) == "bnxhNzljMmIyYzJiYjUzY2FmfDGHPplSg2-Z-ixY9to"
