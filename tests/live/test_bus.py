"""PostgreSQL's event bus listens only while its process has subscribers."""

from __future__ import annotations

import asyncio

import asyncpg

from app.db.bus import PgNotifyBus
from app.db.late import NOTIFY_CHANNEL

LISTENERS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = 'interview-api-events' AND datname = current_database()"
)


async def _until(admin: asyncpg.Connection, expected: int) -> None:
    for _ in range(100):
        if await admin.fetchval(LISTENERS) == expected:
            return
        await asyncio.sleep(0.05)
    assert await admin.fetchval(LISTENERS) == expected


async def test_the_bus_listens_only_while_it_has_subscribers(pg_db_url):
    dsn = pg_db_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    bus = PgNotifyBus(dsn, connect_timeout=5)
    bus.LINGER_SECONDS = 0.3
    try:
        await bus.start()
        # No subscriber: no connection, so other processes' writes never wake this one.
        await asyncio.sleep(0.3)
        assert not bus.listening
        assert await admin.fetchval(LISTENERS) == 0

        waiter = bus.waiter("alice")
        await asyncio.wait_for(bus.connected.wait(), 10)
        await _until(admin, 1)
        # Connecting woke the subscriber: what committed between its first
        # read and the LISTEN is read again.
        assert await waiter.wait(0.01) is True
        assert await waiter.wait(0.05) is False  # and only once

        await admin.execute("SELECT pg_notify($1, '7 alice')", NOTIFY_CHANNEL)
        assert await waiter.wait(5) is True
        await admin.execute("SELECT pg_notify($1, '8 bob')", NOTIFY_CHANNEL)
        assert await waiter.wait(0.3) is False  # another user's event

        # The last subscriber leaves: the connection stays for the linger...
        waiter.close()
        await asyncio.sleep(0.1)
        assert bus.listening
        # ...a new one within it keeps it...
        again = bus.waiter("alice")
        await asyncio.sleep(0.4)
        assert bus.listening
        # ...and once nobody has subscribed for the linger, it closes.
        again.close()
        await asyncio.sleep(0.5)
        assert not bus.listening
        await _until(admin, 0)

        # The next subscriber opens it again.
        third = bus.waiter("alice")
        await asyncio.wait_for(bus.connected.wait(), 10)
        await _until(admin, 1)
        await admin.execute("SELECT pg_notify($1, '9 alice')", NOTIFY_CHANNEL)
        assert await third.wait(5) is True
        third.close()
    finally:
        await bus.stop()
        await admin.close()
    assert not bus.listening
