"""PostgreSQL: every unit of work on raw asyncpg connections.

Statements are SQLAlchemy Core, compiled once to SQL text (app/db/executor.py)
and run as prepared statements; no SQLAlchemy connection, pool or greenlet is
on a request's path (the SQLAlchemy engine serves migrations and tools).

Two pools, handed out first come, first served (app/db/pool.py):

* reads, ``DB_POOL_SIZE`` connections, no transaction (each statement sees
  what is committed) or, when the reads must agree (``consistent``), one
  read-only REPEATABLE READ transaction. Statements are planned for their
  parameters (a search term, a skewed user), except those marked
  ``generic_plans`` (app/db/executor.py);
* writes, ``DB_WRITE_POOL_SIZE`` connections (few: writes to one user's rows
  wait for each other's row locks inside PostgreSQL, and more connections
  only add that waiting), which keep PostgreSQL's generic plans: every write
  reaches its rows by a key.

A write is one of two paths (``write``):

1. **guarded**, one statement: a unit of work that reads one session
   share-locked, adds rows and records one event (a new interaction or
   metric) has its reads run on a write connection outside any
   transaction, then its writes as one statement that writes only if that
   session's row still has the version read, committing on its own
   (app/db/late.py). No row lock is held across a round trip. If the row
   changed, or the work does anything else, nothing was written and it runs
   as 2.;
2. **a transaction** (app/db/transaction.py): BEGIN, the unit of work, its
   last rows, COMMIT.

Equivalence: tests/db/test_guarded_writes.py runs every guarded write both
ways on the same rows and compares what is stored.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg
import msgspec
from sqlalchemy import Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.db.executor import (
    AsyncpgExecutor,
    GuardedExecutor,
    NotGuardable,
    ReadConnection,
    use_plans,
)
from app.db.late import GuardFailed
from app.db.pool import FairPool
from app.db.repositories import UnitOfWork
from app.db.resilience import Attempt, Failure, Resilience, classify_asyncpg
from app.db.transaction import Transaction, after_commit, in_transaction
from app.domain.ports import Work

T = TypeVar("T")

# Prepared statements are planned for their parameters every time: after five
# runs PostgreSQL may switch to a generic plan, which for a search (a trigram
# index that pays off only for a selective term) or a skewed user was 30x
# slower than the custom one. Planning these statements costs well under a
# millisecond.
# No JIT: it compiles a query whose *estimated* cost is high, which for a
# short query with a pessimistic estimate (a search page's LIMIT over a term
# the statistics think rare: estimated 850,000, run in 1 ms) cost 140 ms of
# compilation on every request. The service's queries are short; none gains.
READ_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}
# Writes reach every row by a key (the session's id, the user's sequence
# row, a rollup's day), so a generic plan is the custom one, and planning
# the guarded statement (five parts) was a third of PostgreSQL's CPU per
# write: PostgreSQL's own choice (a generic plan after five runs) is kept.
WRITE_SETTINGS = {**READ_SETTINGS, "plan_cache_mode": "auto"}
_PING: Select[Any] = select(literal_column("1"))


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def make_engine(settings: Settings) -> AsyncEngine:
    """SQLAlchemy's engine on the same database: migrations, tools and tests."""
    return create_async_engine(
        settings.database_url,
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
        pool_size=2,
        max_overflow=8,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
            "server_settings": {"application_name": "interview-api", **READ_SETTINGS},
        },
    )


def _dead(exc: BaseException) -> bool:
    """A connection that failed as a dead one (or mid-prepare: asyncpg prepares
    with Flush, not Sync, so a cancelled or timed-out prepare leaves the
    server in a transaction the driver cannot see) is closed, never reused."""
    if isinstance(exc, asyncio.CancelledError | TimeoutError):
        return True
    return classify_asyncpg(exc) is Failure.DISCONNECTED


class _Handle:
    """A write connection with a transaction begun on it."""

    __slots__ = ("conn", "executor", "pool")

    def __init__(self, pool: FairPool, conn: Any, executor: AsyncpgExecutor) -> None:
        self.pool = pool
        self.conn = conn
        self.executor = executor

    async def commit(self) -> None:
        for listener in self.executor.listeners:
            listener("COMMIT")
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        if not self.conn.is_closed() and self.conn.is_in_transaction():
            await self.conn.execute("ROLLBACK")

    async def release(self, *, broken: bool) -> None:
        if broken:
            self.conn.terminate()
        await self.pool.release(self.conn)


