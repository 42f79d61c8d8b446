"""The SQL. Each repository works inside one unit of work and returns domain
records, never ORM objects.

Statements are SQLAlchemy Core, built once (cached per shape and dialect) with
bind parameters, so the PostgreSQL read path can run them as prepared
statements on asyncpg (see :mod:`app.db.executor`). Analytics are SQL
aggregates; the few dialect differences (durations, UTC days, list parameters,
the per-user lock) are kept in this module.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import msgspec
from sqlalchemy import (
    ColumnElement,
    Select,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.db import rollups
from app.db.executor import GUARDED_READ, Executor, NotGuardable
from app.db.late import Late
from app.db.mapping import RowMap
from app.db.models import SEARCH_SHORT_BYTES, UTCDateTime
from app.db.models import events_table as et
from app.db.models import idempotency_table as ik
from app.db.models import interactions_table as it
from app.db.models import metrics_table as mt
from app.db.models import sessions_table as st
from app.domain.paging import PageRequest, Position, SessionFilter
from app.domain.records import (
    Analytics,
    Interaction,
    KeyedAnswer,
    Metric,
    PerformanceTrend,
    QuestionType,
    QuestionTypeCount,
    Session,
    SessionEvent,
    SessionEventType,
    SessionStatus,
    TrendMetrics,
)


def _interview_type(s: Session) -> str | None:
    kind = s.job_context.interview_type
    return None if kind is None else kind.value


def _search_text(s: Session) -> str:
    """What ``search`` matches: title, company and description, lower case
    (migration 0002 fills it the same way for older rows)."""
    job = s.job_context
    return "\n".join((job.title, job.company, job.description or "")).lower()


def _search_short(s: Session) -> str | None:
    """``search_text`` when it fits an index entry (see SEARCH_SHORT_BYTES)."""
    text = _search_text(s)
    return text if len(text.encode()) <= SEARCH_SHORT_BYTES else None


def _question_type(i: Interaction) -> str | None:
    qc = i.question_classification
    return None if qc is None else qc.type.value


SESSIONS: RowMap[Session] = RowMap(
    Session,
    st,
    derived={
        "interview_type": _interview_type,
        "search_text": _search_text,
        "search_short": _search_short,
    },
)
INTERACTIONS: RowMap[Interaction] = RowMap(
    Interaction, it, derived={"question_type": _question_type}
)
METRICS: RowMap[Metric] = RowMap(Metric, mt)
KEYS: RowMap[KeyedAnswer] = RowMap(KeyedAnswer, ik)


def _grouped(records: Iterable[Any], keys: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for rec in records:
        out[rec.session_id].append(rec)
    return {k: out.get(k, []) for k in keys}


def _ids_param(col: Any, dialect: str) -> ColumnElement[bool]:
    """``col`` in the list bound as ``ids``: one array parameter on PostgreSQL."""
    if dialect == "postgresql":
        expr: ColumnElement[bool] = col == func.any(bindparam("ids", type_=ARRAY(col.type)))
    else:
        expr = col.in_(bindparam("ids", expanding=True))
    return expr


# ---------------------------------------------------------------- statements, built once


@functools.cache
def _get_session(lock: str | None) -> Select[Any]:
    stmt = select(*SESSIONS.columns).where(st.c.id == bindparam("id"))
    if lock is not None:
        # PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serialises writers.
        stmt = stmt.with_for_update(read=lock == "share")
    # One row by its key, whoever asks: a generic plan is the custom one.
    return stmt.execution_options(generic_plans=True)


@functools.cache
def _list_sessions(by_status: bool) -> Select[Any]:
    stmt = select(*SESSIONS.columns).where(st.c.user_id == bindparam("user_id"))
    if by_status:
        stmt = stmt.where(st.c.status == bindparam("status"))
    stmt = stmt.order_by(st.c.created_at.desc(), st.c.id.desc()).limit(bindparam("limit"))
    # A user's newest sessions (of one status) are one walk of (user_id,
    # created_at, id) (or of (user_id, status, created_at, id)) for every
    # user and status: PostgreSQL's generic plan is the custom one, and it
    # may keep it (see app.db.executor.CompiledStatement).
    return stmt.execution_options(generic_plans=True)


_COUNT_ACTIVE = (
    select(func.count().label("n"))
    .select_from(st)
    .where(st.c.user_id == bindparam("user_id"), st.c.status == SessionStatus.ACTIVE.value)
)
_INTERACTION_WITH_OWNER = (
    select(*INTERACTIONS.columns, st.c.user_id.label("owner_id"))
    .join(st, st.c.id == it.c.session_id)
    .where(it.c.id == bindparam("id"))
    # Concurrent updates of one interaction queue up behind this row lock
    # (PostgreSQL); SQLite's BEGIN IMMEDIATE already serialises writers.
    .with_for_update(of=it)
)
_INTERACTIONS_OF_SESSION = (
    select(*INTERACTIONS.columns)
    .where(it.c.session_id == bindparam("session_id"))
    .order_by(it.c.timestamp, it.c.id)
)
_METRICS_OF_SESSION = (
    select(*METRICS.columns)
    .where(mt.c.session_id == bindparam("session_id"))
    .order_by(mt.c.created_at, mt.c.id)
)


@functools.cache
def _of_sessions(table: str, dialect: str) -> Select[Any]:
    """Interactions or metrics of many sessions, only the user's, oldest first."""
    t, cols, when = (
        (it, INTERACTIONS.columns, it.c.timestamp)
        if table == "interactions"
        else (mt, METRICS.columns, mt.c.created_at)
    )
    return (
        select(*cols)
        .join(st, st.c.id == t.c.session_id)
        .where(_ids_param(t.c.session_id, dialect), st.c.user_id == bindparam("user_id"))
        .order_by(t.c.session_id, when, t.c.id)
    )


