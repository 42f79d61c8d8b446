"""Engine, pools and units of work for both drivers.

SQLite: WAL, foreign keys on and a busy timeout on every connection; we take
control of ``BEGIN`` (SQLAlchemy's aiosqlite recipe) so write transactions start
with ``BEGIN IMMEDIATE`` and never fail on the read-to-write lock upgrade.
PostgreSQL: a pooled asyncpg engine with connect and command timeouts.

A unit of work whose connection turns out to be dead is retried once on a fresh
connection (the pool drops every older connection when it sees a disconnect);
a database that cannot be reached becomes :class:`app.errors.Unavailable`.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
from sqlalchemy import Select, create_engine, event, literal_column, make_url, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from app.config import Settings
from app.context import Claim, claim_var, outage_var
from app.db.executor import (
    AsyncpgExecutor,
    GuardedExecutor,
    InlineBusy,
    InlineSQLAlchemyExecutor,
    NotGuardable,
    NotRaw,
    RawSqliteExecutor,
    ReadConnection,
    RowVersions,
    SQLAlchemyExecutor,
    StatementListener,
    sqlite_locked,
    use_plans,
)
from app.db.late import GuardFailed
from app.db.repositories import UnitOfWork
from app.domain.ports import Work
from app.domain.records import KeyedAnswer
from app.errors import (
    KEY_IN_PROGRESS,
    MODIFIED_CONCURRENTLY,
    Conflict,
    DomainError,
    Unavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


# Prepared statements are planned for their parameters every time: after five
# runs PostgreSQL may switch to a generic plan, which for a search (a trigram
# index that pays off only for a selective term) or a skewed user was 30x
# slower than the custom one. Planning these statements costs well under a
# millisecond.
# No JIT: it compiles a query whose *estimated* cost is high, which for a
# short query with a pessimistic estimate (a search page's LIMIT over a term
# the statistics think rare: estimated 850,000, run in 1 ms) cost 140 ms of
# compilation on every request. The service's queries are short; none gains.
PG_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}
# Guarded writes are the exception: each statement reaches every row it
# touches by a key (the session's id, the user's sequence row, a rollup's
# day), so a generic plan is the custom one, and planning their statement
# (one per kind of write, five parts) was a third of PostgreSQL's CPU per
# write: PostgreSQL's own choice (a generic plan after five runs) is kept.
PG_WRITE_SETTINGS = {**PG_SETTINGS, "plan_cache_mode": "auto"}


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _sqlite_path(url: str) -> Path | None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path.startswith(":memory:"):
        return None
    return Path(path.split("?", 1)[0])


def make_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if settings.is_sqlite:
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=msgspec.json.decode,
            pool_size=5,
            max_overflow=5,
            pool_timeout=settings.db_pool_timeout,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
            "server_settings": {"application_name": "interview-api", **PG_SETTINGS},
        },
    )


def make_inline_sqlite_engine(settings: Settings) -> Engine | None:
    """SQLite reads run on the event loop's own thread (see ``Database.read``):
    a plain pysqlite engine on the same file, never waiting for a lock (busy
    timeout 0: a read that meets one goes to the threaded path instead).
    None for an in-memory database (each connection would see its own)."""
    url = make_url(settings.database_url)
    if _sqlite_path(settings.database_url) is None:
        return None
    engine = create_engine(
        url.set(drivername="sqlite"),
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
        # Checkout must never block the loop: any number of connections.
        poolclass=QueuePool,
        pool_size=5,
        max_overflow=-1,
        connect_args={"timeout": 0, "check_same_thread": False},
    )
    _install_sqlite_hooks(engine, busy_timeout_ms=0)
    return engine


def _install_sqlite_hooks(
    engine: AsyncEngine | Engine, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Stop the driver from issuing its own BEGIN; _on_begin does it below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if busy_timeout_ms:  # writers and threaded readers; inline readers need none
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("write_transaction", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


RAW_SQLITE_IDLE = 8  # plain sqlite3 connections kept for inline reads


def _raw_sqlite_connection(path: Path) -> sqlite3.Connection:
    """A reader's connection: autocommit (BEGIN is ours), never waiting for a lock."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def _sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def classify_raw_sqlite(exc: BaseException) -> Failure:
    """Errors of plain sqlite3 reads (SQLAlchemy wraps the same ones otherwise)."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return Failure.UNAVAILABLE
    return Failure.BUG


class Failure(enum.Enum):
    """What a driver error means for the unit of work that raised it."""

    BUG = "bug"  # ours, or bad data: propagate
    CONFLICT = "conflict"  # a lost race (serialization failure, deadlock): 409
    UNAVAILABLE = "unavailable"  # the database is not reachable now: 503
    DISCONNECTED = "disconnected"  # a dead connection: unreachable, but worth one retry
    OVERLOADED = "overloaded"  # reachable but slow (a timeout, a full pool): 503


def classify_sqlalchemy(exc: BaseException) -> Failure:
    """SQLAlchemy (aiosqlite, asyncpg underneath) errors."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if code in {"40001", "40P01"}:
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


