"""How a unit of work meets a database that fails: one template for every try.

:meth:`Resilience.attempt` runs one try of a unit of work (a ``once``
function of an :class:`Attempt`) under the circuit breaker and the unit's
deadline, classifies what the driver raised (:class:`Failure`), retries once
on a fresh connection when the connection was dead before anything could
have committed, and turns the rest into the domain's errors: a lost race is
:class:`app.errors.Conflict` (409), an unreachable or overloaded database
:class:`app.errors.Unavailable` (503). Both dialects' units of work
(app/db/postgres.py, app/db/sqlite.py) go through it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.errors import MODIFIED_CONCURRENTLY, Conflict, Unavailable

log = logging.getLogger("app.db")
T = TypeVar("T")


class Failure(enum.Enum):
    """What a driver error means for the unit of work that raised it."""

    BUG = "bug"  # ours, or bad data: propagate
    CONFLICT = "conflict"  # a lost race (serialization failure, deadlock): 409
    UNAVAILABLE = "unavailable"  # the database is not reachable now: 503
    DISCONNECTED = "disconnected"  # a dead connection: unreachable, but worth one retry
    OVERLOADED = "overloaded"  # reachable but slow (a timeout, a full pool): 503


_CONFLICTS = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def classify_sqlalchemy(exc: BaseException) -> Failure:
    """SQLAlchemy's errors (SQLite's writes, through aiosqlite)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if code in _CONFLICTS:
        return Failure.CONFLICT
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Failure.DISCONNECTED
    if isinstance(exc, ConnectionError):
        return Failure.DISCONNECTED
    if isinstance(exc, PoolTimeout):
        return Failure.OVERLOADED
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return Failure.UNAVAILABLE
    return Failure.BUG


def classify_sqlite(exc: BaseException) -> Failure:
    """Plain ``sqlite3`` errors (SQLite's reads)."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return Failure.UNAVAILABLE
    return classify_sqlalchemy(exc)


def classify_asyncpg(exc: BaseException) -> Failure:
    """asyncpg's errors (every PostgreSQL unit of work)."""
    e = asyncpg.exceptions
    if getattr(exc, "sqlstate", None) in _CONFLICTS:
        return Failure.CONFLICT
    if isinstance(
        exc,
        ConnectionError
        | e.ConnectionDoesNotExistError
        | e.AdminShutdownError
        | e.CrashShutdownError
        # The driver and the server disagree on the connection's state: a
        # pooled connection the server ended (pg_terminate_backend, a restart)
        # whose FATAL notice arrived before the socket's end was seen.
        | e.InternalClientError,
    ):
        return Failure.DISCONNECTED
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | e.PostgresConnectionError
        | e.InterfaceError
        | e.OperatorInterventionError,
    ):
        return Failure.UNAVAILABLE
    if isinstance(exc, e.QueryCanceledError | e.TooManyConnectionsError):
        return Failure.OVERLOADED
    return Failure.BUG


class Breaker:
    """A small circuit breaker: once the database is found unavailable, further
    units of work fail at once (503) for ``window`` seconds instead of each
    waiting for its own timeout. The first attempt after the window goes to
    the database again; it closes the breaker or opens it anew.

    Only a database that cannot be reached opens it at once (refused or lost
    connections, a connection attempt that timed out). A slow answer (a unit of
    work past its deadline, a statement timeout, a full pool) is a sign of load,
    not of an outage: one slow analytics query must not turn every other
    request into a 503, so those open it only when ``SLOW_LIMIT`` of them
    happen within ``window`` seconds with no success in between.
    """

    SLOW_LIMIT = 5

    def __init__(self, window: float) -> None:
        self.window = window
        self.open_until = 0.0
        self.slow = 0
        self.slow_since = 0.0

    def check(self) -> None:
        if self.open_until and time.monotonic() < self.open_until:
            raise Unavailable()

    def failed(self, *, unreachable: bool) -> None:
        now = time.monotonic()
        if not unreachable:
            if self.slow == 0 or now - self.slow_since > self.window:
                self.slow, self.slow_since = 0, now
            self.slow += 1
            if self.slow < self.SLOW_LIMIT:
                return
        self.open_until = now + self.window
        self.slow = 0

    def close(self) -> None:
        self.open_until = 0.0
        self.slow = 0


