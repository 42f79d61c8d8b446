"""Running SQLAlchemy Core statements on a connection: the executors.

Every PostgreSQL statement runs on a raw asyncpg connection
(:class:`AsyncpgExecutor`, :class:`GuardedExecutor`), the Core statement
compiled once to SQL text and prepared by asyncpg. SQLite's reads run on
plain ``sqlite3`` connections (:class:`RawSqliteExecutor`), its writes on
SQLAlchemy's aiosqlite connection (:class:`SQLAlchemyExecutor`). Each
reports its statements to the database's listeners (tests count them).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import msgspec
from asyncpg.pgproto.pgproto import UUID as FastUUID
from sqlalchemy import JSON, Select, TextClause, Uuid
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.types import TupleType

from app import tracing
from app.db.models import UTCDateTime

StatementListener = Callable[[str], None]
_PG_DIALECT = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
_SQLITE_DIALECT = sqlite.pysqlite.dialect()  # type: ignore[no-untyped-call]


class Executor(Protocol):
    dialect: str

    async def rows(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]: ...

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> None: ...


class SQLAlchemyExecutor:
    """SQLite's writes, on SQLAlchemy's aiosqlite connection (app/db/sqlite.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    async def rows(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]:
        # Mappings: rows are read by column name, never by position.
        if tracing.enabled:
            with tracing.statement(self.dialect, self._sql(stmt)):
                return (await self.conn.execute(stmt, params)).mappings().all()
        return (await self.conn.execute(stmt, params)).mappings().all()

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> None:
        if tracing.enabled:
            with tracing.statement(self.dialect, self._sql(stmt)):
                await self.conn.execute(stmt, params or {})
            return
        await self.conn.execute(stmt, params or {})

    def _sql(self, stmt: Executable) -> str:
        return str(stmt.compile(dialect=self.conn.dialect))  # type: ignore[attr-defined]


GENERIC_PLANS = "generic_plans"
_SET_PLANS = {
    True: "SET plan_cache_mode = auto",
    False: "SET plan_cache_mode = force_custom_plan",
}


class ReadConnection(asyncpg.Connection):  # type: ignore[misc]
    """A raw read connection that knows its ``plan_cache_mode``: opened with
    custom plans for every statement (``False``); ``True`` after a statement
    marked ``generic_plans`` switched it to PostgreSQL's own choice."""

    generic_plans = False


async def use_plans(conn: Any, generic: bool) -> None:
    """Put a read connection in the plan mode a statement wants (one round
    trip when it changes; outside a transaction only, where SET lasts)."""
    if isinstance(conn, ReadConnection) and conn.generic_plans is not generic:
        await conn.execute(_SET_PLANS[generic])
        conn.generic_plans = generic


class CompiledStatement:
    __slots__ = ("defaults", "generic_plans", "json_names", "names", "sql")

    def __init__(self, stmt: ClauseElement) -> None:
        # Statements that reach their rows by key only (a session by its id
        # and user: one row, whatever the user) may keep generic plans:
        # ``.execution_options(generic_plans=True)``. Planning the largest of
        # them (a session's details written as JSON) was a third of
        # PostgreSQL's CPU per call. Every other statement is planned for its
        # parameters (see app.db.engine.PG_SETTINGS).
        options = stmt.get_execution_options() if isinstance(stmt, Executable) else {}
        self.generic_plans: bool = bool(options.get(GENERIC_PLANS, False))
        compiled = stmt.compile(dialect=_PG_DIALECT)
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())
        # Values fixed inside the statement (a JSON key, a literal) travel as
        # parameters too; keep them to fill the positions the caller does not.
        self.defaults: dict[str, Any] = dict(compiled.params)
        # asyncpg takes JSON parameters as text (the raw pool sets no codec).
        self.json_names = frozenset(
            name
            for name, bind in getattr(compiled, "binds", {}).items()
            if isinstance(bind.type, JSON)
        )

    def args(self, params: dict[str, Any]) -> list[Any]:
        values = [params[n] if n in params else self.defaults[n] for n in self.names]
        if self.json_names:
            for i, name in enumerate(self.names):
                if name in self.json_names and values[i] is not None:
                    values[i] = msgspec.json.encode(values[i]).decode()
        return values


STATEMENT_CACHE_SIZE = 256
_compiled: OrderedDict[int, tuple[ClauseElement, CompiledStatement]] = OrderedDict()


