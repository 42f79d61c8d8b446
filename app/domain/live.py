"""Live sessions: a user's stream of events, replayed from a cursor, then live.

The stream reads the event table by the user's ``seq`` (strictly increasing,
in commit order): it replays every event after the client's cursor, then
waits for the event bus to say something new committed and reads again. The
read, not the wake-up, is what delivers, so the switch from replay to live
has no gap, no duplicate and no reordering, and a wake-up lost (a broker
restarting) costs latency, never an event.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta

from app.domain.base import Clock, ServiceBase, owned, utcnow
from app.domain.paging import Cursors
from app.domain.ports import Database, EventBus, UnitOfWork, Waiter
from app.domain.records import Principal, SessionEvent, SessionEventType
from app.domain.validation import parse_uuid
from app.errors import BadRequest

READ_BATCH = 100
# A subscriber re-reads at least this often even without a wake-up: a safety
# net under the bus, not the delivery path.
SAFETY_POLL_SECONDS = 30.0


def expired_message(retention: timedelta) -> str:
    days = retention.total_seconds() / 86_400
    kept = f"{days:g} days" if days >= 1 else f"{retention.total_seconds():g} seconds"
    return (
        f"after: this cursor is older than the events kept (EVENT_RETENTION, {kept}); "
        "subscribe again without after"
    )


class LiveService(ServiceBase):
    def __init__(
        self,
        db: Database,
        cursors: Cursors,
        bus: EventBus,
        *,
        retention: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        super().__init__(db, clock)
        self.cursors = cursors
        self.events = bus
        self.retention = retention

    def scope(self, user_id: str) -> str:
        return f"events:{user_id}"

    def cursor(self, event: SessionEvent) -> str:
        """The cursor a client resumes from, after this event."""
        return self.cursors.encode_number(self.scope(event.user_id), event.seq)

    async def subscribe(
        self, user: Principal, session_id: str | None = None, after: str | None = None
    ) -> Subscription:
        """Check everything before the first event: the session is the caller's
        (403/404, a bad id 400), the cursor is theirs and not expired (400).
        Without ``after``, the stream starts with what commits from now on.

        A session's stream ends with the event that deleted it; resuming one
        whose session is gone since the cursor delivers what was missed, up to
        and including that event (the caller's own events prove it was theirs)."""
        sid = parse_uuid(session_id) if session_id is not None else None
        start = (
            None if after is None else self.cursors.decode_number(self.scope(user.user_id), after)
        )
        # Registered before the first read: nothing committed from here on can be missed.
        waiter = self.events.waiter(user.user_id)

        async def work(uow: UnitOfWork) -> int:
            if sid is not None:
                session = await uow.sessions.get(sid)
                deleted = (
                    await uow.events.deletion(user.user_id, sid)
                    if session is None and start is not None
                    else None
                )
                if deleted is None or deleted <= (start or 0):
                    owned(user, session)
            latest = await uow.events.latest(user.user_id)
            if start is None:
                return latest
            oldest = await uow.events.oldest(user.user_id)
            first_kept = latest + 1 if oldest is None else oldest
            if start > latest or first_kept > start + 1:
                raise BadRequest(expired_message(self.retention))
            return start

        try:
            position = await self.db.read(work, consistent=True)
        except BaseException:
            waiter.close()
            raise
        return Subscription(self.db, user.user_id, sid, position, waiter)


class Subscription:
    """One subscriber's stream (an async iterator of events); ``close()`` ends it."""

    def __init__(
        self,
        db: Database,
        user_id: str,
        session_id: uuid.UUID | None,
        position: int,
        waiter: Waiter,
    ) -> None:
        self.db = db
        self.user_id = user_id
        self.session_id = session_id
        self.position = position  # the last seq delivered (or the start)
        self.waiter = waiter
        self._ready: deque[SessionEvent] = deque()
        # A session's stream is over once its deletion was delivered.
        self.ended = False

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        return self

    async def __anext__(self) -> SessionEvent:
        if self.ended:
            raise StopAsyncIteration
        while not self._ready:
            if not await self._read():
                await self.waiter.wait(within=SAFETY_POLL_SECONDS)
        return self._deliver()

    async def next_within(self, seconds: float) -> SessionEvent | None:
        """The next event, or None if none arrives within ``seconds`` (heartbeats)."""
        if not self._ready and not await self._read():
            await self.waiter.wait(within=seconds)
            if not await self._read():
                return None
        return self._deliver()

    def _deliver(self) -> SessionEvent:
        event = self._ready.popleft()
        self.position = event.seq
        if self.session_id is not None and event.type is SessionEventType.SESSION_DELETED:
            self.ended = True
        return event

    async def _read(self) -> bool:
        after = self._ready[-1].seq if self._ready else self.position

        async def work(uow: UnitOfWork) -> list[SessionEvent]:
            return await uow.events.after(self.user_id, after, self.session_id, READ_BATCH)

        events = await self.db.read(work)
        self._ready.extend(events)
        return bool(events)

    def interrupt(self) -> None:
        """Wake a waiting stream now (a stopping server ends it)."""
        self.waiter.wake()

    def close(self) -> None:
        self.waiter.close()
