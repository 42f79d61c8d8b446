"""Guarded writes (``Database.write(work, )``): on PostgreSQL the
unit of work's reads run first, its writes as one statement that commits on
its own and writes only if the session row it read is unchanged; otherwise
(and on SQLite) the same work runs as a transaction. Either way the outcome
is the transaction's: the rows, the rollups, the event."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from app.db.engine import Database
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    Interaction,
    JobContext,
    Metric,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
    SessionEventType,
    SessionStatus,
)
from app.errors import BadRequest, Conflict
from tests.conftest import as_principal
from tests.db.test_rollups import rebuilt_rows, rollup_rows


def _guarded(uow: Any) -> bool:
    """Whether this try of the work is the guarded one (PostgreSQL's first)."""
    return getattr(uow.ex, "guarded", False)


async def _new_session(service: Any, user: str) -> uuid.UUID:
    s = await service.sessions.create(
        as_principal(user), CreateSession(job_context=JobContext(title="SE", company="C"))
    )
    return s.id


def _interaction(sid: uuid.UUID) -> CreateInteraction:
    return CreateInteraction(
        session_id=str(sid),
        question="Why?",
        question_classification=QuestionClassification(type=QuestionType.TECHNICAL),
    )


async def _events(service: Any, user: str) -> list[Any]:
    async def work(uow: Any) -> list[Any]:
        return await uow.events.after(user, 0, None, 100)

    return await service.db.read(work)


async def test_a_guarded_write_is_two_statements_on_postgres(
    service, new_user, count_statements, backend
):
    user = new_user()
    sid = await _new_session(service, user)
    count_statements.statements.clear()
    created = await service.interactions.create(as_principal(user), _interaction(sid))
    metric = await service.metrics.record(
        as_principal(user), RecordMetrics(session_id=str(sid), total_latency_ms=120)
    )
    if backend == "postgres":
        # The first write: the session's read, then one statement (no
        # BEGIN/COMMIT); the second knows the session's version already: one.
        statements = count_statements.statements
        assert len(statements) == 3, statements
        assert "xmin" in statements[0]
        assert "FOR SHARE" in statements[1] and "FOR SHARE" in statements[2]
    stored = await service.interactions.list_for_session(as_principal(user), sid)
    assert [i.id for i in stored] == [created.id]
    assert [m.id for m in await service.metrics.list_for_session(as_principal(user), sid)] == [
        metric.id
    ]
    events = await _events(service, user)
    assert [e.type for e in events] == [
        SessionEventType.SESSION_CREATED,
        SessionEventType.INTERACTION_CREATED,
        SessionEventType.METRICS_RECORDED,
    ]
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1].interaction == created
    assert events[1].session is not None and events[1].session.id == sid
    assert events[2].metric == metric
    # The rollups the statement upserted are what a rebuild from the rows gives.
    assert await rollup_rows(service.db, user) == await rebuilt_rows(service.db, user)


async def test_a_session_changed_between_read_and_write_is_written_by_a_transaction(
    service, new_user, count_statements, backend
):
    """The guard sees the row's new version: nothing is written by the
    statement, and the work runs again as a transaction, reading the change
    (the event carries the session as it is now)."""
    user = new_user()
    sid = await _new_session(service, user)
    db: Database = service.db
    runs: list[bool] = []
    interaction_id = uuid.uuid4()

    async def work(uow: Any) -> Interaction:
        session = await uow.sessions.get(sid, share=True)
        runs.append(_guarded(uow))
        if _guarded(uow):  # another request pauses the session in between
            await service.sessions.set_status(as_principal(user), sid, SessionStatus.PAUSED)
        interaction = Interaction(
            id=interaction_id, session_id=sid, question="Q", timestamp=session.created_at
        )
        await uow.interactions.add(interaction)
        await service.interactions.emit(
            uow,
            SessionEventType.INTERACTION_CREATED,
            user,
            sid,
            session=session,
            interaction=interaction,
        )
        return interaction

    await db.write(
        work,
    )
    stored = await service.interactions.list_for_session(as_principal(user), sid)
    assert [i.id for i in stored] == [interaction_id]
    events = await _events(service, user)
    if backend == "sqlite":
        assert runs == [False]  # SQLite: always a transaction
        return
    assert runs == [True, False]  # the guarded try, then the transaction
    assert [e.type for e in events] == [
        SessionEventType.SESSION_CREATED,
        SessionEventType.STATUS_CHANGED,
        SessionEventType.INTERACTION_CREATED,
    ]
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[-1].session.status is SessionStatus.PAUSED


