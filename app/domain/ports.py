"""The ports the service owns: what it needs from storage, as typing Protocols.

``app.db`` implements them with SQL (on SQLite and PostgreSQL); the rule tests
implement them in memory (``tests/domain/fakes.py``). The service never learns
which one it talks to, so nothing here names a database, a driver or SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from app.domain.paging import PageRequest, SessionFilter
from app.domain.records import (
    Analytics,
    Interaction,
    KeyedAnswer,
    Metric,
    Session,
    SessionEvent,
    SessionStatus,
)
from app.errors import MODIFIED_CONCURRENTLY, Conflict

T = TypeVar("T")


class SessionRepository(Protocol):
    async def add(self, s: Session) -> None: ...

    async def get(
        self, session_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Session | None:
        """``lock``: held until the transaction ends (no other writer may
        change it); ``share``: other sharers may proceed, writers wait."""

    async def list_for_user(
        self, user_id: str, *, limit: int, status: SessionStatus | None = None
    ) -> list[Session]:
        """Newest first (``created_at``, then ``id``, descending)."""

    async def page(self, user_id: str, f: SessionFilter, req: PageRequest) -> list[Session]:
        """The user's sessions matching ``f``, newest first, by keyset:
        ``req.size + 1`` rows in fetch order (reversed for backward pages)."""

    async def count(self, user_id: str, f: SessionFilter) -> int:
        """How many of the user's sessions match ``f``."""

    async def count_active(self, user_id: str) -> int: ...

    async def lock_user(self, user_id: str) -> None:
        """Serialise the user's activations until the transaction ends."""

    async def save(self, s: Session) -> None: ...

    async def delete(self, s: Session) -> None:
        """With every interaction and metric of the session (``s`` as stored,
        locked by this unit of work)."""


class InteractionRepository(Protocol):
    async def add(self, i: Interaction) -> None: ...

    async def get_with_owner(self, interaction_id: uuid.UUID) -> tuple[Interaction, str] | None:
        """The interaction, locked for update, and the user id owning its session."""

    async def save(self, i: Interaction, fields: Iterable[str]) -> None:
        """Write only the named fields."""

    async def list_for_session(self, session_id: uuid.UUID) -> list[Interaction]:
        """Oldest first."""

    async def page(self, session_id: uuid.UUID, req: PageRequest) -> list[Interaction]:
        """Oldest first, by keyset: ``req.size + 1`` rows in fetch order."""

    async def first_of_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str, limit: int
    ) -> dict[uuid.UUID, list[Interaction]]:
        """The first ``limit`` of each of the user's sessions (every key present)."""

    async def counts(self, session_ids: Sequence[uuid.UUID], user_id: str) -> dict[uuid.UUID, int]:
        """How many each of the user's sessions holds (0 for others')."""

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Interaction]]:
        """Every key present (empty when the session is missing or someone else's)."""


class MetricRepository(Protocol):
    async def add(self, m: Metric) -> None: ...

    async def list_for_session(self, session_id: uuid.UUID) -> list[Metric]: ...

    async def list_for_sessions(
        self, session_ids: Sequence[uuid.UUID], user_id: str
    ) -> dict[uuid.UUID, list[Metric]]: ...


class AnalyticsRepository(Protocol):
    async def compute(
        self, user_id: str, start: datetime | None, end: datetime | None
    ) -> Analytics:
        """Aggregates over the user's sessions created in ``[start, end)``."""