def _session_filters(shape: FilterShape, dialect: str) -> list[ColumnElement[bool]]:
    """The filters of a list of a user's sessions. On PostgreSQL the search is
    not among them: a search is two branches (see :func:`_pg_search_branches`)."""
    n_status, has_from, has_to, search, by_type = shape
    where: list[ColumnElement[bool]] = [st.c.user_id == bindparam("user_id")]
    if n_status == 1:
        where.append(st.c.status == bindparam("status0"))
    elif n_status:
        where.append(st.c.status.in_([bindparam(f"status{i}") for i in range(n_status)]))
    if has_from:
        where.append(st.c.created_at >= bindparam("created_from", type_=UTCDateTime()))
    if has_to:
        where.append(st.c.created_at < bindparam("created_to", type_=UTCDateTime()))
    if search and dialect != "postgresql":
        where.append(st.c.search_text.like(bindparam("search"), escape="\\"))
    if by_type:
        where.append(st.c.interview_type == bindparam("interview_type"))
    return where


def _pg_search_branches(shape: FilterShape) -> list[list[ColumnElement[bool]]]:
    """A search on PostgreSQL, as the filters of two branches of a UNION ALL,
    each one simple condition on the text that an index can serve:

    * the sessions whose text fits ``search_short``: by that column, which
      both the covering index (walked newest first, index-only: a common
      term) and its trigram index (a rare term) hold; the planner picks for
      each term (custom plans);
    * the rare sessions whose text is longer: by ``search_text``, from the
      partial index of those sessions (migration 0008)."""
    where = _session_filters(shape, "postgresql")
    term: Any = bindparam("search")
    return [
        [*where, st.c.search_short.like(term, escape="\\")],
        [*where, st.c.search_short.is_(None), st.c.search_text.like(term, escape="\\")],
    ]


FilterShape = tuple[int, bool, bool, bool, bool]


def _filter_shape(f: SessionFilter) -> FilterShape:
    return (
        len(f.status),
        f.created_from is not None,
        f.created_to is not None,
        f.search is not None,
        f.interview_type is not None,
    )


def _filter_params(user_id: str, f: SessionFilter) -> dict[str, Any]:
    params: dict[str, Any] = {"user_id": user_id}
    for i, status in enumerate(f.status):
        params[f"status{i}"] = status.value
    if f.created_from is not None:
        params["created_from"] = f.created_from
    if f.created_to is not None:
        params["created_to"] = f.created_to
    if f.search is not None:
        escaped = f.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["search"] = f"%{escaped}%"
    if f.interview_type is not None:
        params["interview_type"] = f.interview_type.value
    return params