class Deadlines:
    """Units of work that outlive ``seconds`` are cancelled (and answer 503).

    One watcher task checks the running units twice a second, instead of a
    timer per unit of work (``asyncio.timeout`` costs a timer handle on every
    request): a stalled database answers within its deadline plus half a second.
    """

    CHECK_EVERY = 0.5

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None

    def enter(self) -> asyncio.Task[Any] | None:
        """Start watching the current task; None when an outer unit already does."""
        task = asyncio.current_task()
        if task is None or task in self.running:
            return None
        self.running[task] = time.monotonic()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return task

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching; True when the task was cancelled for its deadline."""
        del self.running[task]
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    async def _watch(self) -> None:
        while self.running:
            await asyncio.sleep(self.CHECK_EVERY)
            now = time.monotonic()
            for task, started in list(self.running.items()):
                if now - started > self.seconds and task not in self.expired:
                    self.expired.add(task)
                    task.cancel()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()


class Attempt:
    """What one try of a unit of work got to: for classifying its failure."""

    __slots__ = ("committing", "connected", "queued")

    def __init__(self) -> None:
        self.committing = False  # it may have committed: never run again
        self.connected = False  # it held a connection
        self.queued = False  # it waited for a busy pool (no connection attempt)


Once = Callable[[Attempt], Awaitable[T]]
Classify = Callable[[BaseException], Failure]


class Resilience:
    """The breaker and the deadlines of one database, and the one template
    every try of a unit of work runs in."""

    def __init__(self, breaker_seconds: float, deadline_seconds: float) -> None:
        self.breaker = Breaker(breaker_seconds)
        # A unit of work, retry included, never outlives the statement timeout:
        # a stalled database answers 503 within it (+0.5 s).
        self.deadlines = Deadlines(deadline_seconds)

    async def attempt(self, once: Once[T], classify: Classify, *, retry: bool = True) -> T:
        """Run ``once`` under the breaker, with the unit of work's deadline; a
        dead connection is retried once on a fresh one (``retry``: unless the
        unit is part of a transaction that cannot start over), an unreachable
        database is :class:`Unavailable`, a lost race :class:`Conflict`."""
        self.breaker.check()
        task = self.deadlines.enter()
        expired = False
        try:
            result = await self._tries(once, classify, retry)
        except asyncio.CancelledError:
            if task is None or not (expired := self.deadlines.leave(task)):
                raise
            task.uncancel()  # cancelled for its deadline, not by its caller
            self.breaker.failed(unreachable=False)
            log.error("database unavailable: no answer within %ss", self.deadlines.seconds)
            raise Unavailable() from None
        finally:
            if task is not None and not expired and task in self.deadlines.running:
                self.deadlines.leave(task)
        self.breaker.close()
        return result

    async def _tries(self, once: Once[T], classify: Classify, retry: bool) -> T:
        while True:
            attempt = Attempt()
            try:
                return await once(attempt)
            except Exception as exc:
                failure = classify(exc)
                if failure is Failure.BUG:
                    raise
                if failure is Failure.CONFLICT:
                    raise Conflict(MODIFIED_CONCURRENTLY) from exc
                if retry and failure is Failure.DISCONNECTED and not attempt.committing:
                    log.warning("database connection lost; retrying once: %r", exc)
                    retry = False
                    continue
                slow = failure is Failure.OVERLOADED or (
                    # a timeout on a connection in hand, or waiting for a busy pool
                    isinstance(exc, TimeoutError) and (attempt.connected or attempt.queued)
                )
                self.breaker.failed(unreachable=not slow)
                log.error("database %s: %r", "overloaded" if slow else "unavailable", exc)
                raise Unavailable() from exc

    def stop(self) -> None:
        self.deadlines.stop()
