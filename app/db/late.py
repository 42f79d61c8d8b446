"""The rows written last: what every write of a user updates.

A write changes its own rows (a session, an interaction, a metric), then the
rows that every write of the same user (or session) updates: the analytics
rollups, the user's event sequence and the event (and, for a keyed request,
its ``Idempotency-Key`` with the answer). Those are written as the unit of
work's last statements (:class:`Late`), so the row locks they take are held
until COMMIT only, and always in one order: the rollup rows (a day's row
first, then metric days and question types in key order), then the user's
sequence row, then the key. Every write takes them in that order, so writes
of one user commute and never deadlock.

On PostgreSQL they are one statement: each rollup upsert a data-modifying
CTE, the sequence's upsert reading an aggregate over them (a filter on the
count keeps the planner from dropping it: without it PostgreSQL may take
the sequence row first), the event from the sequence, the key from the
event. A *guarded* write (:func:`guarded_statement`) is one statement for the
whole unit of work: the session row locked FOR SHARE if it still has the
version read, a gate, then the new rows, the rollups and the event, each
only through the gate. Everything here is built with SQLAlchemy (CTEs,
``RETURNING``, upserts, bind parameters named per part), compiled once per
shape.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Text,
    Uuid,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ColumnElement, FromClause

from app.db import rollups
from app.db.executor import Executor
from app.db.models import UTCDateTime
from app.db.models import event_seq_table as seq_t
from app.db.models import events_table as et
from app.db.models import idempotency_table as ik
from app.db.models import sessions_table as st

NOTIFY_CHANNEL = "interview_api_events"
EVENT_COLUMNS = ("user_id", "session_id", "type", "at", "payload")
_ONE: ColumnElement[Any] = literal_column("1")

Part = tuple[str, dict[str, Any]]  # (kind, values)


class GuardFailed(Exception):
    """A session a guarded unit of work read changed (or went) before its
    statement ran: nothing was written."""


Mark = tuple[int, int, int, int, int]


class Late:
    """The last statements of a transaction's units of work (see the module):
    collected while they run, written by :meth:`run` (in a transaction) or
    :meth:`run_guarded` (one statement: the *guarded* form, app/db/postgres.py).

    While ``guarded``, a unit of work's new rows are collected too (written by
    the one statement), and each session it reads share-locked is a guard
    (``guard_session``): written only if that session's row still has the
    version read."""

    __slots__ = (
        "committed",
        "dialect",
        "events",
        "guarded",
        "guards",
        "inserts",
        "last",
        "upserts",
    )

    def __init__(self, dialect: str, committed: list[Callable[[], None]], *, guarded: bool) -> None:
        self.dialect = dialect
        self.committed = committed
        self.upserts: list[Part] = []  # (rollup kind, values), in lock order
        self.events: list[tuple[dict[str, Any], Callable[[int], None] | None]] = []
        self.last: list[tuple[Any, dict[str, Any]]] = []
        self.guarded = guarded
        self.guards: list[tuple[uuid.UUID, str]] = []
        self.inserts: list[Part] = []  # (table name, row)

    # ---------------------------------------------------------------- collecting

    def upsert(self, kind: str, values: dict[str, Any]) -> None:
        """Add to a rollup row (``kind``: see :func:`app.db.rollups.upsert`)."""
        self.upserts.append((kind, values))

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """(guarded) A new row, written with the others."""
        self.inserts.append((table, row))

    def then(self, statement: Any, params: dict[str, Any]) -> None:
        """A statement to run after the others (on the rows they wrote)."""
        self.last.append((statement, params))

    def add_event(self, values: dict[str, Any], committed: Callable[[int], None] | None) -> None:
        self.events.append((values, committed))

    def guard_session(self, session_id: uuid.UUID, version: str) -> None:
        """(guarded) Write only if this session's row is still ``version``."""
        if (session_id, version) not in self.guards:
            self.guards.append((session_id, version))

    def mark(self) -> Mark:
        """What is collected so far (to drop what a unit of work added: ``undo``)."""
        return (
            len(self.upserts),
            len(self.events),
            len(self.last),
            len(self.guards),
            len(self.inserts),
        )

    def undo(self, mark: Mark) -> None:
        del self.upserts[mark[0] :]
        del self.events[mark[1] :]
        del self.last[mark[2] :]
        del self.guards[mark[3] :]
        del self.inserts[mark[4] :]

    def empty(self) -> bool:
        return self.mark() == (0, 0, 0, 0, 0)

    def one_statement(self) -> bool:
        """(guarded) Whether what was collected is one guarded statement: one
        session read, one event, nothing to run after."""
        return len(self.guards) == 1 and len(self.events) == 1 and not self.last

    # ---------------------------------------------------------------- writing

    async def run(self, ex: Executor, key: dict[str, Any] | None = None) -> bool:
        """Write them in the transaction; with ``key`` (an ``Idempotency-Key``'s
        row) last. False, and the caller rolls back, when that key turns out
        to be taken. What was collected while guarded is written first, each
        guard checked (:class:`GuardFailed` when a session changed)."""
        guards, self.guards = self.guards, []
        for session_id, version in guards:
            if not await ex.rows(_GUARD, {"g_id": session_id, "g_version": version}):
                raise GuardFailed()
        inserts, self.inserts = self.inserts, []
        for table, row in inserts:
            await ex.execute(insert(rollups.WRITTEN_TABLES[table]).values(row))
        upserts, self.upserts = self.upserts, []
        events, self.events = self.events, []
        if self.dialect == "postgresql" and len(events) == 1:
            kinds = tuple(kind for kind, _ in upserts)
            params = _prefixed(upserts, "l")
            params.update(events[0][0])
            if key is not None:
                params.update({f"k_{name}": value for name, value in key.items()})
            row = (await ex.rows(late_statement(kinds, key is not None), params))[0]
            if key is not None and not row["claimed"]:
                return False
            self._committed(events[0][1], int(row["seq"]))
        else:
            for kind, values in upserts:
                await ex.execute(rollups.upsert(kind, self.dialect), values)
            for values, committed in events:
                seq = int((await ex.rows(next_seq(self.dialect), values))[0]["seq"])
                await ex.execute(add_event(self.dialect), {**values, "seq": seq})
                self._committed(committed, seq)
            if key is not None and not await ex.rows(claim_key(self.dialect), key):
                return False
        last, self.last = self.last, []
        for statement, values in last:
            await ex.execute(statement, values)
        return True

    async def run_guarded(self, ex: Any, key: dict[str, Any] | None = None) -> bool:
        """(PostgreSQL, ``one_statement``) Everything as one statement outside
        any transaction (it commits on its own), with ``key`` last: False when
        the key is taken; :class:`GuardFailed`, and nothing written, when the
        session's row changed or went."""
        statement = guarded_statement(
            tuple(table for table, _ in self.inserts),
            tuple(kind for kind, _ in self.upserts),
            key is not None,
        )
        params = {**_prefixed(self.inserts, "w"), **_prefixed(self.upserts, "l")}
        [(params["g_id"], params["g_version"])] = self.guards
        if key is not None:
            params.update({f"k_{name}": value for name, value in key.items()})
        values, committed = self.events[0]
        row = (await ex.statement(statement, {**params, **values}))[0]
        if not row["guarded"]:
            raise GuardFailed()
        if key is not None and not row["claimed"]:
            return False
        self._committed(committed, int(row["seq"]))
        return True

    def _committed(self, committed: Callable[[int], None] | None, seq: int) -> None:
        if committed is not None:
            self.committed.append(functools.partial(committed, seq))