def _keyset(
    stmt: Select[Any], at: Any, id_: Any, req: PageRequest, newest_first: bool
) -> Select[Any]:
    """Rows after/before the request's positions, in fetch order, ``size + 1`` of them."""
    key = tuple_(at, id_)
    for name, present, later in (
        ("after", req.after is not None, newest_first),
        ("before", req.before is not None, not newest_first),
    ):
        if not present:
            continue
        bound = tuple_(
            bindparam(f"{name}_at", type_=UTCDateTime()), bindparam(f"{name}_id", type_=Uuid())
        )
        # "after" in a newest-first list is an older row: a smaller key.
        stmt = stmt.where(key < bound if later else key > bound)
    descending = newest_first != req.backward
    order = (at.desc(), id_.desc()) if descending else (at.asc(), id_.asc())
    return stmt.order_by(*order).limit(bindparam("limit"))


def _keyset_params(req: PageRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": req.size + 1}
    if req.after is not None:
        params["after_at"], params["after_id"] = req.after.at, req.after.id
    if req.before is not None:
        params["before_at"], params["before_id"] = req.before.at, req.before.id
    return params


def _page_shape(req: PageRequest) -> tuple[bool, bool, bool]:
    return req.after is not None, req.before is not None, req.backward


@functools.cache
def _sessions_page(shape: FilterShape, page: tuple[bool, bool, bool], dialect: str) -> Select[Any]:
    after, before, backward = page
    req = PageRequest(0, _ANY if after else None, _ANY if before else None, backward)
    if dialect == "postgresql" and shape[3]:
        # A search: the page's keys from each branch's index (the covering
        # one, index-only: every filter is on its columns; or the trigrams),
        # merged in page order, then only those rows from the table, instead
        # of a table row for every session tested.
        branches = [
            _keyset(
                select(st.c.id, st.c.created_at).where(*where),
                st.c.created_at,
                st.c.id,
                req,
                newest_first=True,
            )
            for where in _pg_search_branches(shape)
        ]
        both = union_all(*branches).subquery("matched")
        keys = _keyset(
            select(both.c.id, both.c.created_at),
            both.c.created_at,
            both.c.id,
            PageRequest(0, None, None, backward),  # (the branches applied the cursor)
            newest_first=True,
        ).subquery("page")
        descending = not backward
        order = (
            (keys.c.created_at.desc(), keys.c.id.desc())
            if descending
            else (keys.c.created_at.asc(), keys.c.id.asc())
        )
        return select(*SESSIONS.columns).join(keys, keys.c.id == st.c.id).order_by(*order)
    stmt = select(*SESSIONS.columns).where(*_session_filters(shape, dialect))
    stmt = _keyset(stmt, st.c.created_at, st.c.id, req, newest_first=True)
    # No filter, or one status: one walk of an index from the cursor, for
    # every user and status (see _list_sessions). Other filters (several
    # statuses, dates, a search, a type) stay planned for their values.
    return (
        stmt.execution_options(generic_plans=True) if shape[0] <= 1 and not any(shape[1:]) else stmt
    )


@functools.cache
def _sessions_count(shape: FilterShape, dialect: str) -> Select[Any]:
    if dialect == "postgresql" and shape[3]:
        both = union_all(*(select(st.c.id).where(*w) for w in _pg_search_branches(shape)))
        return select(func.count().label("n")).select_from(both.subquery("matched"))
    return select(func.count().label("n")).select_from(st).where(*_session_filters(shape, dialect))


@functools.cache
def _interactions_page(page: tuple[bool, bool, bool]) -> Select[Any]:
    after, before, backward = page
    stmt = select(*INTERACTIONS.columns).where(it.c.session_id == bindparam("session_id"))
    req = PageRequest(0, _ANY if after else None, _ANY if before else None, backward)
    return _keyset(stmt, it.c.timestamp, it.c.id, req, newest_first=False)


@functools.cache
def _first_interactions(dialect: str) -> Select[Any]:
    """The first ``limit`` interactions of each of many sessions (the user's only)."""
    rank = (
        func.row_number()
        .over(partition_by=it.c.session_id, order_by=(it.c.timestamp, it.c.id))
        .label("rank")
    )
    ranked = (
        select(*INTERACTIONS.columns, rank)
        .join(st, st.c.id == it.c.session_id)
        .where(_ids_param(it.c.session_id, dialect), st.c.user_id == bindparam("user_id"))
        .subquery()
    )
    columns = [ranked.c[c.name] for c in INTERACTIONS.columns]
    return (
        select(*columns)
        .where(ranked.c.rank <= bindparam("limit"))
        .order_by(ranked.c.session_id, ranked.c.timestamp, ranked.c.id)
    )


@functools.cache
def _interaction_counts(dialect: str) -> Select[Any]:
    return (
        select(it.c.session_id, func.count().label("n"))
        .join(st, st.c.id == it.c.session_id)
        .where(_ids_param(it.c.session_id, dialect), st.c.user_id == bindparam("user_id"))
        .group_by(it.c.session_id)
    )


_ANY = Position(datetime.min, uuid.UUID(int=0))  # a placeholder: only its presence matters


# ---------------------------------------------------------------- repositories


class SessionRepository:
    def __init__(self, ex: Executor, late: Late) -> None:
        self.ex = ex
        self.late = late

    async def add(self, s: Session) -> None:
        await self.ex.execute(insert(st).values(SESSIONS.to_row(s)))
        self.late.upsert("day", rollups.day_values(s))

    async def get(
        self, session_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Session | None:
        if self.late.guarded and (lock or share):
            if lock:
                raise NotGuardable("a guarded write locks no row for update")
            # No lock now: it is locked when the writes are, if still this
            # version (a version read lately will do: that is checked too).
            ex: Any = self.ex
            row = ex.remembered(session_id)
            if row is None:
                rows = await ex.rows(_GET_SESSION_VERSION, {"id": session_id})
                if not rows:
                    return None
                row = rows[0]
                ex.versions.put(session_id, row)
            self.late.guard_session(session_id, row["row_version"])
            return SESSIONS.from_row(row)
        mode = "update" if lock else "share" if share else None
        rows = await self.ex.rows(_get_session(mode), {"id": session_id})
        return SESSIONS.from_row(rows[0]) if rows else None

    async def list_for_user(
        self, user_id: str, *, limit: int, status: SessionStatus | None = None
    ) -> list[Session]:
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if status is not None:
            params["status"] = status.value
        rows = await self.ex.rows(_list_sessions(status is not None), params)
        return [SESSIONS.from_row(r) for r in rows]

    async def page(self, user_id: str, f: SessionFilter, req: PageRequest) -> list[Session]:
        """``req.size + 1`` rows in fetch order (see app.domain.paging.assemble)."""
        params = {**_filter_params(user_id, f), **_keyset_params(req)}
        stmt = _sessions_page(_filter_shape(f), _page_shape(req), self.ex.dialect)
        rows = await self.ex.rows(stmt, params)
        return [SESSIONS.from_row(r) for r in rows]

    async def count(self, user_id: str, f: SessionFilter) -> int:
        stmt = _sessions_count(_filter_shape(f), self.ex.dialect)
        rows = await self.ex.rows(stmt, _filter_params(user_id, f))
        return int(rows[0]["n"])

    async def count_active(self, user_id: str) -> int:
        rows = await self.ex.rows(_COUNT_ACTIVE, {"user_id": user_id})
        return int(rows[0]["n"])

    async def lock_user(self, user_id: str) -> None:
        """Serialise activations of one user's sessions until the transaction ends.

        PostgreSQL: a transaction-scoped advisory lock keyed by the user id.
        SQLite: write transactions already hold the database write lock.
        """
        if self.ex.dialect == "postgresql":
            await self.ex.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"interview-sessions:{user_id}"},
            )

    async def save(self, s: Session) -> None:
        # Everything but the identity and creation fields, which never change.
        fields = [f for f in SESSIONS.fields if f not in _FIXED]
        if s.status is SessionStatus.COMPLETED and s.ended_at is not None:
            # Before the update: it counts only if the stored row is not completed yet.
            await self.ex.execute(rollups.complete_day(self.ex.dialect), rollups.complete_values(s))
        await self.ex.execute(update(st).where(st.c.id == s.id).values(SESSIONS.values(s, fields)))

    async def delete(self, s: Session) -> None:
        # Its share of the analytics, read while its rows are there to count.
        await rollups.remove_session(self.ex, self.late, s)
        await self.ex.execute(_DELETE_SESSION, {"id": s.id})


