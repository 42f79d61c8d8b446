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
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
from sqlalchemy import Select, event, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.db.executor import AsyncpgExecutor, SQLAlchemyExecutor, StatementListener
from app.db.repositories import UnitOfWork
from app.errors import MODIFIED_CONCURRENTLY, Conflict, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
            "server_settings": {"application_name": "interview-api"},
        },
    )


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Stop the driver from issuing its own BEGIN; _on_begin does it below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("write_transaction", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_unavailable(exc: BaseException) -> bool:
    """Errors that mean "the database is not reachable now", not a bug of ours."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError)


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
        self._pool_lock = asyncio.Lock()
        self.raw_reads = self.dialect == "postgresql"

    # ---------------------------------------------------------------- statement listeners

    def add_statement_listener(self, listener: StatementListener) -> None:
        """Called with the SQL of every statement, on both paths (tests count them)."""
        self.listeners.append(listener)
        event.listen(self.engine.sync_engine, "before_cursor_execute", _adapt(listener))

    def remove_statement_listener(self, listener: StatementListener) -> None:
        self.listeners.remove(listener)
        event.remove(self.engine.sync_engine, "before_cursor_execute", _adapt(listener))

    # ---------------------------------------------------------------- units of work

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        if self.raw_reads:
            return await self._run_raw(work, consistent)
        return await self._run(self.engine, work)

    async def write(self, work: Work[T]) -> T:
        return await self._run(self._write_engine, work)

    async def _run(self, engine: AsyncEngine, work: Work[T]) -> T:
        for attempt in (1, 2):
            committing = False
            try:
                async with engine.connect() as conn:
                    trans = await conn.begin()
                    result = await work(UnitOfWork(SQLAlchemyExecutor(conn)))
                    committing = True
                    await trans.commit()
                    return result
            except Exception as exc:
                if _is_conflict(exc):
                    raise Conflict(MODIFIED_CONCURRENTLY) from exc
                if not is_unavailable(exc):
                    raise
                # A connection that died before COMMIT changed nothing: retry once.
                if attempt == 1 and not committing and _is_disconnect(exc):
                    log.warning("database connection lost; retrying once: %r", exc)
                    continue
                log.error("database unavailable: %r", exc)
                raise Unavailable() from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _raw_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    s = self.settings
                    self._pool = await asyncpg.create_pool(
                        self.engine.url.set(drivername="postgresql").render_as_string(
                            hide_password=False
                        ),
                        min_size=1,
                        max_size=s.db_pool_size,
                        timeout=s.db_connect_timeout,
                        command_timeout=s.db_command_timeout,
                        server_settings={"application_name": "interview-api-reads"},
                        # Reads never change session state: skip asyncpg's reset
                        # query (a round trip) when a connection goes back.
                        reset=_keep_connection_state,
                    )
        return self._pool

    async def _run_raw(self, work: Work[T], consistent: bool) -> T:
        for attempt in (1, 2):
            try:
                pool = await self._raw_pool()
                # Waiting needs a deadline (then 503); an idle connection does not,
                # and skipping the timer saves real time on every read.
                timeout = None if pool.get_idle_size() else self.settings.db_pool_timeout
                async with pool.acquire(timeout=timeout) as conn:
                    uow = UnitOfWork(AsyncpgExecutor(conn, self.listeners))
                    if not consistent:
                        return await work(uow)
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        return await work(uow)
            except Exception as exc:
                if not _raw_unavailable(exc):
                    raise
                if attempt == 1 and _raw_disconnect(exc):
                    log.warning("database connection lost; retrying once: %r", exc)
                    continue
                log.error("database unavailable: %r", exc)
                raise Unavailable() from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> bool:
        async def select_one(uow: UnitOfWork) -> None:
            await uow.ex.rows(_PING, {})

        try:
            await self.read(select_one)
        except Unavailable:
            return False
        return True

    async def dispose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        await self.engine.dispose()


Work = Callable[[UnitOfWork], Awaitable[T]]


async def _keep_connection_state(conn: Any) -> None:
    return None


_PING: Select[Any] = select(literal_column("1"))


@functools.cache
def _adapt(listener: StatementListener) -> Callable[..., None]:
    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        listener(statement)

    return on_execute


def _raw_unavailable(exc: BaseException) -> bool:
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.QueryCanceledError
        | asyncpg.exceptions.TooManyConnectionsError,
    )


def _raw_disconnect(exc: BaseException) -> bool:
    return isinstance(
        exc,
        ConnectionError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError,
    )


def _is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, ConnectionError)


def _is_conflict(exc: BaseException) -> bool:
    """Serialization failure or deadlock: the request lost a race."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(
        getattr(getattr(exc, "orig", None), "__cause__", None), "sqlstate", None
    )
    return code in {"40001", "40P01"}