def _prefixed(parts: Sequence[Part], letter: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (_kind, values) in enumerate(parts):
        out.update({f"{letter}{i}_{name}": value for name, value in values.items()})
    return out


# ---------------------------------------------------------------- the event


def _event_binds() -> dict[str, Any]:
    return {
        "user_id": bindparam("user_id", type_=String()),
        "session_id": bindparam("session_id", type_=Uuid()),
        "type": bindparam("type", type_=String()),
        "at": bindparam("at", type_=UTCDateTime()),
        "payload": bindparam("payload", type_=JSON().with_variant(JSONB(), "postgresql")),
    }


def _seq_upsert(dialect: str, source: Any = None) -> Any:
    """The user's sequence row: created at 1 or bumped; RETURNING the new seq."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(seq_t)
    if source is None:
        stmt = stmt.values(user_id=bindparam("user_id", type_=String()), seq=1)
    else:
        stmt = stmt.from_select(["user_id", "seq"], source)
    return stmt.on_conflict_do_update(
        index_elements=[seq_t.c.user_id], set_={"seq": seq_t.c.seq + 1}
    ).returning(seq_t.c.seq)


@functools.cache
def next_seq(dialect: str) -> Any:
    """(one event at a time) The user's next seq, locking their row until COMMIT."""
    return _seq_upsert(dialect)


@functools.cache
def add_event(dialect: str) -> Any:
    """(one event at a time) The event row, with the seq :func:`next_seq` gave."""
    binds = _event_binds()
    return insert(et).values(**binds, seq=bindparam("seq", type_=et.c.seq.type))


def _notify(seq: Any) -> ColumnElement[Any]:
    """PostgreSQL's NOTIFY of an event (sent at COMMIT, never for a rollback)."""
    user = bindparam("user_id", type_=String())
    return func.pg_notify(NOTIFY_CHANNEL, cast(seq, Text) + " " + user)


def _event_ctes(parts: Sequence[FromClause], gate: FromClause | None) -> tuple[Any, Any]:
    """The sequence's and the event's CTEs, after ``parts`` (every one of them
    written first: the sequence's insert reads a count over them, kept by a
    filter on it) and, when given, only through ``gate``."""
    values = select(bindparam("user_id", type_=String()), literal(1, Integer))
    if parts:
        written = union_all(*(select(_ONE).select_from(p) for p in parts)).subquery("written")
        done = select(func.count().label("n")).select_from(written).subquery("done")
        values = values.select_from(done).where(done.c.n >= 0)
    if gate is not None:
        values = values.where(exists(select(_ONE).select_from(gate)))
    counter = _seq_upsert("postgresql", values).cte("counter")
    binds = _event_binds()
    row = select(
        binds["user_id"],
        counter.c.seq,
        binds["session_id"],
        binds["type"],
        binds["at"],
        binds["payload"],
    )
    stored = (
        insert(et)
        .from_select(["user_id", "seq", "session_id", "type", "at", "payload"], row)
        .returning(et.c.seq)
        .cte("stored")
    )
    return counter, stored


@functools.lru_cache(maxsize=256)
def late_statement(kinds: tuple[str, ...], keyed: bool) -> Any:
    """(PostgreSQL) A transaction's last statements as one: the rollup upserts
    ``kinds`` (parameters ``l{i}_...``), the sequence, the event and its
    NOTIFY, and with ``keyed`` the key's row after them (parameters ``k_...``:
    it waits for the sequence row, so two requests with one key are
    serialized by it, never deadlocked). Columns ``seq``, ``notified`` and,
    keyed, ``claimed``."""
    parts = [
        rollups.upsert(kind, "postgresql", prefix=f"l{i}_").returning(_ONE).cte(f"l{i}")
        for i, kind in enumerate(kinds)
    ]
    _counter, stored = _event_ctes(parts, None)
    columns = [
        select(stored.c.seq).scalar_subquery().label("seq"),
        select(_notify(stored.c.seq)).select_from(stored).scalar_subquery().label("notified"),
    ]
    if keyed:
        k = claim_key("postgresql", prefix="k_", after=stored).cte("k")
        columns.append(select(func.count()).select_from(k).scalar_subquery().label("claimed"))
    return select(*columns)


@functools.lru_cache(maxsize=64)
def guarded_statement(tables: tuple[str, ...], kinds: tuple[str, ...], keyed: bool) -> Any:
    """(PostgreSQL) A guarded unit of work as one statement (see ``Late.run_guarded``).

    ``g`` locks the session row FOR SHARE if its version (``xmin``) is still
    the one read (a concurrent change waits for it, or it for the change; a
    changed row is re-read at its newest version and fails the test). Each
    new row ``w{i}`` (of ``tables``) and rollup ``l{i}`` (of ``kinds``) is
    written only through the gate; the sequence row is taken after all of
    them (the order every write takes its locks in), and the event after it.
    With ``keyed``, the key's row after the event (see :func:`late_statement`).
    Columns ``guarded`` (0 when the row changed: nothing was written),
    ``seq``, ``notified`` and, keyed, ``claimed``."""
    g = (
        select(_ONE)
        .select_from(st)
        .where(
            st.c.id == bindparam("g_id", type_=Uuid()),
            cast(literal_column("xmin"), Text) == bindparam("g_version", type_=String()),
        )
        .with_for_update(read=True)
        .cte("g")
    )
    gate = select(_ONE).select_from(g).cte("gate")
    parts = [
        _gated_insert(table, f"w{i}_", gate).returning(_ONE).cte(f"w{i}")
        for i, table in enumerate(tables)
    ]
    parts += [
        rollups.upsert(kind, "postgresql", prefix=f"l{i}_", gate=gate).returning(_ONE).cte(f"l{i}")
        for i, kind in enumerate(kinds)
    ]
    _counter, stored = _event_ctes(parts, gate)
    columns = [
        select(func.count()).select_from(g).scalar_subquery().label("guarded"),
        select(stored.c.seq).scalar_subquery().label("seq"),
        select(_notify(stored.c.seq)).select_from(stored).scalar_subquery().label("notified"),
    ]
    if keyed:
        k = claim_key("postgresql", prefix="k_", after=stored).cte("k")
        columns.append(select(func.count()).select_from(k).scalar_subquery().label("claimed"))
    return select(*columns)


# A guard checked in a transaction: the session still has the version read.
_GUARD = (
    select(_ONE)
    .select_from(st)
    .where(
        st.c.id == bindparam("g_id", type_=Uuid()),
        cast(literal_column("xmin"), Text) == bindparam("g_version", type_=String()),
    )
    .with_for_update(read=True)
)


def _gated_insert(name: str, prefix: str, gate: FromClause) -> Any:
    """A new row of a guarded statement: ``INSERT ... SELECT :values WHERE EXISTS gate``."""
    table = rollups.WRITTEN_TABLES[name]
    names = [c.name for c in table.columns]
    values = select(*(bindparam(prefix + c, type_=table.c[c].type) for c in names))
    return insert(table).from_select(names, values.where(exists(select(_ONE).select_from(gate))))


# ---------------------------------------------------------------- the key


@functools.lru_cache(maxsize=64)
def claim_key(dialect: str, *, prefix: str = "", after: FromClause | None = None) -> Any:
    """Insert a key's row, or take over an expired one; RETURNING a row when it
    is ours. ``after``: in a statement, only once that part has a row."""
    names = [c.name for c in ik.columns]
    binds = {c: bindparam(prefix + c, type_=ik.c[c].type) for c in names}
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(ik)
    if after is None:
        stmt = stmt.values(binds)
    else:
        values = select(*binds.values()).where(exists(select(_ONE).select_from(after)))
        stmt = stmt.from_select(names, values)
    expired = bindparam(prefix + "expired_before", type_=UTCDateTime())
    return stmt.on_conflict_do_update(
        index_elements=[ik.c.user_id, ik.c.key],
        set_={c: stmt.excluded[c] for c in names if c not in ("user_id", "key")},
        where=ik.c.created_at < expired,
    ).returning(ik.c.user_id)
