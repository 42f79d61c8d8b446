"""The SQL. Each repository works inside one unit of work and returns domain
records, never ORM objects.

Statements are SQLAlchemy Core, built once (cached per shape and dialect) with
bind parameters, so the PostgreSQL read path can run them as prepared
statements on asyncpg (see :mod:`app.db.executor`). Analytics are SQL
aggregates; the few dialect differences (durations, UTC days, list parameters,
the per-user lock) are kept in this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from time import monotonic
from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    insert,
    literal_column,
    select,
    text,
    update,
)

from app.db import rollups, statements
from app.db.events import EventRepository
from app.db.executor import GUARDED_READ, Executor, NotGuardable
from app.db.late import Late
from app.db.models import idempotency_table as ik
from app.db.models import interactions_table as it
from app.db.models import metrics_table as mt
from app.db.models import sessions_table as st
from app.db.statements import (
    COUNT_ACTIVE,
    INTERACTION_WITH_OWNER,
    INTERACTIONS,
    INTERACTIONS_OF_SESSION,
    KEYS,
    METRICS,
    METRICS_OF_SESSION,
    SEARCH_PROBE,
    SESSIONS,
    filter_params,
    filter_shape,
    first_interactions,
    get_session,
    grouped,
    interaction_counts,
    interactions_page,
    keyset_params,
    list_sessions,
    of_sessions,
    page_shape,
    prune_statement,
    sessions_count,
    sessions_page,
    trigram_phrase,
)
from app.domain.paging import PageRequest, SessionFilter
from app.domain.records import (
    Analytics,
    Interaction,
    KeyedAnswer,
    Metric,
    PerformanceTrend,
    QuestionType,
    QuestionTypeCount,
    Session,
    SessionStatus,
    TrendMetrics,
)

# ---------------------------------------------------------------- repositories


# SQLite: how many sessions hold a search term, up to the bound it was counted
# to (phrase -> (count, until, bound)), for TERM_COUNT_SECONDS. Counting
# reads the FTS5 doclists of all the term's trigrams: ~0.04 ms for a term in
# no session, 0.2-0.7 ms for a common one, where the walk it decides for
# costs ~0.3-0.8 ms. A search's next pages, and the same term searched
# again, reuse the count; a stale one only makes the choice less apt, never
# the answer different (both ways list the same rows). Per process, which
# serves one database.
TERM_COUNTS: dict[str, tuple[int, float, int]] = {}
TERM_COUNT_SECONDS = 30.0
TERM_COUNT_SIZE = 1024


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
        rows = await self.ex.rows(get_session(mode), {"id": session_id})
        return SESSIONS.from_row(rows[0]) if rows else None

    async def list_for_user(
        self, user_id: str, *, limit: int, status: SessionStatus | None = None
    ) -> list[Session]:
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if status is not None:
            params["status"] = status.value
        rows = await self.ex.rows(list_sessions(status is not None), params)
        return [SESSIONS.from_row(r) for r in rows]

    async def page(self, user_id: str, f: SessionFilter, req: PageRequest) -> list[Session]:
        """``req.size + 1`` rows in fetch order (see app.domain.paging.assemble)."""
        params = {**filter_params(user_id, f), **keyset_params(req)}
        trigrams = await self._by_trigrams(f, params)
        stmt = sessions_page(filter_shape(f), page_shape(req), self.ex.dialect, trigrams)
        rows = await self.ex.rows(stmt, params)
        return [SESSIONS.from_row(r) for r in rows]

    async def count(self, user_id: str, f: SessionFilter) -> int:
        params = filter_params(user_id, f)
        trigrams = await self._by_trigrams(f, params)
        rows = await self.ex.rows(
            sessions_count(filter_shape(f), self.ex.dialect, trigrams), params
        )
        return int(rows[0]["n"])

    async def _by_trigrams(self, f: SessionFilter, params: dict[str, Any]) -> bool:
        """SQLite: whether to search by the FTS5 trigrams (a rare term; see
        TRIGRAM_BOUND in app/db/statements.py); sets the phrase parameter."""
        if self.ex.dialect != "sqlite" or f.search is None:
            return False
        phrase = trigram_phrase(f.search)
        if phrase is None:
            return False
        bound = statements.TRIGRAM_BOUND
        held = TERM_COUNTS.get(phrase)
        now = monotonic()
        if held is not None and held[1] > now and (held[0] < held[2] or held[2] >= bound):
            n = held[0]
        else:
            rows = await self.ex.rows(SEARCH_PROBE, {"phrase": phrase, "bound": bound})
            n = int(rows[0]["n"])
            TERM_COUNTS.pop(phrase, None)  # (re)counted: now the newest entry
            TERM_COUNTS[phrase] = (n, now + TERM_COUNT_SECONDS, bound)
            if len(TERM_COUNTS) > TERM_COUNT_SIZE:
                del TERM_COUNTS[next(iter(TERM_COUNTS))]  # the one counted longest ago
        if n >= bound:
            return False
        params["phrase"] = phrase
        return True

    async def count_active(self, user_id: str) -> int:
        rows = await self.ex.rows(COUNT_ACTIVE, {"user_id": user_id})
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
        rows = await self.ex.rows(INTERACTION_WITH_OWNER, {"id": interaction_id})
        if not rows:
            return None
        return INTERACTIONS.from_row(rows[0]), rows[0]["owner_id"]

    async def save(self, i: Interaction, fields: Iterable[str]) -> None:
        """Write only the given fields of the interaction."""
        values = INTERACTIONS.values(i, fields)
        await self.ex.execute(update(it).where(it.c.id == i.id).values(values))

    async def list_for_session(self, session_id: uuid.UUID) -> list[Interaction]:
        rows = await self.ex.rows(INTERACTIONS_OF_SESSION, {"session_id": session_id})
        return [INTERACTIONS.from_row(r) for r in rows]

    async def page(self, session_id: uuid.UUID, req: PageRequest) -> list[Interaction]:
        params = {"session_id": session_id, **keyset_params(req)}
        rows = await self.ex.rows(interactions_page(page_shape(req)), params)
        return [INTERACTIONS.from_row(r) for r in rows]

    async def first_of_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str, limit: int
    ) -> dict[uuid.UUID, list[Interaction]]:
        """The first ``limit`` of each session, in one statement (the user's only)."""
        rows = await self.ex.rows(
            first_interactions(self.ex.dialect),
            {"ids": list(session_ids), "user_id": user_id, "limit": limit},
        )
        return grouped((INTERACTIONS.from_row(r) for r in rows), session_ids)

    async def counts(self, session_ids: Sequence[uuid.UUID], user_id: str) -> dict[uuid.UUID, int]:
        rows = await self.ex.rows(
            interaction_counts(self.ex.dialect), {"ids": list(session_ids), "user_id": user_id}
        )
        found = {r["session_id"]: int(r["n"]) for r in rows}
        return {k: found.get(k, 0) for k in session_ids}

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Interaction]]:
        """One statement for many sessions, restricted to the user's own."""
        rows = await self.ex.rows(
            of_sessions("interactions", self.ex.dialect),
            {"ids": list(session_ids), "user_id": user_id},
        )
        return grouped((INTERACTIONS.from_row(r) for r in rows), session_ids)


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
        rows = await self.ex.rows(METRICS_OF_SESSION, {"session_id": session_id})
        return [METRICS.from_row(r) for r in rows]

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Metric]]:
        rows = await self.ex.rows(
            of_sessions("metrics", self.ex.dialect),
            {"ids": list(session_ids), "user_id": user_id},
        )
        return grouped((METRICS.from_row(r) for r in rows), session_ids)


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
            prune_statement(ik.name, self.ex.dialect), {"before": before, "limit": limit}
        )
        return len(rows)


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