class EventRepository(Protocol):
    """The event table: written in the same transaction as the change it tells of."""

    async def add(
        self, event: SessionEvent, committed: Callable[[int], None] | None = None
    ) -> None:
        """Store the event with the change (as the transaction's last statements:
        they lock the user's sequence until COMMIT); ``committed`` gets its
        ``seq`` in the user's stream (commit order) once the transaction has
        committed."""

    async def after(
        self, user_id: str, seq: int, session_id: uuid.UUID | None, limit: int
    ) -> list[SessionEvent]:
        """The user's events after ``seq`` (of one session, if given), oldest first."""

    async def latest(self, user_id: str) -> int:
        """The user's last ``seq`` (0 before any)."""

    async def deletion(self, user_id: str, session_id: uuid.UUID) -> int | None:
        """The ``seq`` of the user's event that deleted this session, if kept."""

    async def oldest(self, user_id: str) -> int | None:
        """The user's oldest ``seq`` still kept (None when none is)."""

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before``; how many went."""


class IdempotencyRepository(Protocol):
    """Idempotency keys and the answers they replay (app/idempotency.py)."""

    async def find(self, user_id: str, key: str) -> KeyedAnswer | None: ...

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` keys created before ``before``; how many went."""


class UnitOfWork(Protocol):
    """The repositories of one transaction (a write) or one read."""

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def events(self) -> EventRepository: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if not)."""

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def interactions(self) -> InteractionRepository: ...

    @property
    def metrics(self) -> MetricRepository: ...

    @property
    def analytics(self) -> AnalyticsRepository: ...


Work = Callable[[UnitOfWork], Awaitable[T]]


class EventBus(Protocol):
    """Wakes a user's subscribers when one of their events has committed,
    whichever process committed it. A wake-up carries nothing: subscribers
    read what is new from the event table, so a lost wake-up delays, never
    loses, an event (the bus wakes everyone when it reconnects)."""

    def published(self, user_id: str, seq: int) -> None:
        """This process committed event ``seq`` of ``user_id`` (after commit)."""

    def waiter(self, user_id: str) -> Waiter: ...


class Waiter(Protocol):
    """One subscriber's wake-up: registered before its first read."""

    async def wait(self, within: float) -> bool:
        """Until woken (True) or ``within`` seconds passed (False)."""

    def wake(self) -> None: ...

    def close(self) -> None: ...


class Database(Protocol):
    """Runs units of work. A failure to reach the storage raises
    :class:`app.errors.Unavailable`; a lost race, :class:`app.errors.Conflict`."""

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        """``consistent``: every read of ``work`` sees one snapshot."""

    async def write(self, work: Work[T]) -> T:
        """``work`` as one transaction: committed when it returns, rolled back
        when it raises (inside a :class:`Transaction`: committed with it)."""

    def transaction(self, *, optimistic: bool = True) -> Transaction:
        """A transaction for several units of work, held and closed by the
        caller (a request with an ``Idempotency-Key``: app/idempotency.py).
        ``optimistic``: the storage may run its units' reads first and write
        everything at the commit, checked against what they read; if that no
        longer holds, the commit raises :class:`Retry`, and the caller runs
        them again in a transaction that is not optimistic."""

    async def ping(self) -> bool: ...


class Retry(Conflict):
    """An optimistic transaction cannot commit what its units of work did (what
    they read changed meanwhile, or they did what it cannot hold back): nothing
    was written. Run them again with ``transaction(optimistic=False)``. (A
    conflict, should it reach a client: 409.)"""

    def __init__(self) -> None:
        super().__init__(MODIFIED_CONCURRENTLY)


class Transaction(Database, Protocol):
    """Units of work that commit together (``read`` and ``write`` run in it,
    one at a time, each seeing what the ones before changed)."""

    async def commit(
        self, key: KeyedAnswer | None = None, *, expired_before: datetime | None = None
    ) -> bool:
        """Commit, with ``key`` (an ``Idempotency-Key`` and its answer) written
        last, taking over a row of that key created before ``expired_before``.
        False when the key is taken (another request committed it first):
        nothing is committed. Raises when nothing could be committed."""

    async def close(self) -> None:
        """Roll back what was not committed; the transaction is over."""

    @property
    def retry(self) -> bool:
        """A unit of work raised :class:`Retry`: it cannot commit."""
