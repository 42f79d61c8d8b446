"""A database transaction, owned by whoever opened it.

Every write that is not one guarded statement runs in a :class:`Transaction`:
an ordinary write is one unit of work and a commit (``Database.write``); a
request with an ``Idempotency-Key`` (app/idempotency.py) opens one for the
whole request, runs every unit of work of the request in it (each mutation of
a GraphQL request, the reads of its answer), and commits it with the key and
the answer (:meth:`Transaction.commit`), so the request's changes, its key
and its stored answer commit together or not at all. The caller holds the
object and closes it; nothing of it lives anywhere else.

The rows every write of a user updates (rollups, the event, the key) are
written at the commit, for every unit at once (app/db/late.py): their locks
are held from there to COMMIT only, in the one order every write takes them.
The dialects differ only in how a connection is opened, begun, committed
and given back (:class:`Connector`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from app.db.executor import Executor
from app.db.late import Late
from app.db.repositories import UnitOfWork, key_row
from app.db.resilience import Attempt, Failure, Resilience
from app.domain.ports import Retry, Work
from app.domain.records import KeyedAnswer
from app.errors import DomainError, Unavailable

log = logging.getLogger("app.db")
T = TypeVar("T")


class Handle(Protocol):
    """One connection with a transaction begun on it."""

    @property
    def executor(self) -> Executor: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def release(self, *, broken: bool) -> None:
        """Give the connection back (``broken``: close it instead)."""


class Connector(Protocol):
    dialect: str

    def classify(self, exc: BaseException) -> Failure:
        """What a driver error means (app/db/resilience.py)."""

    async def begin(self, attempt: Attempt) -> Handle:
        """A connection from the pool, its transaction begun."""

    def dead(self, exc: BaseException) -> bool:
        """Whether ``exc`` left the connection unusable."""


class Transaction:
    """One transaction; also the ``Database`` port for the units of work of
    one request (``read`` and ``write`` both run in it, one at a time)."""

    def __init__(self, connector: Connector, resilience: Resilience) -> None:
        self.connector = connector
        self.resilience = resilience
        self.dialect = connector.dialect
        self.committed: list[Callable[[], None]] = []
        self.late = Late(self.dialect, self.committed, guarded=False)
        self._handle: Handle | None = None
        self._lock = asyncio.Lock()  # a GraphQL request's resolvers run concurrently
        self._failed: BaseException | None = None  # the transaction cannot commit
        self._done = False

    # ---------------------------------------------------------------- the Database port

    async def read(self, work: Work[T], *, consistent: bool = False) -> T:
        return await self.run(work)

    async def write(self, work: Work[T]) -> T:
        return await self.run(work)

    async def ping(self) -> bool:
        return True

    def transaction(self, *, optimistic: bool = True) -> Transaction:
        return self  # already in one

    @property
    def retry(self) -> bool:
        return isinstance(self._failed, Retry)

    # ---------------------------------------------------------------- running

    async def run(self, work: Work[T]) -> T:
        """``work`` in this transaction (begun on first use). A database error
        fails the transaction: it can no longer commit."""
        async with self._lock:
            if self._failed is not None or self._done:
                raise Unavailable()
            first = self._handle is None

            async def once(attempt: Attempt) -> T:
                if self._handle is None:
                    self._handle = await self._begin(attempt)
                attempt.connected = True
                # Units after the first cannot start over on another connection.
                attempt.committing = not first
                uow = UnitOfWork(self._handle.executor, self.late, self.committed)
                try:
                    return await work(uow)
                except DomainError:
                    raise  # a rule refused: nothing failed in the database
                except BaseException as exc:
                    if first and self._handle is not None:
                        # Nothing else ran on it: a retry begins afresh.
                        handle, self._handle = self._handle, None
                        await handle.release(broken=True)
                    else:
                        self._failed = exc
                    raise

            return await self.resilience.attempt(once, self.connector.classify, retry=first)

    async def commit(
        self, key: KeyedAnswer | None = None, *, expired_before: datetime | None = None
    ) -> bool:
        """Write the last rows (and ``key``, an ``Idempotency-Key`` with its
        answer, taking over a row of the same key created before
        ``expired_before``) and COMMIT. False when the key is taken (another request
        committed it first): everything is rolled back. A transaction that
        failed, or a COMMIT that fails, raises (nothing is committed, or it is
        unknown: 503 either way)."""
        async with self._lock:
            if self._failed is not None:
                if isinstance(self._failed, Retry):
                    raise Retry()
                raise Unavailable() from self._failed
            ours = False
            row = None if key is None else key_row(key, expired_before or key.created_at)

            async def once(attempt: Attempt) -> bool:
                nonlocal ours
                if self._handle is None:  # nothing ran: the key alone
                    self._handle = await self._begin(attempt)
                attempt.connected = True
                handle = self._handle
                if not await self.late.run(handle.executor, key=row):
                    await handle.rollback()
                    return False
                attempt.committing = True  # a COMMIT whose connection dies may have committed
                await handle.commit()
                ours = True
                return True

            try:
                return await self.resilience.attempt(once, self.connector.classify, retry=False)
            finally:
                self._done = True
                await self._release()
                if ours:
                    after_commit(self.committed)

    async def _begin(self, attempt: Attempt) -> Handle:
        return await self.connector.begin(attempt)

    async def close(self) -> None:
        """Roll back what did not commit, and give the connection back."""
        async with self._lock:
            self._done = True
            await self._release()

    async def _release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        broken = self._failed is not None and self.connector.dead(self._failed)
        if not broken:
            try:
                await handle.rollback()  # (a no-op after COMMIT)
            except Exception:
                broken = True
        await handle.release(broken=broken)

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def after_commit(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("an after-commit callback failed")


async def in_transaction(connector: Connector, resilience: Resilience, work: Work[T]) -> T:
    """An ordinary write: ``work`` as one transaction, committed when it returns."""
    async with Transaction(connector, resilience) as tx:
        result = await tx.run(work)
        await tx.commit()
        return result
