"""A unit of work that outlives DB_COMMAND_TIMEOUT answers 503, whatever it waits on."""

from __future__ import annotations

import asyncio

import pytest

from app.db.engine import Database, classify_sqlalchemy
from app.errors import Unavailable
from tests.conftest import make_settings


async def test_a_stalled_unit_of_work_is_cancelled_and_answers_503(tmp_path):
    db = Database(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", db_command_timeout=0.2))
    try:

        async def stalled(attempt):
            await asyncio.sleep(60)

        with pytest.raises(Unavailable):
            await asyncio.wait_for(db._attempt(stalled, classify_sqlalchemy), timeout=5)
        # The breaker is open: the next unit of work fails at once.
        with pytest.raises(Unavailable):
            await db._attempt(stalled, classify_sqlalchemy)
        assert db.deadlines.running == {}
    finally:
        await db.dispose()


async def test_a_caller_cancelling_is_not_mistaken_for_a_deadline(tmp_path):
    db = Database(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    try:

        async def slow(attempt):
            await asyncio.sleep(60)

        task = asyncio.ensure_future(db._attempt(slow, classify_sqlalchemy))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert db.deadlines.running == {}
        db.breaker.check()  # not tripped
    finally:
        await db.dispose()