async def test_a_session_completed_in_between_takes_no_interaction(service, new_user, backend):
    """The service read 'active'; the session completed before the write: the
    transaction it falls back to reads 'completed' and refuses (400)."""
    user = new_user()
    sid = await _new_session(service, user)
    db: Database = service.db
    real_write = db.write
    first = True

    async def write(work: Any) -> Any:
        async def interfering(uow: Any) -> Any:
            nonlocal first
            if _guarded(uow) and first:  # after the service's read, before the write
                first = False
                result = work(uow)
                original = uow.sessions.get

                async def get_then_complete(*args: Any, **kwargs: Any) -> Any:
                    found = await original(*args, **kwargs)
                    await service.sessions.set_status(
                        as_principal(user), sid, SessionStatus.COMPLETED
                    )
                    return found

                uow.sessions.get = get_then_complete
                return await result
            return await work(uow)

        return await real_write(interfering)

    if backend == "sqlite":
        pytest.skip("SQLite's write transaction holds the database: nothing comes in between")
    db.write = write  # type: ignore[method-assign]
    try:
        with pytest.raises(BadRequest, match="completed session"):
            await service.interactions.create(as_principal(user), _interaction(sid))
    finally:
        db.write = real_write  # type: ignore[method-assign]
    assert await service.interactions.list_for_session(as_principal(user), sid) == []
    events = await _events(service, user)
    assert [e.type for e in events] == [
        SessionEventType.SESSION_CREATED,
        SessionEventType.STATUS_CHANGED,
    ]


async def test_a_deleted_session_is_not_found_and_nothing_is_written(service, new_user, backend):
    user = new_user()
    sid = await _new_session(service, user)
    db: Database = service.db
    runs = 0

    async def work(uow: Any) -> None:
        nonlocal runs
        runs += 1
        session = await uow.sessions.get(sid, share=True)
        if _guarded(uow):  # deleted after the read, before the write
            await service.sessions.delete(as_principal(user), sid)
        if session is None:
            raise BadRequest("gone")
        metric = Metric(id=uuid.uuid4(), session_id=sid, created_at=session.created_at)
        await uow.metrics.add(metric)
        await service.metrics.emit(
            uow, SessionEventType.METRICS_RECORDED, user, sid, session=session, metric=metric
        )

    if backend == "sqlite":
        await db.write(
            work,
        )  # no deletion in between: written
        assert runs == 1
        return
    with pytest.raises(BadRequest, match="gone"):
        await db.write(
            work,
        )
    assert runs == 2  # the guarded try wrote nothing; the transaction found no session
    events = await _events(service, user)
    assert [e.type for e in events][-1] is SessionEventType.SESSION_DELETED


async def test_work_a_guarded_statement_cannot_do_runs_as_a_transaction(service, new_user, backend):
    """A write of its own, a row lock: nothing is written by the guarded try."""
    user = new_user()
    sid = await _new_session(service, user)
    kinds: list[bool] = []

    async def work(uow: Any) -> None:
        kinds.append(_guarded(uow))
        await uow.sessions.get(sid, lock=True)

    await service.db.write(
        work,
    )
    assert kinds == ([True, False] if backend == "postgres" else [False])


@pytest.mark.postgres
async def test_many_concurrent_guarded_writes_of_one_user_keep_their_order(
    service, new_user, backend
):
    """One user's sequence row is taken inside each statement: every write
    commits with its own seq, in order, none lost, and the rollups add up."""
    if backend != "postgres":
        pytest.skip("the guarded statement is PostgreSQL's")
    user = new_user()
    sid = await _new_session(service, user)
    created = await asyncio.gather(
        *(service.interactions.create(as_principal(user), _interaction(sid)) for _ in range(40))
    )
    events = await _events(service, user)
    assert [e.seq for e in events] == list(range(1, 42))
    assert sorted(str(e.interaction.id) for e in events[1:]) == sorted(str(c.id) for c in created)
    assert await rollup_rows(service.db, user) == await rebuilt_rows(service.db, user)


async def test_a_complete_racing_guarded_writes_never_lets_one_in_after(service, new_user, backend):
    """Interactions racing a complete: each either lands before it (its event
    seq is smaller) or is refused with the contract's 400."""
    user = new_user()
    sid = await _new_session(service, user)

    async def add() -> str:
        try:
            await service.interactions.create(as_principal(user), _interaction(sid))
        except BadRequest:
            return "refused"
        except Conflict:
            return "conflict"
        return "added"

    async def complete() -> None:
        await asyncio.sleep(0.005)
        await service.sessions.set_status(as_principal(user), sid, SessionStatus.COMPLETED)

    results = await asyncio.gather(*(add() for _ in range(30)), complete())
    outcomes = results[:-1]
    events = await _events(service, user)
    kinds = [e.type for e in events]
    done_at = kinds.index(SessionEventType.STATUS_CHANGED)
    assert SessionEventType.INTERACTION_CREATED not in kinds[done_at:]
    assert kinds.count(SessionEventType.INTERACTION_CREATED) == outcomes.count("added")
    stored = await service.interactions.list_for_session(as_principal(user), sid)
    assert len(stored) == outcomes.count("added")


