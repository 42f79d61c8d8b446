"""Analytics rollups: what analytics read instead of every interaction and metric.

Three tables (see :mod:`app.db.models`), keyed by user and the UTC day of the
*session's* creation, the unit the analytics window selects by:

* ``analytics_days``: sessions created that day, how many of them completed
  and the sum of their durations in whole microseconds;
* ``analytics_metric_days``: for each day metrics were recorded, their count
  and the sums and counts of latency, accuracy and satisfaction;
* ``analytics_question_types``: classified interactions by type.

They are kept in the transaction of each change, by the repositories:
creating a session, completing it, adding an interaction or a metric adds to
one row (an upsert, so concurrent writers never lose an increment); deleting
a session subtracts its share the same way (:func:`remove_session`), so a
delete commutes with every other write, and drops the rows left counting
nothing. :func:`rebuild_statements` recomputes them from scratch (migration
0004, bulk loads). Analytics then aggregate a few rows per day: a
user's two years of sessions are about 730 rows, whatever the row counts.

Means are ``sum / count`` computed by the database; sums of integers are
exact, accuracy is a sum of doubles (the same to ~1e-15 as the mean of the
rows).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Float,
    Insert,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    extract,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import FromClause

from app.db.executor import Executor
from app.db.models import analytics_days_table as days
from app.db.models import analytics_metric_days_table as metric_days
from app.db.models import analytics_types_table as types
from app.db.models import interactions_table as it
from app.db.models import metrics_table as mt
from app.db.models import sessions_table as st
from app.domain.records import Metric, Session, SessionStatus

COMPLETED = SessionStatus.COMPLETED.value
TABLES = (days, metric_days, types)


def utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def day_of(dialect: str, col: Any) -> ColumnElement[Any]:
    """The UTC day of a stored timestamp, as a DATE (text ``YYYY-MM-DD`` on SQLite)."""
    if dialect == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), col), Date)
    return func.date(col)


def _sqlite_epoch_us(col: Any) -> ColumnElement[Any]:
    """Microseconds since the epoch of a timestamp stored by SQLAlchemy on SQLite
    (``YYYY-MM-DD HH:MM:SS.ffffff`` UTC: whole seconds, then six fraction digits)."""
    seconds = cast(func.strftime(literal_column("'%s'"), col), Integer)
    micros = cast(func.substr(col, 21, 6), Integer)
    return seconds * 1_000_000 + micros


def duration_us(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(extract("epoch", end - start) * 1_000_000, BigInteger)
    return _sqlite_epoch_us(end) - _sqlite_epoch_us(start)


def _on_conflict(table: Any, keys: tuple[str, ...], sums: tuple[str, ...], stmt: Any) -> Any:
    def added(c: str) -> Any:
        total = table.c[c] + stmt.excluded[c]
        if c == "accuracy_sum":
            # A sum of doubles that a removal brings back to no values is 0
            # exactly, not the residue of adding and subtracting them.
            return case((table.c.accuracy_n + stmt.excluded.accuracy_n == 0, 0.0), else_=total)
        return total

    return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: added(c) for c in sums})


_DAY_SUMS = ("sessions", "completed", "duration_us")
_METRIC_SUMS = (
    "metrics",
    "latency_sum",
    "latency_n",
    "accuracy_sum",
    "accuracy_n",
    "satisfaction_sum",
    "satisfaction_n",
)
# kind -> (table, key columns, summed columns)
_ROWS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    "day": (days, ("user_id", "day"), _DAY_SUMS),
    "metric_day": (metric_days, ("user_id", "day", "metric_day"), _METRIC_SUMS),
    "type_day": (types, ("user_id", "day", "question_type"), ("interactions",)),
}
# The tables of the rows a guarded write adds (app.db.late).
WRITTEN_TABLES = {t.name: t for t in (it, mt)}


def upsert(kind: str, dialect: str, *, prefix: str = "", gate: FromClause | None = None) -> Insert:
    """The rollup upsert of ``kind``, its bind parameters named ``prefix`` +
    the column (so several are parts of one statement: app.db.late):

    * ``day``, ``metric_day``, ``type_day``: a row's counters plus the given
      values, every key given (negative values take a deleted session out);
    * ``question_type``: one more classified interaction in its session's
      day (``session_id``, ``question_type``);
    * ``metric``: one more metric in its session's day, on the metric's own
      day (``session_id``, ``metric_day`` and the sums of
      :func:`metric_values`).

    ``gate`` (a guarded statement's): only when it has a row. Plain ones
    (no prefix, no gate) are built once."""
    if not prefix and gate is None:
        return _plain(kind, dialect)
    return _build(kind, dialect, prefix, gate)


@functools.cache
def _plain(kind: str, dialect: str) -> Insert:
    return _build(kind, dialect, "", None)


def _build(kind: str, dialect: str, prefix: str, gate: FromClause | None) -> Insert:
    def bind(name: str, table: Any) -> Any:
        return bindparam(prefix + name, type_=table.c[name].type)

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if kind in _ROWS:
        table, keys, sums = _ROWS[kind]
        if gate is not None:
            raise ValueError(f"a {kind} row is not written by a guarded statement")
        stmt = insert(table).values({c: bind(c, table) for c in (*keys, *sums)})
        return _on_conflict(table, keys, sums, stmt)  # type: ignore[no-any-return]
    # The session's user and day, read from its row in the same statement.
    if kind == "question_type":
        table, keys, sums = _ROWS["type_day"]
        own = [bind("question_type", table), literal(1, Integer)]
    elif kind == "metric":
        table, keys, sums = _ROWS["metric_day"]
        own = [bind("metric_day", table), literal(1, Integer)]
        own += [bind(name, table) for name in _METRIC_SUMS[1:]]  # metrics is the 1 above
    else:
        raise ValueError(f"no rollup {kind!r}")
    source = select(st.c.user_id, day_of(dialect, st.c.created_at), *own).where(
        st.c.id == bindparam(prefix + "session_id", type_=st.c.id.type)
    )
    if gate is not None:
        source = source.where(exists(select(literal_column("1")).select_from(gate)))
    stmt = insert(table).from_select([*keys, *sums], source)
    return _on_conflict(table, keys, sums, stmt)  # type: ignore[no-any-return]


def day_values(s: Session) -> dict[str, Any]:
    """``day``'s values of a new session (and of a session taken out: negated)."""
    done = s.status is SessionStatus.COMPLETED and s.ended_at is not None
    return {
        "user_id": s.user_id,
        "day": utc_day(s.created_at),
        "sessions": 1,
        "completed": int(done),
        "duration_us": _micros(s) if done else 0,
    }


def _micros(s: Session) -> int:
    assert s.ended_at is not None
    delta = s.ended_at - s.started_at
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@functools.cache
def complete_day(dialect: str) -> Insert:
    """Count a session as completed, unless its stored row already is.

    Runs before the row is updated (the caller holds its lock), reading the
    stored status, so completing twice or saving a completed session again
    never counts it twice.
    """
    table, keys, sums = _ROWS["day"]
    source = select(
        st.c.user_id,
        day_of(dialect, st.c.created_at),
        literal(0, Integer),
        literal(1, Integer),
        bindparam("duration_us", type_=BigInteger),
    ).where(st.c.id == bindparam("id"), st.c.status != COMPLETED)
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return _on_conflict(table, keys, sums, stmt.from_select([*keys, *sums], source))  # type: ignore[no-any-return]


def complete_values(s: Session) -> dict[str, Any]:
    return {"id": s.id, "duration_us": _micros(s)}


def question_type_values(session_id: Any, question_type: str) -> dict[str, Any]:
    return {"session_id": session_id, "question_type": question_type}


def metric_values(m: Metric) -> dict[str, Any]:
    """``metric``'s values of a new metric."""

    def part(value: Any, zero: Any) -> tuple[Any, int]:
        return (zero, 0) if value is None else (value, 1)

    latency, latency_n = part(m.total_latency_ms, 0)
    accuracy, accuracy_n = part(m.transcription_accuracy, 0.0)
    satisfaction, satisfaction_n = part(m.user_satisfaction, 0)
    return {
        "session_id": m.session_id,
        "metric_day": utc_day(m.created_at),
        "latency_sum": latency,
        "latency_n": latency_n,
        "accuracy_sum": float(accuracy),
        "accuracy_n": accuracy_n,
        "satisfaction_sum": satisfaction,
        "satisfaction_n": satisfaction_n,
    }


# ------------------------------------------------------------- removing a session


@functools.cache
def session_share(dialect: str) -> tuple[Select[Any], Select[Any]]:
    """What one session adds to its day's rollups: its metrics by metric day,
    and its classified interactions by type (``id``), in key order."""
    metric_day = day_of(dialect, mt.c.created_at).label("metric_day")

    def summed(col: Any, zero: Any, name: str) -> tuple[Any, Any]:
        return (
            func.coalesce(func.sum(col), zero).label(f"{name}_sum"),
            func.count(col).label(f"{name}_n"),
        )

    metrics = (
        select(
            metric_day,
            func.count().label("metrics"),
            *summed(mt.c.total_latency_ms, 0, "latency"),
            *summed(mt.c.transcription_accuracy, 0.0, "accuracy"),
            *summed(mt.c.user_satisfaction, 0, "satisfaction"),
        )
        .where(mt.c.session_id == bindparam("id"))
        .group_by(literal_column("metric_day"))
        .order_by(literal_column("metric_day"))
    )
    by_type = (
        select(it.c.question_type, func.count().label("interactions"))
        .where(it.c.session_id == bindparam("id"), it.c.question_type.is_not(None))
        .group_by(it.c.question_type)
        .order_by(it.c.question_type)
    )
    return metrics, by_type


def removed_day_values(s: Session) -> dict[str, Any]:
    """``day``'s values that take session ``s`` (as stored) out of its day."""
    return {k: -v if k in _DAY_SUMS else v for k, v in day_values(s).items()}


@functools.cache
def drop_empty() -> tuple[Any, ...]:
    """Rows of one user's day that count nothing any more (``user_id``, ``day``):
    gone, as a rebuild would have none. Only rows the transaction has just
    decremented (and holds locked) can be empty."""
    return tuple(
        delete(table).where(
            table.c.user_id == bindparam("user_id"),
            table.c.day == bindparam("day"),
            count == 0,
        )
        for table, count in (
            (days, days.c.sessions),
            (metric_days, metric_days.c.metrics),
            (types, types.c.interactions),
        )
    )


async def remove_session(ex: Executor, late: Any, s: Session) -> None:
    """Take session ``s`` (as stored, locked by the caller) out of the rollups:
    its share is read now (its rows are still there; nothing can be added to
    a session locked for update), and subtracted with the change's last
    statements (``late``, app.db.late), as every other write adds: the day's
    row, then its metric days and question types in key order, then the
    user's sequence row, so a delete commutes with every other write of the
    user. Rows left counting nothing are dropped after them."""
    day = utc_day(s.created_at)
    keys = {"user_id": s.user_id, "day": day}
    late.upsert("day", removed_day_values(s))
    metrics, by_type = session_share(ex.dialect)
    for row in await ex.rows(metrics, {"id": s.id}):
        values = {**keys, "metric_day": _as_date(row["metric_day"])}
        values.update({name: -(row[name]) for name in _METRIC_SUMS})
        late.upsert("metric_day", values)
    for row in await ex.rows(by_type, {"id": s.id}):
        late.upsert(
            "type_day",
            {**keys, "question_type": row["question_type"], "interactions": -row["interactions"]},
        )
    for stmt in drop_empty():
        late.then(stmt, keys)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# ------------------------------------------------------------- rebuilding


@functools.cache
def rebuild_statements(dialect: str) -> tuple[Any, ...]:
    """Statements that rebuild the rollups from the rows, from scratch (a
    migration, a bulk load, the tests' reference)."""
    clear = [delete(table) for table in TABLES]
    day = day_of(dialect, st.c.created_at).label("day")
    done = and_(st.c.status == COMPLETED, st.c.ended_at.is_not(None))
    day_rows = select(
        st.c.user_id,
        day,
        func.count(),
        func.sum(case((done, 1), else_=0)),
        func.coalesce(
            func.sum(case((done, duration_us(dialect, st.c.started_at, st.c.ended_at)))),
            0,
        ),
    ).group_by(st.c.user_id, literal_column("day"))

    def summed(col: Any, zero: Any) -> tuple[Any, Any]:
        return func.coalesce(func.sum(col), zero), func.count(col)

    metric_day = day_of(dialect, mt.c.created_at).label("metric_day")
    metric_rows = (
        select(
            st.c.user_id,
            day,
            metric_day,
            func.count(),
            *summed(mt.c.total_latency_ms, 0),
            *summed(mt.c.transcription_accuracy, 0.0),
            *summed(mt.c.user_satisfaction, 0),
        )
        .select_from(mt.join(st, st.c.id == mt.c.session_id))
        .group_by(st.c.user_id, literal_column("day"), literal_column("metric_day"))
    )
    type_rows = (
        select(st.c.user_id, day, it.c.question_type, func.count())
        .select_from(it.join(st, st.c.id == it.c.session_id))
        .where(it.c.question_type.is_not(None))
        .group_by(st.c.user_id, literal_column("day"), it.c.question_type)
    )
    fill = (
        days.insert().from_select(["user_id", "day", *_DAY_SUMS], day_rows),
        metric_days.insert().from_select(
            ["user_id", "day", "metric_day", *_METRIC_SUMS], metric_rows
        ),
        types.insert().from_select(["user_id", "day", "question_type", "interactions"], type_rows),
    )
    return (*clear, *fill)


# ------------------------------------------------------------- reading


def _mean(total: Any, n: Any) -> ColumnElement[Any]:
    return cast(func.sum(total), Float(precision=53)) / func.nullif(func.sum(n), 0)


@functools.cache
def analytics_statements(
    has_start: bool, has_end: bool
) -> tuple[Select[Any], Select[Any], Select[Any], Select[Any]]:
    """Totals, metric means, question types and daily trends over session days
    ``[start, end)``."""

    def window(table: Any) -> list[ColumnElement[bool]]:
        where = [table.c.user_id == bindparam("user_id")]
        if has_start:
            where.append(table.c.day >= bindparam("start", type_=Date))
        if has_end:
            where.append(table.c.day < bindparam("end", type_=Date))
        return where

    totals = select(
        func.coalesce(func.sum(days.c.sessions), 0).label("n"),
        (_mean(days.c.duration_us, days.c.completed) / 60_000_000.0).label("duration"),
    ).where(*window(days))
    means_of = (
        _mean(metric_days.c.latency_sum, metric_days.c.latency_n).label("latency"),
        _mean(metric_days.c.accuracy_sum, metric_days.c.accuracy_n).label("accuracy"),
        _mean(metric_days.c.satisfaction_sum, metric_days.c.satisfaction_n).label("satisfaction"),
    )
    means = select(*means_of).where(*window(metric_days))
    n = func.sum(types.c.interactions)
    by_type = (
        select(types.c.question_type.label("qtype"), n.label("n"))
        .where(*window(types))
        .group_by(types.c.question_type)
        .having(n > 0)
        .order_by(n.desc(), types.c.question_type)
    )
    trends = (
        select(metric_days.c.metric_day.label("trend_day"), *means_of)
        .where(*window(metric_days))
        .group_by(metric_days.c.metric_day)
        .having(func.sum(metric_days.c.metrics) > 0)
        .order_by(metric_days.c.metric_day)
    )
    return totals, means, by_type, trends
