"""SQLite, the embedded default: one file, WAL, one writer at a time.

* **Reads** run on plain ``sqlite3`` connections on the event loop's own
  thread (app/db/executor.py, :class:`RawSqliteExecutor`): an indexed read
  takes tens of microseconds, less than the two thread hops per statement
  of an async driver. Each is one deferred transaction (a WAL snapshot),
  rolled back. A reader never waits on the loop for a lock (busy timeout
  0): the rare read that meets one (a checkpoint resetting the WAL) waits
  a millisecond or more *off* the loop (``asyncio.sleep``) and tries again,
  within the unit of work's deadline.
* **Writes** run in transactions (app/db/transaction.py) on SQLAlchemy's
  aiosqlite connections, begun with ``BEGIN IMMEDIATE`` (SQLAlchemy's
  aiosqlite recipe: never the read-to-write lock upgrade that fails at
  once), with a busy timeout of 30 s for the writers of other processes.

Every connection: WAL, foreign keys on, ``synchronous=NORMAL``.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, event, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.config import ConfigError, Settings
from app.db.executor import RawSqliteExecutor, SQLAlchemyExecutor
from app.db.repositories import UnitOfWork
from app.db.resilience import (
    Attempt,
    Failure,
    Resilience,
    classify_sqlalchemy,
    classify_sqlite,
)
from app.db.transaction import Transaction, in_transaction
from app.domain.ports import Work

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
IDLE_READERS = 8  # plain sqlite3 connections kept for reads
_PING: Select[Any] = select(literal_column("1"))


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def database_path(url: str) -> Path:
    """The file of a ``sqlite+aiosqlite:///path`` URL (an in-memory database
    cannot be shared by the readers' and the writers' connections)."""
    path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    if not path or path.startswith(":memory:"):
        raise ConfigError("DATABASE_URL: SQLite needs a file (sqlite+aiosqlite:///./data/x.db)")
    return Path(path)


def make_engine(settings: Settings) -> AsyncEngine:
    """The writers' engine (SQLAlchemy, aiosqlite); migrations and tools use it too."""
    database_path(settings.database_url).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        settings.database_url,
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
        pool_size=5,
        max_overflow=5,
        pool_timeout=settings.db_pool_timeout,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Stop the driver from issuing its own BEGIN; _on_begin does it below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("write_transaction", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class _Handle:
    """A writer's connection with ``BEGIN IMMEDIATE`` done."""

    __slots__ = ("conn", "executor")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.executor = SQLAlchemyExecutor(conn)

    async def commit(self) -> None:
        await self.conn.commit()

    async def rollback(self) -> None:
        if self.conn.in_transaction():
            await self.conn.rollback()

    async def release(self, *, broken: bool) -> None:
        if broken:
            await self.conn.invalidate()
        await self.conn.close()


class _Connector:
    dialect = "sqlite"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(write_transaction=True)

    def classify(self, exc: BaseException) -> Failure:
        return classify_sqlalchemy(exc)

    async def begin(self, attempt: Attempt) -> _Handle:
        conn = await self.engine.connect()
        try:
            attempt.connected = True
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return _Handle(conn)

    @staticmethod
    def dead(exc: BaseException) -> bool:
        return False  # SQLAlchemy invalidates a connection it finds dead


class SqliteDatabase:
    """Units of work on SQLite (see the module)."""

    dialect = "sqlite"

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.path = database_path(settings.database_url)
        self.engine = engine or make_engine(settings)
        self.listeners: list[Callable[[str], None]] = []
        self.resilience = Resilience(settings.db_breaker_seconds, settings.db_command_timeout)
        self._readers: list[sqlite3.Connection] = []
        self._connector = _Connector(self.engine)

    # ---------------------------------------------------------------- statement listeners

    def add_statement_listener(self, listener: Callable[[str], None]) -> None:
        """Called with the SQL of every statement, reads and writes (tests count them)."""
        self.listeners.append(listener)
        event.listen(self.engine.sync_engine, "before_cursor_execute", _adapt(listener))

    def remove_statement_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.remove(listener)
        event.remove(self.engine.sync_engine, "before_cursor_execute", _adapt(listener))

    # ---------------------------------------------------------------- units of work

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        """(Every read is one snapshot: ``consistent`` or not.)"""

        async def once(attempt: Attempt) -> T:
            attempt.connected = True
            delay = 0.001
            while True:
                try:
                    return await self._read_once(work)
                except _Busy:
                    await asyncio.sleep(delay)  # off the loop; the deadline bounds it
                    delay = min(delay * 2, 0.05)

        return await self.resilience.attempt(once, classify_sqlite)

    async def _read_once(self, work: Work[T]) -> T:
        readers = self._readers
        conn = readers.pop() if readers else self._reader()
        broken = False
        try:
            conn.execute("BEGIN")
            for listener in self.listeners:
                listener("BEGIN")
            result = await work(UnitOfWork(RawSqliteExecutor(conn, self.listeners)))
            conn.execute("ROLLBACK")  # read-only: nothing to commit
            return result
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    broken = True
            if isinstance(exc, sqlite3.OperationalError):
                if _busy(exc) and not broken:
                    raise _Busy() from exc
                broken = True
            raise
        finally:
            if broken or len(readers) >= IDLE_READERS:
                conn.close()
            else:
                readers.append(conn)

    def _reader(self) -> sqlite3.Connection:
        """A reader's connection: autocommit (BEGIN is ours), never waiting for a lock."""
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    async def write(self, work: Work[T]) -> T:
        return await in_transaction(self._connector, self.resilience, work)

    def transaction(self, *, optimistic: bool = True) -> Transaction:
        """A transaction the caller holds (and closes): see app/db/transaction.py.
        (SQLite's are never optimistic: one writer at a time, nothing to gain.)"""
        return Transaction(self._connector, self.resilience)

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
        await self.engine.dispose()
        while self._readers:
            self._readers.pop().close()


class _Busy(Exception):
    """A read met a lock: it is tried again, off the loop."""


@functools.cache
def _adapt(listener: Callable[[str], None]) -> Callable[..., None]:
    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        listener(statement)

    return on_execute
