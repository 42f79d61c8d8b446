"""The raw asyncpg pools are handed out first come, first served (FairPool):
a request that waits for a connection is never overtaken by a newcomer, so
waits stay bounded under load (p99 latency: bench/README.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.db.pool import FairPool


class FakeConnection:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.in_transaction = False

    def is_closed(self) -> bool:
        return self.closed

    def is_in_transaction(self) -> bool:
        return self.in_transaction

    def terminate(self) -> None:
        self.closed = True

    async def execute(self, sql: str) -> None:
        assert sql == "ROLLBACK"
        self.in_transaction = False

    async def close(self) -> None:
        self.closed = True


class FakePool:
    """What FairPool opens connections with: counts them, as a server would."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.opened: list[FakeConnection] = []

    async def connect(self) -> FakeConnection:
        await asyncio.sleep(0)  # connecting yields
        open_now = [c for c in self.opened if not c.closed]
        assert len(open_now) < self.size, "FairPool opened more connections than its size"
        conn = FakeConnection(len(self.opened))
        self.opened.append(conn)
        return conn


def fair(fake: FakePool) -> FairPool:
    return FairPool(fake.connect, fake.size)


async def test_waiters_are_served_in_arrival_order_even_when_newcomers_keep_coming():
    pool = fair(FakePool(2))
    served: list[int] = []

    async def request(n: int, hold: float) -> None:
        conn = await pool.acquire(5)
        served.append(n)
        await asyncio.sleep(hold)
        await pool.release(conn)

    first = [asyncio.create_task(request(n, 0.01)) for n in range(6)]
    await asyncio.sleep(0.005)  # 0 and 1 hold the connections, 2..5 wait
    # Newcomers arrive just as connections are released: they queue behind.
    late = [asyncio.create_task(request(n, 0.001)) for n in range(6, 10)]
    await asyncio.gather(*first, *late)
    assert served == list(range(10))
    assert pool.busy == 0 and not pool.waiters


async def test_a_waiter_that_times_out_leaves_its_place_to_the_next():
    fake = FakePool(1)
    pool = fair(fake)
    held = await pool.acquire(5)
    impatient = asyncio.create_task(pool.acquire(0.01))
    patient = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        await impatient
    await pool.release(held)
    conn = await patient
    assert conn is held  # the same connection, handed on
    await pool.release(conn)
    assert pool.busy == 0 and len(fake.opened) == 1


async def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on():
    fake = FakePool(1)
    pool = fair(fake)
    held = await pool.acquire(5)
    first = asyncio.create_task(pool.acquire(5))
    second = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0)
    release = asyncio.create_task(pool.release(held))
    await asyncio.sleep(0)  # the slot is handed to ``first``...
    first.cancel()  # ...which is cancelled before it resumes
    await release
    with pytest.raises(asyncio.CancelledError):
        await first
    conn = await asyncio.wait_for(second, 1)
    await pool.release(conn)
    assert pool.busy == 0


async def test_a_failed_connect_frees_the_slot():
    async def refused() -> Any:
        raise ConnectionRefusedError()

    pool = FairPool(refused, 1)
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await pool.acquire(1)
    assert pool.busy == 0


async def test_closed_connections_are_replaced_and_open_transactions_rolled_back():
    fake = FakePool(1)
    pool = fair(fake)
    conn = await pool.acquire(1)
    conn.in_transaction = True  # (a read cancelled inside BEGIN)
    await pool.release(conn)
    assert not conn.in_transaction and not conn.closed
    again = await pool.acquire(1)
    assert again is conn
    again.terminate()  # found dead by its user
    await pool.release(again)
    fresh = await pool.acquire(1)
    assert fresh is not conn and len(fake.opened) == 2
    await pool.release(fresh)
    await pool.close()
    assert fresh.closed
    with pytest.raises(Exception, match="closing"):
        await pool.acquire(1)