# The row's version for a guarded write: PostgreSQL's xmin (the transaction
# that wrote this version of the row; any update or delete makes a new one).
_GET_SESSION_VERSION = (
    select(*SESSIONS.columns, literal_column("xmin::text").label("row_version"))
    .where(st.c.id == bindparam("id"))
    .execution_options(**{GUARDED_READ: True})
)
_TABLES = {t.name: t for t in (st, it, mt)}


_DELETE_SESSION = delete(st).where(st.c.id == bindparam("id"))
_FIXED = frozenset({"id", "user_id", "session_id", "created_at"})


class InteractionRepository:
    def __init__(self, ex: Executor, late: Late) -> None:
        self.ex = ex
        self.late = late

    async def add(self, i: Interaction) -> None:
        row = INTERACTIONS.to_row(i)
        if self.late.guarded:
            self.late.insert(it.name, row)
        else:
            await self.ex.execute(insert(it).values(row))
        if row["question_type"] is not None:
            values = rollups.question_type_values(i.session_id, row["question_type"])
            self.late.upsert("question_type", values)

    async def get_with_owner(self, interaction_id: uuid.UUID) -> tuple[Interaction, str] | None:
        rows = await self.ex.rows(_INTERACTION_WITH_OWNER, {"id": interaction_id})
        if not rows:
            return None
        return INTERACTIONS.from_row(rows[0]), rows[0]["owner_id"]

    async def save(self, i: Interaction, fields: Iterable[str]) -> None:
        """Write only the given fields of the interaction."""
        values = INTERACTIONS.values(i, fields)
        await self.ex.execute(update(it).where(it.c.id == i.id).values(values))

    async def list_for_session(self, session_id: uuid.UUID) -> list[Interaction]:
        rows = await self.ex.rows(_INTERACTIONS_OF_SESSION, {"session_id": session_id})
        return [INTERACTIONS.from_row(r) for r in rows]

    async def page(self, session_id: uuid.UUID, req: PageRequest) -> list[Interaction]:
        params = {"session_id": session_id, **_keyset_params(req)}
        rows = await self.ex.rows(_interactions_page(_page_shape(req)), params)
        return [INTERACTIONS.from_row(r) for r in rows]

    async def first_of_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str, limit: int
    ) -> dict[uuid.UUID, list[Interaction]]:
        """The first ``limit`` of each session, in one statement (the user's only)."""
        rows = await self.ex.rows(
            _first_interactions(self.ex.dialect),
            {"ids": list(session_ids), "user_id": user_id, "limit": limit},
        )
        return _grouped((INTERACTIONS.from_row(r) for r in rows), session_ids)

    async def counts(self, session_ids: Sequence[uuid.UUID], user_id: str) -> dict[uuid.UUID, int]:
        rows = await self.ex.rows(
            _interaction_counts(self.ex.dialect), {"ids": list(session_ids), "user_id": user_id}
        )
        found = {r["session_id"]: int(r["n"]) for r in rows}
        return {k: found.get(k, 0) for k in session_ids}

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Interaction]]:
        """One statement for many sessions, restricted to the user's own."""
        rows = await self.ex.rows(
            _of_sessions("interactions", self.ex.dialect),
            {"ids": list(session_ids), "user_id": user_id},
        )
        return _grouped((INTERACTIONS.from_row(r) for r in rows), session_ids)


