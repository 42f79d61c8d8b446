"""The repositories' statements, built once (cached per shape and dialect).

SQLAlchemy Core with bind parameters, so PostgreSQL runs them as prepared
statements on asyncpg (app/db/executor.py); the row maps between records and
rows; the few dialect differences of lists and pages (list parameters, the
search's two branches on PostgreSQL) in one place.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Uuid,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    table,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.db.mapping import RowMap
from app.db.models import SEARCH_SHORT_BYTES, UTCDateTime
from app.db.models import events_table as et
from app.db.models import idempotency_table as ik
from app.db.models import interactions_table as it
from app.db.models import metrics_table as mt
from app.db.models import sessions_table as st
from app.db.search_index import FTS as SQLITE_SEARCH
from app.domain.paging import PageRequest, Position, SessionFilter
from app.domain.records import (
    Interaction,
    KeyedAnswer,
    Metric,
    Session,
    SessionStatus,
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


def grouped(records: Iterable[Any], keys: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for rec in records:
        out[rec.session_id].append(rec)
    return {k: out.get(k, []) for k in keys}


def ids_param(col: Any, dialect: str) -> ColumnElement[bool]:
    """``col`` in the list bound as ``ids``: one array parameter on PostgreSQL."""
    if dialect == "postgresql":
        expr: ColumnElement[bool] = col == func.any(bindparam("ids", type_=ARRAY(col.type)))
    else:
        expr = col.in_(bindparam("ids", expanding=True))
    return expr


# ---------------------------------------------------------------- statements, built once


@functools.cache
def get_session(lock: str | None) -> Select[Any]:
    stmt = select(*SESSIONS.columns).where(st.c.id == bindparam("id"))
    if lock is not None:
        # PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serialises writers.
        stmt = stmt.with_for_update(read=lock == "share")
    # One row by its key, whoever asks: a generic plan is the custom one.
    return stmt.execution_options(generic_plans=True)


@functools.cache
def list_sessions(by_status: bool) -> Select[Any]:
    stmt = select(*SESSIONS.columns).where(st.c.user_id == bindparam("user_id"))
    if by_status:
        stmt = stmt.where(st.c.status == bindparam("status"))
    stmt = stmt.order_by(st.c.created_at.desc(), st.c.id.desc()).limit(bindparam("limit"))
    # A user's newest sessions (of one status) are one walk of (user_id,
    # created_at, id) (or of (user_id, status, created_at, id)) for every
    # user and status: PostgreSQL's generic plan is the custom one, and it
    # may keep it (see app.db.executor.CompiledStatement).
    return stmt.execution_options(generic_plans=True)


COUNT_ACTIVE = (
    select(func.count().label("n"))
    .select_from(st)
    .where(st.c.user_id == bindparam("user_id"), st.c.status == SessionStatus.ACTIVE.value)
)
INTERACTION_WITH_OWNER = (
    select(*INTERACTIONS.columns, st.c.user_id.label("owner_id"))
    .join(st, st.c.id == it.c.session_id)
    .where(it.c.id == bindparam("id"))
    # Concurrent updates of one interaction queue up behind this row lock
    # (PostgreSQL); SQLite's BEGIN IMMEDIATE already serialises writers.
    .with_for_update(of=it)
)
INTERACTIONS_OF_SESSION = (
    select(*INTERACTIONS.columns)
    .where(it.c.session_id == bindparam("session_id"))
    .order_by(it.c.timestamp, it.c.id)
)
METRICS_OF_SESSION = (
    select(*METRICS.columns)
    .where(mt.c.session_id == bindparam("session_id"))
    .order_by(mt.c.created_at, mt.c.id)
)


@functools.cache
def of_sessions(table: str, dialect: str) -> Select[Any]:
    """Interactions or metrics of many sessions, only the user's, oldest first."""
    t, cols, when = (
        (it, INTERACTIONS.columns, it.c.timestamp)
        if table == "interactions"
        else (mt, METRICS.columns, mt.c.created_at)
    )
    return (
        select(*cols)
        .join(st, st.c.id == t.c.session_id)
        .where(ids_param(t.c.session_id, dialect), st.c.user_id == bindparam("user_id"))
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


# SQLite's search by trigrams (migration 0009): the FTS5 table's rows whose
# text holds the term, by the table's rowid. A term is searched there when
# fewer than TRIGRAM_BOUND sessions in all hold it (`SEARCH_PROBE` counts
# them, stopping at the bound): at most that many rows are then read by
# rowid, against a walk of the user's index that, for such a term, tests
# most or all of the user's sessions (10,000 of them: ~3.7 ms for no match,
# 0.13 ms by trigrams). A commoner term keeps the walk, which a page fills
# early; the count costs 0.01-0.3 ms (warm; a rare term to one in every
# document's trigrams), bench/README.md's scale notes.
TRIGRAM_BOUND = 256
_fts = table(SQLITE_SEARCH, literal_column("rowid"))
_fts_match = literal_column(SQLITE_SEARCH).op("MATCH")(bindparam("phrase"))
SEARCH_PROBE = select(func.count().label("n")).select_from(
    select(literal_column("1"))
    .select_from(_fts)
    .where(_fts_match)
    .limit(bindparam("bound"))
    .subquery()
)


def trigram_phrase(term: str) -> str | None:
    """The FTS5 query matching ``term`` as a substring (a quoted phrase of its
    trigrams), or None for a term under 3 characters (no trigram to look up)."""
    if len(term) < 3 or "\x00" in term:
        return None
    return '"' + term.replace('"', '""') + '"'


def _trigram_filters(shape: FilterShape) -> list[ColumnElement[bool]]:
    """A SQLite search's filters, its rows among those the FTS5 table matches
    (the LIKE of `_session_filters` still decides: the trigrams only narrow).
    The user's id is compared as ``+user_id``, which no index may serve: with
    statistics saying a user has a few sessions (the average), SQLite would
    walk the user's index and test each row against the matches, the very
    walk this avoids; so it reads the matches, each by its rowid."""
    where = _session_filters(shape, "sqlite")
    where[0] = literal_column(f"+{st.name}.user_id") == bindparam("user_id")
    rowids: Select[Any] = select(literal_column("rowid")).select_from(_fts).where(_fts_match)
    return [*where, literal_column(f"{st.name}.rowid").in_(rowids)]


FilterShape = tuple[int, bool, bool, bool, bool]


def filter_shape(f: SessionFilter) -> FilterShape:
    return (
        len(f.status),
        f.created_from is not None,
        f.created_to is not None,
        f.search is not None,
        f.interview_type is not None,
    )


def filter_params(user_id: str, f: SessionFilter) -> dict[str, Any]:
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


def keyset_params(req: PageRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": req.size + 1}
    if req.after is not None:
        params["after_at"], params["after_id"] = req.after.at, req.after.id
    if req.before is not None:
        params["before_at"], params["before_id"] = req.before.at, req.before.id
    return params


def page_shape(req: PageRequest) -> tuple[bool, bool, bool]:
    return req.after is not None, req.before is not None, req.backward


@functools.cache
def sessions_page(
    shape: FilterShape, page: tuple[bool, bool, bool], dialect: str, trigrams: bool = False
) -> Select[Any]:
    """A page of a user's sessions; ``trigrams``: a SQLite search narrowed by
    its FTS5 table (see TRIGRAM_BOUND)."""
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
    where = _trigram_filters(shape) if trigrams else _session_filters(shape, dialect)
    stmt = select(*SESSIONS.columns).where(*where)
    stmt = _keyset(stmt, st.c.created_at, st.c.id, req, newest_first=True)
    # No filter, or one status: one walk of an index from the cursor, for
    # every user and status (see list_sessions). Other filters (several
    # statuses, dates, a search, a type) stay planned for their values.
    return (
        stmt.execution_options(generic_plans=True) if shape[0] <= 1 and not any(shape[1:]) else stmt
    )


@functools.cache
def sessions_count(shape: FilterShape, dialect: str, trigrams: bool = False) -> Select[Any]:
    if dialect == "postgresql" and shape[3]:
        both = union_all(*(select(st.c.id).where(*w) for w in _pg_search_branches(shape)))
        return select(func.count().label("n")).select_from(both.subquery("matched"))
    where = _trigram_filters(shape) if trigrams else _session_filters(shape, dialect)
    return select(func.count().label("n")).select_from(st).where(*where)


@functools.cache
def interactions_page(page: tuple[bool, bool, bool]) -> Select[Any]:
    after, before, backward = page
    stmt = select(*INTERACTIONS.columns).where(it.c.session_id == bindparam("session_id"))
    req = PageRequest(0, _ANY if after else None, _ANY if before else None, backward)
    return _keyset(stmt, it.c.timestamp, it.c.id, req, newest_first=False)


@functools.cache
def first_interactions(dialect: str) -> Select[Any]:
    """The first ``limit`` interactions of each of many sessions (the user's only)."""
    rank = (
        func.row_number()
        .over(partition_by=it.c.session_id, order_by=(it.c.timestamp, it.c.id))
        .label("rank")
    )
    ranked = (
        select(*INTERACTIONS.columns, rank)
        .join(st, st.c.id == it.c.session_id)
        .where(ids_param(it.c.session_id, dialect), st.c.user_id == bindparam("user_id"))
        .subquery()
    )
    columns = [ranked.c[c.name] for c in INTERACTIONS.columns]
    return (
        select(*columns)
        .where(ranked.c.rank <= bindparam("limit"))
        .order_by(ranked.c.session_id, ranked.c.timestamp, ranked.c.id)
    )


@functools.cache
def interaction_counts(dialect: str) -> Select[Any]:
    return (
        select(it.c.session_id, func.count().label("n"))
        .join(st, st.c.id == it.c.session_id)
        .where(ids_param(it.c.session_id, dialect), st.c.user_id == bindparam("user_id"))
        .group_by(it.c.session_id)
    )


_ANY = Position(datetime.min, uuid.UUID(int=0))  # a placeholder: only its presence matters


@functools.cache
def prune_statement(name: str, dialect: str) -> Any:
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