def compiled_for_asyncpg(stmt: ClauseElement) -> CompiledStatement:
    """Compile once per statement object (statements are built once and cached).

    Bounded (least recently used out): a statement built per request by
    mistake costs a compile each time, never memory without end. asyncpg's
    own prepared-statement cache is bounded per connection as well.
    """
    key = id(stmt)
    entry = _compiled.get(key)
    if entry is None or entry[0] is not stmt:
        entry = (stmt, CompiledStatement(stmt))
        _compiled[key] = entry
        if len(_compiled) > STATEMENT_CACHE_SIZE:
            _compiled.popitem(last=False)
    else:
        _compiled.move_to_end(key)
    return entry[1]


class AsyncpgExecutor:
    """Runs compiled Core statements on a raw asyncpg connection: reads, and
    with ``writable``, a transaction's statements (app/db/transaction.py)."""

    dialect = "postgresql"

    def __init__(
        self, conn: Any, listeners: list[StatementListener], *, writable: bool = False
    ) -> None:
        self.conn = conn
        self.listeners = listeners
        self.writable = writable

    async def rows(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]:
        c = compiled_for_asyncpg(stmt)  # type: ignore[arg-type]
        conn = self.conn
        # Inside a transaction (a consistent read, begun with custom plans)
        # the mode stays: a SET there would be undone by a rollback.
        if (
            c.generic_plans is not getattr(conn, "generic_plans", False)
            and not conn.is_in_transaction()
        ):
            await use_plans(conn, c.generic_plans)
        for listener in self.listeners:
            listener(c.sql)
        result: Sequence[Any]
        if tracing.enabled:
            with tracing.statement("postgresql", c.sql):
                result = await conn.fetch(c.sql, *c.args(params))
            return result
        result = await conn.fetch(c.sql, *c.args(params))
        return result

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> None:
        if not self.writable:
            raise TypeError("the asyncpg read path does not write")
        c = compiled_for_asyncpg(stmt)  # type: ignore[arg-type]
        for listener in self.listeners:
            listener(c.sql)
        if tracing.enabled:
            with tracing.statement("postgresql", c.sql):
                await self.conn.execute(c.sql, *c.args(params or {}))
            return
        await self.conn.execute(c.sql, *c.args(params or {}))


class NotGuardable(Exception):
    """A guarded unit of work did what one guarded statement cannot: a write
    of its own, a row lock, a statement that is not a plain read. It is run
    again as an ordinary transaction (nothing was written)."""


# Marks the statements a guarded unit of work may read (``execution_options``).
GUARDED_READ = "guarded_read"


class RowVersions:
    """Session rows that guarded writes read lately, with their versions
    (bounded, each kept ``seconds``): a guarded write of a session written
    lately runs no read at all, one statement. Never trusted: the statement
    writes only if the row still has that version; a changed row is forgotten
    and the write runs as a transaction. (What a write refuses on, the
    session's owner and its completion, never changes back: a refusal on a
    remembered row is the refusal a fresh read gives.)"""

    def __init__(self, size: int = 10_000, seconds: float = 30.0) -> None:
        self.size = size
        self.seconds = seconds
        self.rows: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any:
        entry = self.rows.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.seconds:
            del self.rows[key]
            return None
        return entry[1]

    def put(self, key: Any, row: Any) -> None:
        self.rows[key] = (time.monotonic(), row)
        self.rows.move_to_end(key)
        if len(self.rows) > self.size:
            self.rows.popitem(last=False)

    def forget(self, key: Any) -> None:
        self.rows.pop(key, None)


