"""In-memory implementations of the domain's ports (``app/domain/ports.py``).

The service's rules (ownership, the state machine, the active cap, limits) are
tested on these: fast, no database. A write works on a copy of the store and
commits it only when the unit of work returns, so a rule that raises halfway
leaves nothing behind, as a rolled-back transaction would. The SQL behind the
same ports is tested on SQLite and PostgreSQL elsewhere.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from statistics import fmean
from typing import Any, TypeVar

import msgspec

from app.domain.paging import PageRequest, Position, SessionFilter
from app.domain.ports import Work
from app.domain.records import (
    Analytics,
    Interaction,
    Metric,
    PerformanceTrend,
    QuestionTypeCount,
    Session,
    SessionEvent,
    SessionEventType,
    SessionStatus,
    TrendMetrics,
)

T = TypeVar("T")


class Store:
    def __init__(self) -> None:
        self.sessions: dict[uuid.UUID, Session] = {}
        self.interactions: dict[uuid.UUID, Interaction] = {}
        self.metrics: dict[uuid.UUID, Metric] = {}
        self.events: list[SessionEvent] = []
        self.counters: dict[str, int] = {}


class FakeSessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, s: Session) -> None:
        self.store.sessions[s.id] = s

    async def get(
        self, session_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Session | None:
        return self.store.sessions.get(session_id)

    async def list_for_user(
        self, user_id: str, *, limit: int, status: SessionStatus | None = None
    ) -> list[Session]:
        mine = [
            s
            for s in self.store.sessions.values()
            if s.user_id == user_id and (status is None or s.status is status)
        ]
        mine.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        return mine[:limit]

    def _matching(self, user_id: str, f: SessionFilter) -> list[Session]:
        def search_text(s: Session) -> str:
            j = s.job_context
            return "\n".join((j.title, j.company, j.description or "")).lower()

        return [
            s
            for s in self.store.sessions.values()
            if s.user_id == user_id
            and (not f.status or s.status in f.status)
            and (f.created_from is None or s.created_at >= f.created_from)
            and (f.created_to is None or s.created_at < f.created_to)
            and (f.search is None or f.search in search_text(s))
            and (f.interview_type is None or s.job_context.interview_type is f.interview_type)
        ]

    async def page(self, user_id: str, f: SessionFilter, req: PageRequest) -> list[Session]:
        return _keyset(self._matching(user_id, f), req, lambda s: (s.created_at, s.id), True)

    async def count(self, user_id: str, f: SessionFilter) -> int:
        return len(self._matching(user_id, f))

    async def count_active(self, user_id: str) -> int:
        return sum(
            1
            for s in self.store.sessions.values()
            if s.user_id == user_id and s.status is SessionStatus.ACTIVE
        )

    async def lock_user(self, user_id: str) -> None:
        return None

    async def save(self, s: Session) -> None:
        self.store.sessions[s.id] = s

    async def delete(self, s: Session) -> None:
        session_id = s.id
        del self.store.sessions[session_id]
        for table in (self.store.interactions, self.store.metrics):
            for key in [k for k, v in table.items() if v.session_id == session_id]:
                del table[key]


class FakeInteractions:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, i: Interaction) -> None:
        self.store.interactions[i.id] = i

    async def get_with_owner(self, interaction_id: uuid.UUID) -> tuple[Interaction, str] | None:
        i = self.store.interactions.get(interaction_id)
        return None if i is None else (i, self.store.sessions[i.session_id].user_id)

    async def save(self, i: Interaction, fields: Iterable[str]) -> None:
        current = self.store.interactions[i.id]
        changes = {f: getattr(i, f) for f in fields}
        self.store.interactions[i.id] = msgspec.structs.replace(current, **changes)

    async def list_for_session(self, session_id: uuid.UUID) -> list[Interaction]:
        return _oldest_first(self.store.interactions.values(), session_id, "timestamp")

    async def page(self, session_id: uuid.UUID, req: PageRequest) -> list[Interaction]:
        rows = _oldest_first(self.store.interactions.values(), session_id, "timestamp")
        return _keyset(rows, req, lambda i: (i.timestamp, i.id), False)

    async def first_of_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str, limit: int
    ) -> dict[uuid.UUID, list[Interaction]]:
        every = await self.list_for_sessions(session_ids, user_id)
        return {sid: rows[:limit] for sid, rows in every.items()}

    async def counts(self, session_ids: Sequence[uuid.UUID], user_id: str) -> dict[uuid.UUID, int]:
        every = await self.list_for_sessions(session_ids, user_id)
        return {sid: len(rows) for sid, rows in every.items()}

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Interaction]]:
        return {
            sid: _oldest_first(self.store.interactions.values(), sid, "timestamp")
            if _owned(self.store, sid, user_id)
            else []
            for sid in session_ids
        }


class FakeMetrics:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, m: Metric) -> None:
        self.store.metrics[m.id] = m

    async def list_for_session(self, session_id: uuid.UUID) -> list[Metric]:
        return _oldest_first(self.store.metrics.values(), session_id, "created_at")

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Metric]]:
        return {
            sid: _oldest_first(self.store.metrics.values(), sid, "created_at")
            if _owned(self.store, sid, user_id)
            else []
            for sid in session_ids
        }


class FakeAnalytics:
    """The contract's definitions, in Python (the SQL aggregates are tested
    against hand-computed numbers on both databases)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def compute(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> Analytics:
        sessions = [
            s
            for s in self.store.sessions.values()
            if s.user_id == user_id
            and (start is None or s.created_at >= start)
            and (end is None or s.created_at < end)
        ]
        ids = {s.id for s in sessions}
        metrics = [m for m in self.store.metrics.values() if m.session_id in ids]
        durations = [
            (s.ended_at - s.started_at).total_seconds() / 60
            for s in sessions
            if s.status is SessionStatus.COMPLETED and s.ended_at is not None
        ]
        types = Counter(
            i.question_classification.type
            for i in self.store.interactions.values()
            if i.session_id in ids and i.question_classification is not None
        )
        days: dict[str, list[Metric]] = defaultdict(list)
        for m in metrics:
            days[m.created_at.date().isoformat()].append(m)
        return Analytics(
            total_sessions=len(sessions),
            average_session_duration=_mean(durations),
            average_latency=_mean(m.total_latency_ms for m in metrics),
            average_accuracy=_mean(m.transcription_accuracy for m in metrics),
            average_satisfaction=_mean(m.user_satisfaction for m in metrics),
            most_common_question_types=[
                QuestionTypeCount(type=t, count=n)
                for t, n in sorted(types.items(), key=lambda tn: (-tn[1], tn[0].value))
            ],
            performance_trends=[
                PerformanceTrend(
                    date=datetime.fromisoformat(day).date(),
                    metrics=TrendMetrics(
                        latency=_mean(m.total_latency_ms for m in ms),
                        accuracy=_mean(m.transcription_accuracy for m in ms),
                        satisfaction=_mean(m.user_satisfaction for m in ms),
                    ),
                )
                for day, ms in sorted(days.items())
            ],
        )


class FakeEvents:
    def __init__(self, store: Store, committed: list[Any]) -> None:
        self.store = store
        self.committed = committed

    async def add(self, event: SessionEvent, committed: Any = None) -> None:
        seq = self.store.counters.get(event.user_id, 0) + 1
        self.store.counters[event.user_id] = seq
        self.store.events.append(msgspec.structs.replace(event, seq=seq))
        if committed is not None:
            self.committed.append(lambda: committed(seq))

    async def after(
        self, user_id: str, seq: int, session_id: uuid.UUID | None, limit: int
    ) -> list[SessionEvent]:
        return [
            e
            for e in self.store.events
            if e.user_id == user_id
            and e.seq > seq
            and (session_id is None or e.session_id == session_id)
        ][:limit]

    async def latest(self, user_id: str) -> int:
        return self.store.counters.get(user_id, 0)

    async def deletion(self, user_id: str, session_id: uuid.UUID) -> int | None:
        return next(
            (
                e.seq
                for e in self.store.events
                if e.user_id == user_id
                and e.session_id == session_id
                and e.type is SessionEventType.SESSION_DELETED
            ),
            None,
        )

    async def oldest(self, user_id: str) -> int | None:
        return next((e.seq for e in self.store.events if e.user_id == user_id), None)

    async def prune(self, before: datetime, limit: int) -> int:
        old = [e for e in self.store.events if e.at < before][:limit]
        for e in old:
            self.store.events.remove(e)
        return len(old)


class FakeUnitOfWork:
    def __init__(self, store: Store) -> None:
        self.sessions = FakeSessions(store)
        self.interactions = FakeInteractions(store)
        self.metrics = FakeMetrics(store)
        self.analytics = FakeAnalytics(store)
        self.committed: list[Any] = []
        self.events = FakeEvents(store, self.committed)

    def after_commit(self, callback: Any) -> None:
        self.committed.append(callback)


class FakeDatabase:
    """Units of work on an in-memory store; ``writes``/``reads`` count them."""

    def __init__(self) -> None:
        self.store = Store()
        self.writes = 0
        self.reads = 0

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        self.reads += 1
        await asyncio.sleep(0)  # a read suspends, as a database's does
        return await work(FakeUnitOfWork(self.store))

    def transaction(self) -> FakeTransaction:
        return FakeTransaction(self)

    async def write(self, work: Work[T]) -> T:
        self.writes += 1
        draft = copy.deepcopy(self.store)
        uow = FakeUnitOfWork(draft)
        result = await work(uow)
        self.store = draft  # committed only when the work returned
        for callback in uow.committed:
            callback()
        return result

    async def ping(self) -> bool:
        return True


class FakeTransaction:
    """Units of work on a draft of the store, kept by ``commit``."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.draft = copy.deepcopy(db.store)
        self.committed: list[Any] = []

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        return await self.write(work)

    async def write(self, work: Work[T]) -> T:
        uow = FakeUnitOfWork(self.draft)
        result = await work(uow)
        self.committed += uow.committed
        return result

    def transaction(self) -> FakeTransaction:
        return self

    async def commit(self, key: Any = None, *, expired_before: Any = None) -> bool:
        self.db.store = self.draft
        for callback in self.committed:
            callback()
        return True

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return await self.db.ping()


class FakeWaiter:
    """One subscriber's wake-up (``ports.Waiter``). The fake's time is free: a
    wait without a wake-up returns False (``within`` passed) at once, after
    running what ``meanwhile`` holds (another request committing as it waits)."""

    def __init__(self, bus: FakeBus, user_id: str) -> None:
        self.bus = bus
        self.user_id = user_id
        self.pending = False
        self.closed = False
        self.waits: list[float] = []  # the ``within`` of every wait
        self.meanwhile: list[Callable[[], Awaitable[Any]]] = []

    async def wait(self, within: float) -> bool:
        self.waits.append(within)
        while self.meanwhile:
            await self.meanwhile.pop(0)()
        woken, self.pending = self.pending, False
        return woken

    def wake(self) -> None:
        self.pending = True

    def close(self) -> None:
        self.closed = True
        if self in self.bus.waiters:
            self.bus.waiters.remove(self)


class FakeBus:
    """``ports.EventBus`` in one process: ``published`` records what committed
    and wakes that user's waiters."""

    def __init__(self) -> None:
        self.wakeups: list[tuple[str, int]] = []
        self.waiters: list[FakeWaiter] = []

    def published(self, user_id: str, seq: int) -> None:
        self.wakeups.append((user_id, seq))
        for w in self.waiters:
            if w.user_id == user_id:
                w.wake()

    def waiter(self, user_id: str) -> FakeWaiter:
        w = FakeWaiter(self, user_id)
        self.waiters.append(w)
        return w


def _owned(store: Store, session_id: uuid.UUID, user_id: str) -> bool:
    s = store.sessions.get(session_id)
    return s is not None and s.user_id == user_id


def _oldest_first(records: Iterable[Any], session_id: uuid.UUID, when: str) -> list[Any]:
    mine = [r for r in records if r.session_id == session_id]
    return sorted(mine, key=lambda r: (getattr(r, when), r.id))


def _keyset(rows: list[Any], req: PageRequest, key: Any, newest_first: bool) -> list[Any]:
    """As the SQL does it: ``size + 1`` rows after/before the positions, in fetch order."""

    def k(p: Position) -> Any:
        return (p.at, p.id)

    if req.after is not None:
        a = k(req.after)
        rows = [r for r in rows if (key(r) < a if newest_first else key(r) > a)]
    if req.before is not None:
        b = k(req.before)
        rows = [r for r in rows if (key(r) > b if newest_first else key(r) < b)]
    descending = newest_first != req.backward
    return sorted(rows, key=key, reverse=descending)[: req.size + 1]


def _mean(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None
