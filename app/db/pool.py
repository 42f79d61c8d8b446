"""Raw asyncpg connections for every PostgreSQL unit of work (app/db/postgres.py)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg


def _give_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no free connection in time"))


class FairPool:
    """Raw asyncpg connections, handed out first come, first served.

    asyncpg's own pool let a newcomer take a connection that was just released
    for a waiting request (the waiter is woken, but whoever asks first while
    it wakes gets it; the waiter goes back to the end of the queue): under
    more concurrent requests than connections some waited many turns, and
    p99 latency was 4-5x p50. Here at most ``size`` requests hold a
    connection; the others queue, and a release hands the slot to the oldest
    waiter directly. The connections themselves are a plain stack (the most
    recently used first): opened on demand with ``connect``, dropped when
    closed (a dead one is terminated by its user), rolled back when given
    back inside a transaction; with no queue, shield or timer per checkout,
    which were a tenth of a read's time in asyncpg's pool."""

    __slots__ = ("busy", "closing", "connect", "idle", "size", "waiters")

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int) -> None:
        self.connect = connect
        self.size = size
        self.busy = 0
        self.closing = False
        self.idle: list[Any] = []
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def would_wait(self) -> bool:
        return self.busy >= self.size or bool(self.waiters)

    async def acquire(self, wait_seconds: float) -> Any:
        if self.closing:
            raise asyncpg.exceptions.InterfaceError("pool is closing")
        if self.would_wait():
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self.waiters.append(waiter)
            # A timer on the waiter itself (asyncio.timeout, which cancels the
            # task, cost several times more on every wait).
            timer = loop.call_later(wait_seconds, _give_up, waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._pass_on()  # a slot was handed over as this gave up: pass it on
                else:
                    waiter.cancel()  # skipped by _pass_on
                raise
            finally:
                timer.cancel()
        else:
            self.busy += 1
        try:
            idle = self.idle
            while idle:
                conn = idle.pop()
                if not conn.is_closed():
                    return conn
            return await self.connect()
        except BaseException:
            self._pass_on()
            raise

    async def release(self, conn: Any) -> None:
        try:
            if conn.is_closed():
                return
            if self.closing:
                conn.terminate()
                return
            if conn.is_in_transaction():
                # (A read cancelled inside BEGIN; reads change nothing else.)
                try:
                    await conn.execute("ROLLBACK")
                except Exception:
                    conn.terminate()
                    return
            self.idle.append(conn)
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1

    async def close(self) -> None:
        self.closing = True
        idle, self.idle = self.idle, []
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                conn.terminate()
