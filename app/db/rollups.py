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
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import postgresql, sqlite

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
# A guarded write's gate (app.db.repositories): one row when it may write.
GATE = exists(select(literal_column("1")).select_from(table_clause("gate")))


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


def _upsert(dialect: str, table: Any, keys: tuple[str, ...], sums: tuple[str, ...]) -> Any:
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    def added(s: Any, c: str) -> Any:
        total = table.c[c] + s.excluded[c]
        if c == "accuracy_sum":
            # A sum of doubles that a removal brings back to no values is 0
            # exactly, not the residue of adding and subtracting them.
            return case((table.c.accuracy_n + s.excluded.accuracy_n == 0, 0.0), else_=total)
        return total

    return stmt, lambda s: s.on_conflict_do_update(
        index_elements=list(keys), set_={c: added(s, c) for c in sums}
    )


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


@functools.cache
def add_day(dialect: str) -> Insert:
    """A day's counters plus the given values (a new session)."""
    stmt, conflict = _upsert(dialect, days, ("user_id", "day"), _DAY_SUMS)
    return conflict(stmt)  # type: ignore[no-any-return]


def day_values(s: Session) -> dict[str, Any]:
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
    stmt, conflict = _upsert(dialect, days, ("user_id", "day"), _DAY_SUMS)
    source = select(
        st.c.user_id,
        day_of(dialect, st.c.created_at),
        literal(0, Integer),
        literal(1, Integer),
        bindparam("duration_us", type_=BigInteger),
    ).where(st.c.id == bindparam("id"), st.c.status != COMPLETED)
    return conflict(stmt.from_select(["user_id", "day", *_DAY_SUMS], source))  # type: ignore[no-any-return]


def complete_values(s: Session) -> dict[str, Any]:
    return {"id": s.id, "duration_us": _micros(s)}


@functools.cache
def add_question_type(dialect: str, gated: bool = False) -> Insert:
    """One more classified interaction in its session's day (``gated``: in a
    guarded statement, only when its gate lets it write)."""
    stmt, conflict = _upsert(dialect, types, ("user_id", "day", "question_type"), ("interactions",))
    source = select(
        st.c.user_id,
        day_of(dialect, st.c.created_at),
        bindparam("question_type", type_=types.c.question_type.type),
        literal(1, Integer),
    ).where(st.c.id == bindparam("session_id"))
    if gated:
        source = source.where(GATE)
    return conflict(  # type: ignore[no-any-return]
        stmt.from_select(["user_id", "day", "question_type", "interactions"], source)
    )


@functools.cache
def add_metric(dialect: str, gated: bool = False) -> Insert:
    """One more metric in its session's day, on the metric's own day (``gated``:
    see :func:`add_question_type`)."""
    stmt, conflict = _upsert(dialect, metric_days, ("user_id", "day", "metric_day"), _METRIC_SUMS)
    source = select(
        st.c.user_id,
        day_of(dialect, st.c.created_at),
        bindparam("metric_day", type_=Date),
        literal(1, Integer),
        *(
            bindparam(name, type_=metric_days.c[name].type)
            for name in _METRIC_SUMS[1:]  # metrics is the literal 1 above
        ),
    ).where(st.c.id == bindparam("session_id"))
    if gated:
        source = source.where(GATE)
    return conflict(  # type: ignore[no-any-return]
        stmt.from_select(["user_id", "day", "metric_day", *_METRIC_SUMS], source)
    )


def metric_values(m: Metric) -> dict[str, Any]:
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


def _negated(
    dialect: str, table: Any, keys: tuple[str, ...], sums: tuple[str, ...], source: Any
) -> Any:
    """Add what ``source`` selects (sums already negated) to the rollup rows."""
    stmt, conflict = _upsert(dialect, table, keys, sums)
    return conflict(stmt.from_select([*keys, *sums], source))


@functools.cache
def remove_metrics(dialect: str) -> Insert:
    """Take a session's metrics out of its day (before the session is deleted:
    the rows are still there). Rows in ``metric_day`` order, so two removals
    lock them in the same order."""
    day = day_of(dialect, st.c.created_at)
    metric_day = day_of(dialect, mt.c.created_at).label("metric_day")

    def minus(col: Any, zero: Any) -> tuple[Any, Any]:
        return -func.coalesce(func.sum(col), zero), -func.count(col)

    source = (
        select(
            st.c.user_id,
            day,
            metric_day,
            -func.count(),
            *minus(mt.c.total_latency_ms, 0),
            *minus(mt.c.transcription_accuracy, 0.0),
            *minus(mt.c.user_satisfaction, 0),
        )
        .select_from(mt.join(st, st.c.id == mt.c.session_id))
        .where(st.c.id == bindparam("id"))
        .group_by(st.c.user_id, day, literal_column("metric_day"))
        .order_by(literal_column("metric_day"))
    )
    return _negated(  # type: ignore[no-any-return]
        dialect, metric_days, ("user_id", "day", "metric_day"), _METRIC_SUMS, source
    )


@functools.cache
def remove_question_types(dialect: str) -> Insert:
    """Take a session's classified interactions out of its day (as above)."""
    day = day_of(dialect, st.c.created_at)
    source = (
        select(st.c.user_id, day, it.c.question_type, -func.count())
        .select_from(it.join(st, st.c.id == it.c.session_id))
        .where(st.c.id == bindparam("id"), it.c.question_type.is_not(None))
        .group_by(st.c.user_id, day, it.c.question_type)
        .order_by(it.c.question_type)
    )
    return _negated(  # type: ignore[no-any-return]
        dialect, types, ("user_id", "day", "question_type"), ("interactions",), source
    )


def removed_day_values(s: Session) -> dict[str, Any]:
    """``add_day``'s values that take session ``s`` (as stored) out of its day."""
    return {k: -v if k in _DAY_SUMS else v for k, v in day_values(s).items()}


@functools.cache
def drop_empty() -> tuple[Any, ...]:
    """Rows of one user's day that count nothing any more (``user_id``, ``day``):
    gone, as a rebuild would have none. Only rows this transaction has just
    decremented (and holds locked) can be empty."""
    where = (days.c.user_id == bindparam("user_id"), days.c.day == bindparam("day"))
    return (
        delete(metric_days).where(
            metric_days.c.user_id == bindparam("user_id"),
            metric_days.c.day == bindparam("day"),
            metric_days.c.metrics == 0,
        ),
        delete(types).where(
            types.c.user_id == bindparam("user_id"),
            types.c.day == bindparam("day"),
            types.c.interactions == 0,
        ),
        delete(days).where(*where, days.c.sessions == 0),
    )


async def remove_session(ex: Executor, s: Session) -> None:
    """Take session ``s`` (as stored, locked by the caller) out of the rollups,
    before its row is deleted: decrements, like every other write's
    increments, so a delete commutes with any concurrent write of the user.
    Lock order: the day's row first (every removal from one day waits there),
    then its metric days and question types, each in key order."""
    await ex.execute(add_day(ex.dialect), removed_day_values(s))
    await ex.execute(remove_metrics(ex.dialect), {"id": s.id})
    await ex.execute(remove_question_types(ex.dialect), {"id": s.id})
    params = {"user_id": s.user_id, "day": utc_day(s.created_at)}
    for stmt in drop_empty():
        await ex.execute(stmt, params)


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