def classify_asyncpg(exc: BaseException) -> Failure:
    """Errors of the raw asyncpg paths (reads, guarded writes)."""
    e = asyncpg.exceptions
    if getattr(exc, "sqlstate", None) in {"40001", "40P01"}:
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


class Database:
    """Units of work over one database, with one retry on a dead connection.

    ``write`` runs a SQLAlchemy transaction (``BEGIN IMMEDIATE`` on SQLite).
    ``read`` does the same on SQLite; on PostgreSQL it runs on a raw asyncpg
    pool without a transaction (each statement sees committed data), or in a
    read-only REPEATABLE READ transaction when the reads must agree
    (``consistent=True``).
    """

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.dialect = self.engine.dialect.name
        self._write_engine = self.engine.execution_options(write_transaction=True)
        self.listeners: list[StatementListener] = []
        self._pool: Any = None
        self._write_pool: Any = None
        self._pool_lock = asyncio.Lock()
        self.versions = RowVersions()  # the rows guarded writes read lately
        self.raw_reads = self.dialect == "postgresql"
        # SQLite reads on the loop's thread (no thread hop per statement);
        # SQLITE_INLINE_READS=false turns it off.
        self._inline = (
            make_inline_sqlite_engine(settings)
            if self.dialect == "sqlite" and settings.sqlite_inline_reads
            else None
        )
        # SQLite reads on plain sqlite3 connections (RawSqliteExecutor), when inline.
        path = _sqlite_path(settings.database_url) if self._inline is not None else None
        self._raw_sqlite_path = path if settings.sqlite_raw_reads else None
        self._raw_sqlite_free: list[sqlite3.Connection] = []
        self.breaker = Breaker(settings.db_breaker_seconds)
        # A unit of work, retry included, never outlives the statement timeout:
        # a stalled database answers 503 within DB_COMMAND_TIMEOUT (+0.5 s).
        self.deadlines = Deadlines(settings.db_command_timeout)

    # ---------------------------------------------------------------- statement listeners

    def add_statement_listener(self, listener: StatementListener) -> None:
        """Called with the SQL of every statement, on both paths (tests count them)."""
        self.listeners.append(listener)
        event.listen(self.engine.sync_engine, "before_cursor_execute", _adapt(listener))
        if self._inline is not None:
            event.listen(self._inline, "before_cursor_execute", _adapt(listener))

    def remove_statement_listener(self, listener: StatementListener) -> None:
        self.listeners.remove(listener)
        event.remove(self.engine.sync_engine, "before_cursor_execute", _adapt(listener))
        if self._inline is not None:
            event.remove(self._inline, "before_cursor_execute", _adapt(listener))

    # ---------------------------------------------------------------- units of work

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        await self._settle_pending()
        if self.raw_reads:
            return await self._run_raw(work, consistent)
        if self._inline is not None:
            try:
                if self._raw_sqlite_path is not None:
                    try:
                        return await self._run_raw_sqlite(self._raw_sqlite_path, work)
                    except NotRaw:
                        pass  # a statement it does not run: the same work on SQLAlchemy's
                return await self._run_inline(self._inline, work)
            except InlineBusy:
                pass  # a lock in the way: the threaded path waits for it instead
        return await self._run(self.engine, work, write=False)

    async def _run_raw_sqlite(self, path: Path, work: Work[T]) -> T:
        """``_run_inline`` on a plain sqlite3 connection (RawSqliteExecutor):
        one deferred (WAL snapshot) transaction, rolled back; a lock in the
        way is InlineBusy (the threaded path waits for it)."""

        async def once(attempt: Attempt) -> T:
            free = self._raw_sqlite_free
            conn = free.pop() if free else _raw_sqlite_connection(path)
            broken = False
            try:
                attempt.connected = True
                try:
                    conn.execute("BEGIN")
                    for listener in self.listeners:
                        listener("BEGIN")
                    try:
                        return await work(UnitOfWork(RawSqliteExecutor(conn, self.listeners)))
                    finally:
                        conn.execute("ROLLBACK")  # read-only: nothing to commit
                except sqlite3.OperationalError as exc:
                    broken = not _sqlite_busy(exc)
                    if not broken:
                        raise InlineBusy() from exc
                    raise
            finally:
                if broken or len(free) >= RAW_SQLITE_IDLE:
                    conn.close()
                else:
                    free.append(conn)

        return await self._attempt(once, classify_raw_sqlite)

    async def write_one(self, work: Work[T]) -> T:
        """A write of exactly one statement (atomic on its own): on PostgreSQL
        it runs on the raw pool with no BEGIN/COMMIT round trips and no
        SQLAlchemy connection; elsewhere it is an ordinary ``write``.

        On PostgreSQL it does not wait for its WAL flush (``synchronous_commit
        = off``): atomic and consistent, but a crash of the database within
        a few hundred milliseconds may lose it. For writes that may be lost
        that way only (an Idempotency-Key's stored answer: the change it
        guards committed durably already). Waiting would be one more flush
        per keyed request, taken in turn with the flushes of the commits that
        hold a user's event-sequence lock."""
        if not self.raw_reads:
            return await self.write(work)
        await self._settle_pending()
        return await self._run_raw(work, consistent=False, writable=True)

    async def _run_inline(self, engine: Engine, work: Work[T]) -> T:
        """A SQLite read on the event loop's thread, in one (deferred, WAL
        snapshot) transaction. Small indexed reads take tens of microseconds,
        less than the two thread hops per statement of the aiosqlite path
        they replace; the statements block the loop while they run, so this
        is for SQLite, the single-host default, only."""

        async def once(attempt: Attempt) -> T:
            try:
                with engine.connect() as conn:
                    attempt.connected = True
                    conn.begin()
                    try:
                        return await work(UnitOfWork(InlineSQLAlchemyExecutor(conn)))
                    finally:
                        conn.rollback()  # read-only: nothing to commit
            except OperationalError as exc:
                if sqlite_locked(exc):  # connecting, beginning or reading
                    raise InlineBusy() from exc
                raise

        return await self._attempt(once, classify_sqlalchemy)

    async def write(self, work: Work[T], *, guarded: bool = False) -> T:
        await self._settle_pending()
        if claim_var.get() is not None:
            guarded = False  # a keyed request: its change commits with its key
        if guarded and self.raw_reads:
            try:
                return await self._run_guarded(work)
            except (GuardFailed, NotGuardable):
                pass  # nothing was written: the same work, as a transaction
        return await self._run(self._write_engine, work, write=True)

    async def _run_guarded(self, work: Work[T]) -> T:
        """A guarded write on PostgreSQL (see ``ports.Database.write``): the
        work's reads on a raw connection with no transaction (or from the
        versions read lately: :class:`RowVersions`), then its writes as one
        statement that commits on its own (``Late.run_guarded``). One or two
        round trips, and no row lock held while the client is away. A write
        that used a remembered row and found it changed, or refused on it,
        is run again on a fresh read."""
        try:
            return await self._run_guarded_once(work, remembered=True)
        except (GuardFailed, DomainError) as exc:
            if not getattr(exc, "remembered", False):
                raise
        return await self._run_guarded_once(work, remembered=False)

    async def _run_guarded_once(self, work: Work[T], *, remembered: bool) -> T:
        async def once(attempt: Attempt) -> T:
            pool = await self._pools("write")
            attempt.queued = pool.would_wait()
            conn = await pool.acquire(self.settings.db_pool_timeout)
            ex = GuardedExecutor(conn, self.listeners, self.versions, remembered=remembered)
            try:
                attempt.connected = True
                uow = UnitOfWork(ex)
                try:
                    result = await work(uow)
                except DomainError as exc:
                    if ex.used_remembered:  # refused on a remembered row: read it again
                        self._forget(uow, exc)
                    raise
                # The statement may have committed when the connection dies: no retry.
                attempt.committing = True
                await self._guarded_statement(uow, ex)
            except (asyncio.CancelledError, TimeoutError):
                conn.terminate()  # see _run_raw
                raise
            except Exception as exc:
                _drop_if_broken(conn, exc, attempt)
                raise
            finally:
                await pool.release(conn)
            _after_commit(uow)
            return result

        return await self._attempt(once, classify_asyncpg)

    async def _guarded_statement(self, uow: UnitOfWork, ex: GuardedExecutor) -> bool:
        """The guarded unit of work's statement on ``ex``. A failed guard
        forgets the row (and says whether it was a remembered one)."""
        try:
            await uow.late.run_guarded(ex)
            return True
        except GuardFailed as exc:
            self._forget(uow, exc)
            if ex.used_remembered:
                exc.remembered = True  # type: ignore[attr-defined]
            raise

    async def _run(self, engine: AsyncEngine, work: Work[T], *, write: bool) -> T:
        claim = claim_var.get() if write else None
        if claim is not None and (claim.held or claim.taken):
            claim = None  # the key went with an earlier change of this request

        async def once(attempt: Attempt) -> T:
            conn = await engine.connect()
            kept = False
            try:
                attempt.connected = True
                trans = await conn.begin()
                uow = UnitOfWork(SQLAlchemyExecutor(conn))
                result = await work(uow)
                if claim is not None and claim.pending is None and not claim.taken:
                    # The request's Idempotency-Key: inserted as this
                    # transaction's last statement, with the answer when this
                    # is the request's last unit of work (see Claim).
                    claim.pending = _PendingChange(self, claim, conn, uow)
                    kept = True
                    return result
                await uow.late.run(uow.ex)  # the contended rows' locks: until COMMIT only
                # A connection that dies during COMMIT may have committed: no retry.
                attempt.committing = True
                await trans.commit()
            finally:
                if not kept:
                    await conn.close()
            _after_commit(uow)
            return result

        return await self._attempt(once, classify_sqlalchemy)

    def _forget(self, uow: UnitOfWork, exc: Exception) -> None:
        """The row a guarded write read is not to be remembered (it changed,
        or the work refused on it); ``exc`` is marked when it came from memory."""
        guard = uow.late.guard
        if guard is not None:
            self.versions.forget(guard[0])
        if getattr(uow.ex, "used_remembered", False):
            exc.remembered = True  # type: ignore[attr-defined]

    @staticmethod
    async def _settle_pending() -> None:
        """The request goes on using the database: its pending keyed change
        (see Claim) commits first, with the key alone."""
        claim = claim_var.get()
        if claim is not None and claim.pending is not None:
            await claim.pending.settle(None)
            if claim.taken:
                raise Conflict(KEY_IN_PROGRESS)

    async def _attempt(
        self, once: Callable[[Attempt], Awaitable[T]], classify: Callable[[BaseException], Failure]
    ) -> T:
        """Run ``once`` under the breaker, with the unit of work's deadline; a
        dead connection is retried once on a fresh one (the pool drops the
        others), an unreachable database is :class:`Unavailable`."""
        outage = outage_var.get()
        if outage is not None and outage.seen:
            raise Unavailable()  # this request met the outage already: no second wait
        self.breaker.check()
        task = self.deadlines.enter()
        expired = False
        try:
            result = await self._attempts(once, classify)
        except asyncio.CancelledError:
            if task is None or not (expired := self.deadlines.leave(task)):
                raise
            task.uncancel()  # cancelled for its deadline, not by its caller
            self.breaker.failed(unreachable=False)
            if outage is not None:
                outage.seen = True
            log.error("database unavailable: no answer within %ss", self.deadlines.seconds)
            raise Unavailable() from None
        except Unavailable:
            if outage is not None:
                outage.seen = True
            raise
        finally:
            if task is not None and not expired and task in self.deadlines.running:
                self.deadlines.leave(task)
        self.breaker.close()
        return result

    async def _attempts(
        self, once: Callable[[Attempt], Awaitable[T]], classify: Callable[[BaseException], Failure]
    ) -> T:
        for retry in (True, False):
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
                    continue
                slow = failure is Failure.OVERLOADED or (
                    # a timeout on a connection in hand, or waiting for a busy pool
                    isinstance(exc, TimeoutError) and (attempt.connected or attempt.queued)
                )
                self.breaker.failed(unreachable=not slow)
                log.error("database %s: %r", "overloaded" if slow else "unavailable", exc)
                raise Unavailable() from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _raw_pool(self) -> Any:
        return await self._pools("read")

    async def _pools(self, kind: str) -> Any:
        """The raw asyncpg pools: ``read`` (reads, and ``write_one``) and
        ``write`` (guarded writes, which wait for their WAL flush as every
        transaction does)."""
        pool = self._pool if kind == "read" else self._write_pool
        if pool is not None:
            return pool
        async with self._pool_lock:
            pool = self._pool if kind == "read" else self._write_pool
            if pool is None:
                s = self.settings
                settings = {
                    "application_name": f"interview-api-{kind}s",
                    **(PG_SETTINGS if kind == "read" else PG_WRITE_SETTINGS),
                }
                if kind == "read":
                    # Reads write no WAL; the one write here (write_one)
                    # does not wait for its flush (see write_one).
                    settings["synchronous_commit"] = "off"
                pool = FairPool(
                    functools.partial(
                        asyncpg.connect,
                        self.engine.url.set(drivername="postgresql").render_as_string(
                            hide_password=False
                        ),
                        timeout=s.db_connect_timeout,
                        command_timeout=s.db_command_timeout,
                        server_settings=settings,
                        connection_class=ReadConnection if kind == "read" else asyncpg.Connection,
                    ),
                    s.db_pool_size if kind == "read" else s.db_write_pool_size,
                )
                if kind == "read":
                    self._pool = pool
                else:
                    self._write_pool = pool
        return pool

    async def _run_raw(self, work: Work[T], consistent: bool, writable: bool = False) -> T:
        async def once(attempt: Attempt) -> T:
            pool = await self._raw_pool()
            # Waiting needs a deadline (then 503); a free connection does not.
            attempt.queued = pool.would_wait()
            conn = await pool.acquire(self.settings.db_pool_timeout)
            try:
                attempt.connected = True
                # A write's statement may have run when the connection dies: no retry.
                attempt.committing = writable
                uow = UnitOfWork(AsyncpgExecutor(conn, self.listeners, writable=writable))
                try:
                    if not consistent:
                        return await work(uow)
                    await use_plans(conn, False)  # a transaction's statements: custom plans
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        return await work(uow)
                except (asyncio.CancelledError, TimeoutError):
                    # asyncpg prepares a statement with Flush, not Sync: one
                    # cancelled (or timed out) mid-prepare leaves the server in
                    # an implicit transaction the driver cannot see, and the
                    # next reader's BEGIN fails ("SET TRANSACTION ISOLATION
                    # LEVEL must be called before any query"). Such a
                    # connection is closed, never handed to the next reader.
                    conn.terminate()
                    raise
                except Exception as exc:
                    _drop_if_broken(conn, exc, attempt)
                    raise
            finally:
                await pool.release(conn)

        return await self._attempt(once, classify_asyncpg)

    async def ping(self) -> bool:
        async def select_one(uow: Any) -> None:
            await uow.ex.rows(_PING, {})  # this module's UnitOfWork: its executor

        try:
            await self.read(select_one)
        except Unavailable:
            return False
        return True

    async def dispose(self) -> None:
        self.deadlines.stop()
        for name in ("_pool", "_write_pool"):
            pool = getattr(self, name)
            if pool is not None:
                setattr(self, name, None)
                await pool.close()
        await self.engine.dispose()
        if self._inline is not None:
            self._inline.dispose()
        while self._raw_sqlite_free:
            self._raw_sqlite_free.pop().close()