class _Connector:
    """Transactions on the write pool (see app/db/transaction.py)."""

    dialect = "postgresql"
    dead = staticmethod(_dead)

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def classify(self, exc: BaseException) -> Failure:
        return classify_asyncpg(exc)

    async def begin(self, attempt: Attempt) -> _Handle:
        pool = self.db.writes
        attempt.queued = pool.would_wait()
        conn = await pool.acquire(self.db.settings.db_pool_timeout)
        try:
            attempt.connected = True
            for listener in self.db.listeners:
                listener("BEGIN")
            await conn.execute("BEGIN")
        except BaseException:
            conn.terminate()
            await pool.release(conn)
            raise
        return _Handle(pool, conn, AsyncpgExecutor(conn, self.db.listeners, writable=True))


class PostgresDatabase:
    """Units of work on PostgreSQL (see the module)."""

    dialect = "postgresql"

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.listeners: list[Callable[[str], None]] = []
        self.resilience = Resilience(settings.db_breaker_seconds, settings.db_command_timeout)
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

        def pool(kind: str, size: int, server_settings: dict[str, str]) -> FairPool:
            connect = functools.partial(
                asyncpg.connect,
                dsn,
                timeout=settings.db_connect_timeout,
                command_timeout=settings.db_command_timeout,
                server_settings={"application_name": f"interview-api-{kind}", **server_settings},
                connection_class=ReadConnection if kind == "reads" else asyncpg.Connection,
            )
            return FairPool(connect, size)

        self.reads = pool("reads", settings.db_pool_size, READ_SETTINGS)
        self.writes = pool("writes", settings.db_write_pool_size, WRITE_SETTINGS)
        self._connector = _Connector(self)

    # ---------------------------------------------------------------- statement listeners

    def add_statement_listener(self, listener: Callable[[str], None]) -> None:
        """Called with the SQL of every statement (tests count them)."""
        self.listeners.append(listener)

    def remove_statement_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.remove(listener)

    # ---------------------------------------------------------------- units of work

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        async def once(attempt: Attempt) -> T:
            pool = self.reads
            attempt.queued = pool.would_wait()  # waiting needs a deadline (then 503)
            conn = await pool.acquire(self.settings.db_pool_timeout)
            broken = False
            try:
                attempt.connected = True
                uow = UnitOfWork(AsyncpgExecutor(conn, self.listeners))
                if not consistent:
                    return await work(uow)
                await use_plans(conn, False)  # a transaction's statements: custom plans
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return await work(uow)
            except BaseException as exc:
                broken = _dead(exc)
                raise
            finally:
                if broken:
                    conn.terminate()
                await pool.release(conn)

        return await self.resilience.attempt(once, classify_asyncpg)

    async def write(self, work: Work[T]) -> T:
        """One of the two paths of the module's docstring; the outcome is a
        transaction's either way."""
        try:
            return await self._guarded(work)
        except (GuardFailed, NotGuardable):
            pass  # nothing was written: the same work, as a transaction
        return await in_transaction(self._connector, self.resilience, work)

    def transaction(self) -> Transaction:
        """A transaction the caller holds (and closes): see app/db/transaction.py."""
        return Transaction(self._connector, self.resilience)

    async def _guarded(self, work: Work[T]) -> T:
        async def once(attempt: Attempt) -> T:
            pool = self.writes
            ex = GuardedExecutor(pool, self.settings.db_pool_timeout, self.listeners, attempt)
            broken = False
            try:
                uow = UnitOfWork(ex)
                result = await work(uow)
                # The statement may have committed when the connection dies: no retry.
                attempt.committing = True
                await uow.late.run_guarded(ex)
            except BaseException as exc:
                broken = ex.conn is not None and _dead(exc)
                raise
            finally:
                await ex.release(broken=broken)
            after_commit(uow.committed)
            return result

        return await self.resilience.attempt(once, classify_asyncpg)

    async def ping(self) -> bool:
        async def select_one(uow: Any) -> None:
            await uow.ex.rows(_PING, {})

        try:
            await self.read(select_one)
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        self.resilience.stop()
        await self.reads.close()
        await self.writes.close()
        await self.engine.dispose()