class MetricRepository:
    def __init__(self, ex: Executor, late: Late) -> None:
        self.ex = ex
        self.late = late

    async def add(self, m: Metric) -> None:
        row = METRICS.to_row(m)
        if self.late.guarded:
            self.late.insert(mt.name, row)
        else:
            await self.ex.execute(insert(mt).values(row))
        self.late.upsert("metric", rollups.metric_values(m))

    async def list_for_session(self, session_id: uuid.UUID) -> list[Metric]:
        rows = await self.ex.rows(_METRICS_OF_SESSION, {"session_id": session_id})
        return [METRICS.from_row(r) for r in rows]

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Metric]]:
        rows = await self.ex.rows(
            _of_sessions("metrics", self.ex.dialect),
            {"ids": list(session_ids), "user_id": user_id},
        )
        return _grouped((METRICS.from_row(r) for r in rows), session_ids)


# ---------------------------------------------------------------- analytics


class AnalyticsRepository:
    """Aggregates computed by the database from the rollups (:mod:`app.db.rollups`),
    identical on SQLite and PostgreSQL."""

    def __init__(self, ex: Executor) -> None:
        self.ex = ex

    async def compute(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> Analytics:
        """Over the sessions created in ``[start, end)``: whole UTC days (midnight
        bounds, as :func:`app.domain.paging.window` gives them)."""
        totals_q, means_q, types_q, trends_q = rollups.analytics_statements(
            start is not None, end is not None
        )
        params: dict[str, Any] = {"user_id": user_id}
        if start is not None:
            params["start"] = _whole_day(start)
        if end is not None:
            params["end"] = _whole_day(end)
        totals = (await self.ex.rows(totals_q, params))[0]
        means = (await self.ex.rows(means_q, params))[0]
        type_rows = await self.ex.rows(types_q, params)
        trend_rows = await self.ex.rows(trends_q, params)
        return Analytics(
            total_sessions=int(totals["n"]),
            average_session_duration=_float(totals["duration"]),
            average_latency=_float(means["latency"]),
            average_accuracy=_float(means["accuracy"]),
            average_satisfaction=_float(means["satisfaction"]),
            most_common_question_types=[
                QuestionTypeCount(type=QuestionType(r["qtype"]), count=int(r["n"]))
                for r in type_rows
            ],
            performance_trends=[
                PerformanceTrend(
                    date=_date(r["trend_day"]),
                    metrics=TrendMetrics(
                        latency=_float(r["latency"]),
                        accuracy=_float(r["accuracy"]),
                        satisfaction=_float(r["satisfaction"]),
                    ),
                )
                for r in trend_rows
            ],
        )


def _whole_day(bound: datetime) -> date:
    day = rollups.utc_day(bound)
    if bound.astimezone(UTC).time() != time.min:
        raise ValueError(f"analytics windows are whole UTC days, not {bound.isoformat()}")
    return day


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------- events


class _Payload(msgspec.Struct, rename="camel", omit_defaults=True):
    """What an event row's JSON holds: the REST bodies of what changed."""

    session: Session | None = None
    interaction: Interaction | None = None
    metric: Metric | None = None


_decode_payload = msgspec.json.Decoder(_Payload).decode
_EVENT_TYPES = {t.value: t for t in SessionEventType}


def _payload(value: Any) -> _Payload:
    if type(value) is str:
        return _decode_payload(value)
    return msgspec.convert(value, _Payload)


_EVENT_COLS = (et.c.seq, et.c.type, et.c.session_id, et.c.at, et.c.payload)


@functools.cache
def _events_after(of_session: bool) -> Select[Any]:
    stmt = select(*_EVENT_COLS).where(
        et.c.user_id == bindparam("user_id"), et.c.seq > bindparam("seq")
    )
    if of_session:
        stmt = stmt.where(et.c.session_id == bindparam("session_id"))
    return stmt.order_by(et.c.seq).limit(bindparam("limit"))


_LATEST_SEQ = select(func.coalesce(func.max(et.c.seq), 0).label("seq")).where(
    et.c.user_id == bindparam("user_id")
)
_OLDEST_SEQ = select(func.min(et.c.seq).label("seq")).where(et.c.user_id == bindparam("user_id"))
_DELETION_SEQ = select(func.max(et.c.seq).label("seq")).where(
    et.c.user_id == bindparam("user_id"),
    et.c.session_id == bindparam("session_id"),
    et.c.type == SessionEventType.SESSION_DELETED.value,
)


class EventRepository:
    def __init__(self, ex: Executor, late: Late) -> None:
        self.ex = ex
        self.late = late

    async def add(
        self, event: SessionEvent, committed: Callable[[int], None] | None = None
    ) -> None:
        payload = msgspec.to_builtins(
            _Payload(session=event.session, interaction=event.interaction, metric=event.metric)
        )
        # The user's sequence row stays locked until COMMIT: last (see Late).
        self.late.add_event(
            {
                "user_id": event.user_id,
                "session_id": event.session_id,
                "type": event.type.value,
                "at": event.at,
                "payload": payload,
            },
            committed,
        )

    async def after(
        self, user_id: str, seq: int, session_id: uuid.UUID | None, limit: int
    ) -> list[SessionEvent]:
        params: dict[str, Any] = {"user_id": user_id, "seq": seq, "limit": limit}
        if session_id is not None:
            params["session_id"] = session_id
        rows = await self.ex.rows(_events_after(session_id is not None), params)
        events = []
        for row in rows:
            body = _payload(row["payload"])
            events.append(
                SessionEvent(
                    seq=row["seq"],
                    type=_EVENT_TYPES[row["type"]],
                    user_id=user_id,
                    session_id=row["session_id"],
                    at=row["at"],
                    session=body.session,
                    interaction=body.interaction,
                    metric=body.metric,
                )
            )
        return events

    async def latest(self, user_id: str) -> int:
        return int((await self.ex.rows(_LATEST_SEQ, {"user_id": user_id}))[0]["seq"])

    async def deletion(self, user_id: str, session_id: uuid.UUID) -> int | None:
        params = {"user_id": user_id, "session_id": session_id}
        value = (await self.ex.rows(_DELETION_SEQ, params))[0]["seq"]
        return None if value is None else int(value)

    async def oldest(self, user_id: str) -> int | None:
        value = (await self.ex.rows(_OLDEST_SEQ, {"user_id": user_id}))[0]["seq"]
        return None if value is None else int(value)

    async def prune(self, before: datetime, limit: int) -> int:
        """A small batch, so a prune never holds writers back for long; on
        PostgreSQL rows another process is pruning are skipped, not waited for."""
        rows = await self.ex.rows(
            _prune(et.name, self.ex.dialect), {"before": before, "limit": limit}
        )
        return len(rows)


class IdempotencyRepository:
    """Idempotency keys (app/idempotency.py): claimed in the change's transaction."""

    def __init__(self, ex: Executor) -> None:
        self.ex = ex

    async def find(self, user_id: str, key: str) -> KeyedAnswer | None:
        rows = await self.ex.rows(_FIND_KEY, {"user_id": user_id, "key": key})
        if not rows:
            return None
        return KEYS.from_row(rows[0])  # JSON as text on the raw path too

    async def prune(self, before: datetime, limit: int) -> int:
        """As :meth:`EventRepository.prune`, oldest keys first."""
        rows = await self.ex.rows(
            _prune(ik.name, self.ex.dialect), {"before": before, "limit": limit}
        )
        return len(rows)


@functools.cache
def _prune(name: str, dialect: str) -> Any:
    """Delete up to ``limit`` rows older than ``before`` (one statement;
    PostgreSQL skips rows another pruner holds), RETURNING one row each."""
    table, when, keys = (
        (et, et.c.at, (et.c.id,))
        if name == et.name
        else (ik, ik.c.created_at, (ik.c.user_id, ik.c.key))
    )
    oldest = (
        select(*keys)
        .where(when < bindparam("before", type_=UTCDateTime()))
        .order_by(when)
        .limit(bindparam("limit"))
    )
    if dialect == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    return delete(table).where(tuple_(*keys).in_(oldest)).returning(*keys)


_FIND_KEY = select(ik).where(ik.c.user_id == bindparam("user_id"), ik.c.key == bindparam("key"))


def key_row(key: KeyedAnswer, expired_before: datetime) -> dict[str, Any]:
    """A key's row for a transaction's last statements (``Late.run``)."""
    return {**KEYS.to_row(key), "expired_before": expired_before}


class UnitOfWork:
    """The repositories of one unit of work (one transaction, or one read)."""

    def __init__(
        self,
        ex: Executor,
        late: Late | None = None,
        committed: list[Callable[[], None]] | None = None,
    ) -> None:
        """``late`` and ``committed``: a transaction's, shared by its units of
        work (by default, this unit's own)."""
        self.ex = ex
        self.committed = committed if committed is not None else []
        self.late = (
            late
            if late is not None
            else Late(ex.dialect, self.committed, guarded=getattr(ex, "guarded", False))
        )
        self.idempotency = IdempotencyRepository(ex)
        self.sessions = SessionRepository(ex, self.late)
        self.interactions = InteractionRepository(ex, self.late)
        self.metrics = MetricRepository(ex, self.late)
        self.analytics = AnalyticsRepository(ex)
        self.events = EventRepository(ex, self.late)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.committed.append(callback)