class GuardedExecutor:
    """The reads of a guarded unit of work (app/db/postgres.py) on a write
    connection outside any transaction: only the reads marked for it (a
    session with its version), no row lock. Its writes are collected by the
    unit of work (app/db/late.py) into one statement, run by
    :meth:`statement` in an implicit transaction of its own, which writes
    only if the rows the reads named are unchanged. Its connection is taken
    at its first statement (a unit of work that is not guardable is refused
    before it needs one) and given back by :meth:`release`."""

    dialect = "postgresql"
    guarded = True

    def __init__(
        self,
        pool: Any,
        timeout: float,
        listeners: list[StatementListener],
        versions: RowVersions,
    ) -> None:
        self.pool = pool
        self.timeout = timeout
        self.listeners = listeners
        self.versions = versions
        self.attempt: Any = None  # the try it runs in (app/db/resilience.py)
        self.conn: Any = None
        self.used_remembered: list[Any] = []  # sessions read from ``versions``
        self.fresh = False  # read every row (a refusal on a remembered one is checked)

    def remembered(self, key: Any) -> Any:
        """A session read lately (its row, with its version), or None."""
        row = None if self.fresh else self.versions.get(key)
        if row is not None:
            self.used_remembered.append(key)
        return row

    async def _executor(self) -> AsyncpgExecutor:
        if self.conn is None:
            if self.attempt is not None:
                self.attempt.queued = self.pool.would_wait()
            self.conn = await self.pool.acquire(self.timeout)
            if self.attempt is not None:
                self.attempt.connected = True
        return AsyncpgExecutor(self.conn, self.listeners, writable=True)

    async def rows(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]:
        # Only reads marked for it (a session with its version): any other
        # statement, a lock or a write above all, runs in a transaction.
        if not stmt.get_execution_options().get(GUARDED_READ, False):
            raise NotGuardable(f"not a guarded read: {type(stmt).__name__}")
        return await (await self._executor()).rows(stmt, params)

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> None:
        raise NotGuardable("a write outside the guarded statement")

    async def statement(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]:
        """The one writing statement."""
        return await (await self._executor()).rows(stmt, params)

    def take(self) -> Any:
        """Its connection, handed on (a transaction begins on it), or None."""
        conn, self.conn = self.conn, None
        return conn

    async def release(self, *, broken: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            if broken:
                conn.terminate()
            await self.pool.release(conn)


# ---------------------------------------------------------------- SQLite reads, raw


class NotRaw(Exception):
    """A statement the raw SQLite path does not run (not a plain SELECT): the
    unit of work runs on the SQLAlchemy connection instead."""


def _utc_from_sqlite(value: Any) -> Any:
    """A timestamp as SQLAlchemy stores it on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``,
    UTC), as the aware datetime UTCDateTime reads back (``tzinfo`` is ``UTC``;
    parsed with its offset, which is several times cheaper than ``replace``)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")
    except (ValueError, TypeError):  # written some other way: the general reading
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _uuid_from_sqlite(value: Any) -> Any:
    """SQLAlchemy's Uuid on SQLite (32 hex digits) as the UUID the asyncpg path
    reads (asyncpg's C subclass of uuid.UUID: equal, hashed and written alike)."""
    return None if value is None else FastUUID(value)


def _row_reader(keys: tuple[str, ...], readers: list[Any]) -> Any:
    """One function from a row (a tuple) to its mapping, each column through
    its reader (none for NULL): generated once per statement."""
    scope: dict[str, Any] = {"_uuid": FastUUID}
    items = []
    for n, (key, read) in enumerate(zip(keys, readers, strict=True)):
        if read is None:
            items.append(f"{key!r}: row[{n}]")
            continue
        name = "_uuid" if read is _uuid_from_sqlite else f"_r{n}"
        scope[name] = read
        items.append(f"{key!r}: (None if (v := row[{n}]) is None else {name}(v))")
    source = f"def read(row):\n    return {{{', '.join(items)}}}\n"
    # Keys are the statement's own column names, repr-quoted.
    exec(compile(source, "<sqlite row reader>", "exec"), scope)  # noqa: S102
    return scope["read"]


class SqliteStatement:
    """A SELECT compiled once for the pysqlite dialect: its SQL, the bind
    parameters in order with SQLAlchemy's own bind processors, and a reader
    per result column (SQLAlchemy's result processors, except JSON, kept as
    text as on the raw asyncpg path, and UTC timestamps, parsed directly)."""

    __slots__ = (
        "compiled",
        "defaults",
        "expanded",
        "expanding",
        "keys",
        "names",
        "processors",
        "read",
        "sql",
    )

    def __init__(self, stmt: ClauseElement) -> None:
        if not isinstance(stmt, Select | TextClause):
            raise NotRaw(type(stmt).__name__)
        compiled = stmt.compile(dialect=_SQLITE_DIALECT)
        self.compiled = compiled
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults: dict[str, Any] = dict(compiled.params)
        dialect = _SQLITE_DIALECT
        self.processors: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process
        expanding = [b for b in compiled.binds.values() if b.expanding]
        if any(isinstance(b.type, TupleType) for b in expanding):
            raise NotRaw("a tuple IN")
        self.expanding = frozenset(b.key for b in expanding)
        # The SQL for each count of values in the expanding (IN) parameters.
        self.expanded: dict[tuple[int, ...], str] = {}
        columns = list(stmt.selected_columns) if isinstance(stmt, Select) else []
        self.keys: tuple[str, ...] = tuple(str(c.key) for c in columns)
        readers: list[Any] = []
        for column in columns:
            kind = column.type
            if isinstance(kind, UTCDateTime):
                readers.append(_utc_from_sqlite)
            elif isinstance(kind, Uuid) and kind.as_uuid:
                readers.append(_uuid_from_sqlite)
            elif isinstance(kind, JSON) or isinstance(getattr(kind, "impl", None), JSON):
                readers.append(None)
            else:
                readers.append(kind.dialect_impl(dialect).result_processor(dialect, None))
        self.read = _row_reader(self.keys, readers) if self.keys else None

    def bound(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The SQL and its positional values for ``params``."""
        names, processors, defaults, expanding = (
            self.names,
            self.processors,
            self.defaults,
            self.expanding,
        )
        sql = self.sql
        if expanding:
            # SQLAlchemy's expanded state costs more than the rest of a small
            # read; only its SQL depends on the values (on how many there
            # are), so that is kept per count and the values bound here, in
            # the order of the parameters (an expanding one: its values in
            # turn), each through its type's processor.
            counts = tuple(
                len(params[n] if n in params else defaults[n]) for n in names if n in expanding
            )
            found = self.expanded.get(counts)
            if found is None:
                found = self.compiled.construct_expanded_state(params).statement
                if len(self.expanded) < 64:
                    self.expanded[counts] = found
            sql = found
        out: list[Any] = []
        for name in names:
            value = params[name] if name in params else defaults[name]
            process = processors.get(name)
            if name in expanding:
                out.extend(v if process is None or v is None else process(v) for v in value)
            else:
                out.append(value if process is None or value is None else process(value))
        return sql, out


_sqlite_compiled: OrderedDict[int, tuple[ClauseElement, SqliteStatement | None]] = OrderedDict()


def compiled_for_sqlite(stmt: ClauseElement) -> SqliteStatement:
    """As :func:`compiled_for_asyncpg`, for the raw SQLite path (NotRaw for a
    statement it does not run, remembered as such)."""
    key = id(stmt)
    entry = _sqlite_compiled.get(key)
    if entry is None or entry[0] is not stmt:
        try:
            compiled: SqliteStatement | None = SqliteStatement(stmt)
        except NotRaw:
            compiled = None
        entry = (stmt, compiled)
        _sqlite_compiled[key] = entry
        if len(_sqlite_compiled) > STATEMENT_CACHE_SIZE:
            _sqlite_compiled.popitem(last=False)
    else:
        _sqlite_compiled.move_to_end(key)
    if entry[1] is None:
        raise NotRaw("not a plain SELECT")
    return entry[1]


class RawSqliteExecutor:
    """SQLite reads on a plain ``sqlite3`` connection from the event loop's
    thread (app/db/sqlite.py): the statements compiled once, run with
    ``execute``, the rows read into mappings. What SQLAlchemy's connection,
    transaction and result objects cost per statement (two thirds of a list
    request) is left out; the answers are the same (tests/db/test_sqlite_raw.py)."""

    dialect = "sqlite"

    def __init__(self, conn: Any, listeners: list[StatementListener]) -> None:
        self.conn = conn
        self.listeners = listeners

    async def rows(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]:
        c = compiled_for_sqlite(stmt)  # type: ignore[arg-type]
        sql, values = c.bound(params)
        for listener in self.listeners:
            listener(sql)
        if tracing.enabled:
            with tracing.statement("sqlite", sql):
                cursor = self.conn.execute(sql, values)
        else:
            cursor = self.conn.execute(sql, values)
        found = cursor.fetchall()
        if c.read is not None:
            read = c.read
            return [read(row) for row in found]
        # A text() statement: its columns as the database names them.
        keys = tuple(d[0] for d in cursor.description or ())
        return [dict(zip(keys, row, strict=True)) for row in found]

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> None:
        raise NotRaw("the raw SQLite path reads only")