class _PendingChange:
    """A keyed request's change, run and not committed (see :class:`Claim`)."""

    __slots__ = ("claim", "conn", "database", "lock", "uow")

    def __init__(self, database: Database, claim: Claim, conn: AsyncConnection, uow: UnitOfWork):
        self.database = database
        self.claim = claim
        self.conn = conn
        self.uow = uow
        self.lock = asyncio.Lock()  # a GraphQL request's resolvers run concurrently

    async def settle(self, answer: KeyedAnswer | None) -> None:
        claim = self.claim
        async with self.lock:
            if claim.pending is not self:
                return  # settled already

            async def once(attempt: Attempt) -> bool:
                attempt.connected = True
                attempt.committing = True  # the change ran: never retried elsewhere
                keyed = self.uow.idempotency.claim_values(
                    answer or claim.answer, claim.expired_before
                )
                # The contended rows, then the key (one statement on PostgreSQL).
                if not await self.uow.late.run(self.uow.ex, key=keyed):
                    await self.conn.rollback()
                    return False
                await self.conn.commit()
                return True

            try:
                ours = await self.database._attempt(once, classify_sqlalchemy)
            finally:
                claim.pending = None
                await _close(self.conn)
            if ours:
                claim.held = True
                _after_commit(self.uow)
            else:
                claim.taken = True  # another request holds the key: nothing changed

    async def abandon(self) -> None:
        async with self.lock:
            if self.claim.pending is self:
                self.claim.pending = None
                await _close(self.conn)


