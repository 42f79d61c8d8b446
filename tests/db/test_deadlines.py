"""A unit of work that outlives DB_COMMAND_TIMEOUT answers 503, whatever it waits on."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from app.db.engine import Database
from app.db.resilience import Breaker, classify_sqlalchemy
from app.errors import Unavailable
from tests.conftest import make_settings


async def test_a_stalled_unit_of_work_is_cancelled_and_answers_503(tmp_path):
    db = Database(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", db_command_timeout=0.2))
    try:

        async def stalled(attempt):
            await asyncio.sleep(60)

        with pytest.raises(Unavailable):
            await asyncio.wait_for(db.resilience.attempt(stalled, classify_sqlalchemy), timeout=5)
        # One slow unit of work is load, not an outage: the breaker stays closed
        # (it opens after Breaker.SLOW_LIMIT of them, see the test below).
        db.resilience.breaker.check()
        assert db.resilience.breaker.slow == 1
        assert db.resilience.deadlines.running == {}
    finally:
        await db.dispose()


async def test_a_caller_cancelling_is_not_mistaken_for_a_deadline(tmp_path):
    db = Database(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    try:

        async def slow(attempt):
            await asyncio.sleep(60)

        task = asyncio.ensure_future(db.resilience.attempt(slow, classify_sqlalchemy))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert db.resilience.deadlines.running == {}
        db.resilience.breaker.check()  # not tripped
    finally:
        await db.dispose()


def test_the_breaker_opens_at_once_only_for_an_unreachable_database(monkeypatch):
    from app.db import resilience

    now = [100.0]
    monkeypatch.setattr(resilience.time, "monotonic", lambda: now[0])
    b = Breaker(window=1.0)
    for _ in range(Breaker.SLOW_LIMIT - 1):  # slow answers: a sign of load
        b.failed(unreachable=False)
        b.check()
    b.close()  # a success in between starts the count again
    for _ in range(Breaker.SLOW_LIMIT - 1):
        b.failed(unreachable=False)
    now[0] += 1.5  # older than the window: forgotten
    b.failed(unreachable=False)
    b.check()
    for _ in range(Breaker.SLOW_LIMIT - 1):
        b.failed(unreachable=False)
    with pytest.raises(Unavailable):  # five in a second with no success: open
        b.check()
    now[0] += 1.1
    b.check()  # the window passed: the next one tries the database
    b.failed(unreachable=True)
    with pytest.raises(Unavailable):
        b.check()


async def test_a_read_left_in_a_transaction_does_not_poison_the_pool(pg_db_url):
    """PostgreSQL raw reads skip asyncpg's reset query; a connection given back
    inside a transaction (a read cancelled mid-BEGIN) is rolled back instead."""
    from sqlalchemy import literal_column, select

    db = Database(make_settings(pg_db_url, db_pool_size=1))
    try:
        pool = db.reads
        conn = await pool.acquire(1)
        await conn.execute("BEGIN")
        await pool.release(conn)
        one = select(literal_column("1").label("one"))

        async def work(uow):
            return (await uow.ex.rows(one, {}))[0]["one"]

        assert await db.read(work, consistent=True) == 1
    finally:
        await db.dispose()


async def test_reads_cancelled_mid_statement_do_not_poison_the_pool(pg_db_url):
    """asyncpg prepares with Flush, not Sync: a read cancelled mid-prepare left
    the server in an implicit transaction the driver could not see, and the
    next consistent read failed (a 500). Cancelled reads now close their
    connection; every read after them answers."""
    from sqlalchemy import literal_column, select

    db = Database(make_settings(pg_db_url, db_pool_size=1))
    try:
        for i in range(60):
            # A statement never seen before: asyncpg must prepare it.
            fresh = select(literal_column(str(i)).label(f"c{i}"))

            async def cancelled(uow, stmt=fresh):
                return await uow.ex.rows(stmt, {})

            task = asyncio.ensure_future(db.read(cancelled))
            for _ in range(i % 6):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Unavailable):
                await task  # (or it had already answered)
            probe = select(literal_column("1").label("one"))

            async def work(uow, stmt=probe):
                return (await uow.ex.rows(stmt, {}))[0]["one"]

            assert await db.read(work, consistent=True) == 1
    finally:
        await db.dispose()
