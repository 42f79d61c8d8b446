"""The raw asyncpg pools are handed out first come, first served (FairPool):
a request that waits for a connection is never overtaken by a newcomer, so
waits stay bounded under load (p99 latency: bench/README.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.db.engine import FairPool


class FakePool:
    """asyncpg's pool as FairPool uses it: connections from a free list."""

    def __init__(self, size: int) -> None:
        self.free = [f"conn-{i}" for i in range(size)]
        self.out: set[str] = set()

    async def acquire(self) -> str:
        await asyncio.sleep(0)  # acquiring yields, as asyncpg's does
        assert self.free, "FairPool let more holders in than there are connections"
        conn = self.free.pop()
        self.out.add(conn)
        return conn

    async def release(self, conn: str) -> None:
        self.out.remove(conn)
        self.free.append(conn)

    async def close(self) -> None:
        pass


async def test_waiters_are_served_in_arrival_order_even_when_newcomers_keep_coming():
    pool = FairPool(FakePool(2), 2)
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
    pool = FairPool(fake, 1)
    held = await pool.acquire(5)
    impatient = asyncio.create_task(pool.acquire(0.01))
    patient = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        await impatient
    await pool.release(held)
    conn = await patient
    await pool.release(conn)
    assert pool.busy == 0 and fake.out == set()


async def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on():
    fake = FakePool(1)
    pool = FairPool(fake, 1)
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
    class Broken(FakePool):
        async def acquire(self) -> Any:
            raise ConnectionRefusedError()

    pool = FairPool(Broken(1), 1)
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await pool.acquire(1)
    assert pool.busy == 0
