"""Engine and units of work for both drivers.

SQLite: WAL, foreign keys on and a busy timeout on every connection; we take
control of ``BEGIN`` (SQLAlchemy's aiosqlite recipe) so write transactions start
with ``BEGIN IMMEDIATE`` and never fail on the read-to-write lock upgrade.
PostgreSQL: a pooled asyncpg engine with connect and command timeouts.

A unit of work whose connection turns out to be dead is retried once on a fresh
connection (the pool drops every older connection when it sees a disconnect);
a database that cannot be reached becomes :class:`app.errors.Unavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.config import Settings
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
    """The engine plus transactional units of work, with one retry on a dead connection."""

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.dialect = self.engine.dialect.name
        self._write_engine = self.engine.execution_options(write_transaction=True)

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await self._run(self.engine, work)

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await self._run(self._write_engine, work)

    async def _run(self, engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        for attempt in (1, 2):
            committing = False
            try:
                async with engine.connect() as conn:
                    trans = await conn.begin()
                    result = await work(conn)
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
                    log.warning("database connection lost; retrying once: %s", exc)
                    continue
                log.error("database unavailable: %r", exc)
                raise Unavailable() from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> bool:
        async def select_one(conn: AsyncConnection) -> None:
            await conn.execute(text("SELECT 1"))

        try:
            await self.read(select_one)
        except Unavailable:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


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
