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

A write is one of two paths (``write``), both a :class:`PgTransaction`:

1. **guarded**, one statement: a transaction is *optimistic* at first. Its
   units of work run their reads on a write connection outside any
   transaction (only reads of a session with its version are allowed;
   versions read lately are remembered, :class:`app.db.executor.RowVersions`)
   and their writes are collected; at the commit, a unit of work that read
   one session share-locked, added rows and recorded one event (a new
   interaction or metric) is written as one statement that writes only if
   that session's row still has the version read, and commits on its own
   (app/db/late.py), with a keyed request's key and answer in it. No row
   lock is held across a round trip.
2. **a transaction** (app/db/transaction.py): BEGIN, the units of work,
   their last rows, COMMIT. A unit of work that does anything the guarded
   form cannot hold back (a row locked for update, an update, a delete)
   turns its transaction into this at once (only the first unit can: a
   later one makes the commit ask for a new try, ``Retry``), and a guard
   that no longer holds at the commit makes ``write`` run the work again
   this way (a keyed request: ``Retry``, app/idempotency.py runs it again
   with a transaction that is not optimistic).

Equivalence: tests/db/test_guarded_writes.py runs guarded writes both ways on
the same rows (and races them) and compares what is stored.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
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
    RowVersions,
    use_plans,
)
from app.db.late import GuardFailed, claim_key
from app.db.pool import FairPool
from app.db.repositories import UnitOfWork, key_row
from app.db.resilience import Attempt, Failure, Resilience, classify_asyncpg
from app.db.transaction import Handle, Transaction, after_commit, in_transaction
from app.domain.ports import Retry, Work
from app.domain.records import KeyedAnswer
from app.errors import DomainError, Unavailable

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
        self.versions = RowVersions()  # sessions guarded writes read lately

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
        tx = PgTransaction(self, optimistic=True)
        try:
            result = await tx.run(work)
            await tx.commit()
            return result
        except Retry:
            pass  # nothing was written: the same work, as a transaction
        finally:
            await tx.close()
        return await in_transaction(self._connector, self.resilience, work)

    def transaction(self, *, optimistic: bool = True) -> Transaction:
        """A transaction the caller holds (and closes): see app/db/transaction.py."""
        return PgTransaction(self, optimistic=optimistic)

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


class PgTransaction(Transaction):
    """A transaction that is optimistic until it cannot be (the module's path 1)."""

    def __init__(self, db: PostgresDatabase, *, optimistic: bool) -> None:
        super().__init__(db._connector, db.resilience)
        self.db = db
        self.late.guarded = optimistic
        self.reader = GuardedExecutor(
            db.writes, db.settings.db_pool_timeout, db.listeners, db.versions
        )

    async def run(self, work: Work[T]) -> T:
        if not self.late.guarded:
            return await super().run(work)
        async with self._lock:
            if self._failed is not None or self._done:
                raise Unavailable()
            mark = self.late.mark()
            reader = self.reader

            async def once(attempt: Attempt) -> T:
                reader.attempt = attempt
                reader.used_remembered.clear()
                try:
                    return await work(UnitOfWork(reader, self.late, self.committed))
                except DomainError:
                    self.late.undo(mark)
                    if not reader.used_remembered:
                        raise
                    # Refused on a row read lately: checked on a fresh read.
                    for session_id in reader.used_remembered:
                        self.db.versions.forget(session_id)
                    reader.fresh = True
                    try:
                        return await work(UnitOfWork(reader, self.late, self.committed))
                    except BaseException:
                        self.late.undo(mark)
                        raise
                    finally:
                        reader.fresh = False
                except BaseException as exc:
                    self.late.undo(mark)
                    if _dead(exc):
                        await reader.release(broken=True)
                    raise

            try:
                return await self.resilience.attempt(once, classify_asyncpg)
            except NotGuardable:
                if mark != _NOTHING:  # an earlier unit's writes were held back
                    self._failed = Retry()
                    raise self._failed from None
                self.late.guarded = False  # an ordinary transaction from here on
        return await super().run(work)

    async def _begin(self, attempt: Attempt) -> Handle:
        conn = self.reader.take()  # the reads' connection, when there is one
        if conn is None:
            return await self.connector.begin(attempt)
        try:
            for listener in self.db.listeners:
                listener("BEGIN")
            await conn.execute("BEGIN")
        except BaseException:
            conn.terminate()
            await self.db.writes.release(conn)
            raise
        return _Handle(
            self.db.writes, conn, AsyncpgExecutor(conn, self.db.listeners, writable=True)
        )

    async def commit(
        self, key: KeyedAnswer | None = None, *, expired_before: datetime | None = None
    ) -> bool:
        if not self.late.guarded:
            return await super().commit(key, expired_before=expired_before)
        async with self._lock:
            if self._failed is not None:
                raise Retry() if self.retry else Unavailable()
            late, reader = self.late, self.reader
            row = None if key is None else key_row(key, expired_before or key.created_at)
            ours = False

            async def once(attempt: Attempt) -> bool:
                nonlocal ours
                reader.attempt = attempt
                attempt.committing = True  # one statement that commits on its own
                try:
                    if late.one_statement():
                        ours = await late.run_guarded(reader, key=row)
                    elif late.empty():  # nothing changed: the key alone, if any
                        claim = claim_key("postgresql")
                        ours = row is None or bool(await reader.statement(claim, row))
                    else:
                        raise Retry()  # more than one statement holds: in a transaction
                except BaseException as exc:
                    if isinstance(exc, asyncpg.exceptions.InternalClientError):
                        # The driver refused it before sending it (a connection
                        # it knows is broken): nothing can have committed.
                        attempt.committing = False
                    if _dead(exc):
                        await reader.release(broken=True)
                    raise
                return ours

            try:
                return await self.resilience.attempt(once, classify_asyncpg)
            except GuardFailed:
                for session_id, _version in late.guards:
                    self.db.versions.forget(session_id)
                raise Retry() from None
            finally:
                self._done = True
                await reader.release(broken=False)
                if ours:
                    after_commit(self.committed)

    async def close(self) -> None:
        await super().close()
        await self.reader.release(broken=False)


_NOTHING = (0, 0, 0, 0, 0)