@pytest.mark.postgres
async def test_write_connections_terminated_between_writes_are_replaced(service, new_user, backend):
    """The write pool's connections were terminated by the server between two
    writes (a restart, an administrator): the next write takes a fresh
    connection and happens once, without an error."""
    if backend != "postgres":
        pytest.skip("PostgreSQL's raw write pool")
    user = new_user()
    sid = await _new_session(service, user)
    await service.interactions.create(as_principal(user), _interaction(sid))  # pool warm
    pool = service.db.writes
    assert pool.idle, "the warm-up write left no connection in the pool"
    url = service.db.engine.url.set(drivername="postgresql")
    admin = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        # (with a timeout: returns once each backend has exited)
        await admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE application_name = 'interview-api-writes' AND datname = current_database()"
        )
    finally:
        await admin.close()
    # "Between two writes": this process has read each backend's goodbye. A
    # write sent while the backend is still exiting meets the termination as
    # its answer; nobody can tell then whether it committed, and it is
    # refused (503), not run again: that case is not this test's.
    for _ in range(500):
        if all(conn.is_closed() for conn in pool.idle):
            break
        await asyncio.sleep(0.01)
    assert all(conn.is_closed() for conn in pool.idle)
    await service.interactions.create(as_principal(user), _interaction(sid))
    stored = await service.interactions.list_for_session(as_principal(user), sid)
    assert len(stored) == 2


async def _change_elsewhere(service: Any, sql: str, sid: uuid.UUID) -> None:
    """A change this process does not see (another process or host did it)."""
    url = service.db.engine.url.set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(sql, sid)
    finally:
        await conn.close()


async def test_a_remembered_session_changed_elsewhere_is_read_again(
    service, new_user, count_statements, backend
):
    """The version remembered from the last write is stale: the statement
    writes nothing, and the write runs as a transaction on the row as it is."""
    if backend != "postgres":
        pytest.skip("remembered versions are the guarded statement's")
    user = new_user()
    sid = await _new_session(service, user)
    await service.interactions.create(as_principal(user), _interaction(sid))
    await _change_elsewhere(
        service,
        "UPDATE interview_sessions SET status = 'paused', "
        "job_context = jsonb_set(job_context, '{title}', '\"Changed\"') WHERE id = $1",
        sid,
    )
    count_statements.statements.clear()
    created = await service.interactions.create(as_principal(user), _interaction(sid))
    # The guarded statement on the remembered version, then the transaction.
    assert "FOR SHARE" in count_statements.statements[0], count_statements.statements
    assert count_statements.statements[1] == "BEGIN", count_statements.statements
    events = await _events(service, user)
    assert events[-1].interaction == created
    assert events[-1].session.status is SessionStatus.PAUSED
    assert events[-1].session.job_context.title == "Changed"
    assert len(await service.interactions.list_for_session(as_principal(user), sid)) == 2


async def test_a_remembered_session_deleted_elsewhere_is_not_found(service, new_user, backend):
    if backend != "postgres":
        pytest.skip("remembered versions are the guarded statement's")
    user = new_user()
    sid = await _new_session(service, user)
    await service.interactions.create(as_principal(user), _interaction(sid))
    await _change_elsewhere(service, "DELETE FROM interview_sessions WHERE id = $1", sid)
    from app.errors import NotFound

    with pytest.raises(NotFound):
        await service.metrics.record(as_principal(user), RecordMetrics(session_id=str(sid)))


async def test_a_refusal_on_a_remembered_session_is_checked_on_a_fresh_read(
    service, new_user, backend
):
    """Remembered as completed, deleted since: the answer is the fresh row's
    (not found), not the remembered one's (a completed session)."""
    if backend != "postgres":
        pytest.skip("remembered versions are the guarded statement's")
    user = new_user()
    sid = await _new_session(service, user)
    await service.sessions.set_status(as_principal(user), sid, SessionStatus.COMPLETED)
    await service.metrics.record(as_principal(user), RecordMetrics(session_id=str(sid)))
    await _change_elsewhere(service, "DELETE FROM interview_sessions WHERE id = $1", sid)
    from app.errors import NotFound

    with pytest.raises(NotFound):
        await service.interactions.create(as_principal(user), _interaction(sid))


async def test_another_users_remembered_session_is_still_forbidden(service, new_user, backend):
    from app.errors import Forbidden

    owner, other = new_user(), new_user()
    sid = await _new_session(service, owner)
    await service.interactions.create(as_principal(owner), _interaction(sid))
    with pytest.raises(Forbidden):
        await service.interactions.create(as_principal(other), _interaction(sid))
    assert len(await service.interactions.list_for_session(as_principal(owner), sid)) == 1