async def _close(conn: AsyncConnection) -> None:
    """Closing rolls back whatever did not commit."""
    try:
        await conn.close()
    except Exception:
        log.warning("closing a connection failed", exc_info=True)


def _after_commit(uow: UnitOfWork) -> None:
    for callback in uow.committed:
        try:
            callback()
        except Exception:
            log.exception("an after-commit callback failed")


class Attempt:
    """What one try of a unit of work got to: for classifying its failure."""

    __slots__ = ("committing", "connected", "queued")

    def __init__(self) -> None:
        self.committing = False
        self.connected = False  # it held a connection
        self.queued = False  # it waited for a busy pool (no connection attempt)


def _drop_if_broken(conn: Any, exc: Exception, attempt: Attempt) -> None:
    """A raw connection that failed as a dead one is closed, so the pool opens
    a new one for the retry instead of handing the same one back. The driver
    refuses a statement on a connection it knows is broken before sending
    it: then nothing can have committed, and the retry is safe."""
    if classify_asyncpg(exc) is Failure.DISCONNECTED:
        conn.terminate()
        if isinstance(exc, asyncpg.exceptions.InternalClientError):
            attempt.committing = False


_PING: Select[Any] = select(literal_column("1"))


@functools.cache
def _adapt(listener: StatementListener) -> Callable[..., None]:
    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        listener(statement)

    return on_execute
