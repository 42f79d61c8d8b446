"""PostgreSQL's pools: reads up to DB_POOL_SIZE connections, writes
(transactions and guarded statements) up to DB_WRITE_POOL_SIZE (few:
concurrent writes to the same rows wait for each other inside PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from app.config import ConfigError, load_settings
from app.db.engine import Database
from tests.conftest import TEST_SECRET, make_settings


def test_the_write_pool_size_is_configured_and_checked():
    env = {"JWT_SECRET": TEST_SECRET}
    assert load_settings(env).db_write_pool_size == 4
    assert load_settings({**env, "DB_WRITE_POOL_SIZE": "7"}).db_write_pool_size == 7
    for bad in ("0", "four"):
        with pytest.raises(ConfigError, match="DB_WRITE_POOL_SIZE"):
            load_settings({**env, "DB_WRITE_POOL_SIZE": bad})


async def test_writes_never_hold_more_connections_than_their_pool(pg_db_url):
    db = Database(make_settings(pg_db_url, db_pool_size=5, db_write_pool_size=2))
    try:
        reads, writes = db.reads, db.writes
        assert (reads.size, writes.size) == (5, 2)
        held = [await writes.acquire(1) for _ in range(2)]
        assert writes.would_wait()
        third = asyncio.ensure_future(writes.acquire(1))
        await asyncio.sleep(0.05)
        assert not third.done()  # a third write waits for a connection
        await writes.release(held.pop())
        held.append(await asyncio.wait_for(third, 1))
        for conn in held:
            await writes.release(conn)
    finally:
        await db.dispose()
