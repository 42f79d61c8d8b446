"""Sessions: create, read, update, the state machine, the active-session cap, delete."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from app.domain.base import Clock, ServiceBase, given, new_id, owned, settable, utcnow
from app.domain.paging import (
    DEFAULT_PAGE,
    MAX_PAGE,
    Cursors,
    Page,
    PageRequest,
    Position,
    SessionFilter,
    assemble,
    page_request,
)
from app.domain.ports import Database, UnitOfWork
from app.domain.records import (
    MAX_LIST_LIMIT,
    CreateSession,
    Principal,
    Session,
    SessionDetails,
    SessionStatus,
    UpdateSession,
)
from app.domain.records import SessionEventType as Kind
from app.domain.validation import parse_uuid
from app.errors import BadRequest, Conflict, invalid_transition, too_many_active

ACTIVE = SessionStatus.ACTIVE
COMPLETED = SessionStatus.COMPLETED
LIMIT_MESSAGE = f"limit: must be an integer between 1 and {MAX_LIST_LIMIT}"


def transition(session: Session, target: SessionStatus, now: datetime) -> Session | None:
    """The state machine. ``None`` means "already there": a safe no-op.

    active <-> paused, active|paused -> completed; nothing leaves completed.
    Completing sets ``ended_at`` (once: a completed session never changes status).
    """
    if session.status is target:
        return None
    if session.status is COMPLETED:
        raise BadRequest(invalid_transition(COMPLETED.value, target.value))
    ended_at = now if target is COMPLETED else session.ended_at
    return msgspec.structs.replace(session, status=target, ended_at=ended_at)


def check_limit(limit: int | None) -> int:
    if limit is None:
        return MAX_LIST_LIMIT
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise BadRequest(LIMIT_MESSAGE)
    return limit


def _position(s: Session) -> Position:
    return Position(s.created_at, s.id)


class SessionService(ServiceBase):
    def __init__(
        self, db: Database, *, max_active: int, cursors: Cursors, clock: Clock = utcnow
    ) -> None:
        super().__init__(db, clock)
        self.max_active = max_active
        self.cursors = cursors

    async def _ensure_room_for_one_more_active(self, uow: UnitOfWork, user: Principal) -> None:
        # The per-user lock makes count-then-write atomic against racing activations.
        await uow.sessions.lock_user(user.user_id)
        if await uow.sessions.count_active(user.user_id) >= self.max_active:
            raise Conflict(too_many_active(self.max_active))

    async def create(self, user: Principal, cmd: CreateSession) -> Session:
        now = self.clock()
        session = Session(
            **settable(cmd),
            id=new_id(),
            user_id=user.user_id,
            status=ACTIVE,
            started_at=now,
            created_at=now,
        )

        async def work(uow: UnitOfWork) -> Session:
            await self._ensure_room_for_one_more_active(uow, user)
            await uow.sessions.add(session)
            await self.emit(uow, Kind.SESSION_CREATED, user.user_id, session.id, session=session)
            return session

        return await self.db.write(work)

    async def get(self, user: Principal, session_id: str | uuid.UUID) -> Session:
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> Session:
            return owned(user, await uow.sessions.get(sid))

        return await self.db.read(work)

    async def list_sessions(
        self, user: Principal, *, limit: int | None = None, status: SessionStatus | None = None
    ) -> list[Session]:
        n = check_limit(limit)

        async def work(uow: UnitOfWork) -> list[Session]:
            return await uow.sessions.list_for_user(user.user_id, limit=n, status=status)

        return await self.db.read(work)

    def scope(self, user: Principal) -> str:
        """The list a user's session cursors belong to."""
        return f"sessions:{user.user_id}"

    def page_request(
        self,
        user: Principal,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        first_name: str = "first",
        maximum: int = MAX_PAGE,
    ) -> PageRequest:
        """A checked request for a page of the user's sessions."""
        return page_request(
            self.cursors,
            self.scope(user),
            first=first,
            after=after,
            last=last,
            before=before,
            first_name=first_name,
            maximum=maximum,
            default=min(DEFAULT_PAGE, maximum) if first_name == "first" else maximum,
        )

    async def page(self, user: Principal, f: SessionFilter, req: PageRequest) -> Page[Session]:
        """One page of the user's sessions matching ``f``, newest first."""

        async def work(uow: UnitOfWork) -> list[Session]:
            return await uow.sessions.page(user.user_id, f, req)

        rows = await self.db.read(work)
        return assemble(rows, req, self.cursors, self.scope(user), _position)

    async def count(self, user: Principal, f: SessionFilter) -> int:
        async def work(uow: UnitOfWork) -> int:
            return await uow.sessions.count(user.user_id, f)

        return await self.db.read(work)

    async def active(self, user: Principal) -> list[Session]:
        return await self.list_sessions(user, status=ACTIVE)

    async def details(self, user: Principal, session_id: str | uuid.UUID) -> SessionDetails:
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> SessionDetails:
            s = owned(user, await uow.sessions.get(sid))
            return SessionDetails(
                **msgspec.structs.asdict(s),
                interactions=await uow.interactions.list_for_session(sid),
                metrics=await uow.metrics.list_for_session(sid),
            )

        return await self.db.read(work, consistent=True)

    async def update(
        self, user: Principal, session_id: str | uuid.UUID, cmd: UpdateSession
    ) -> Session:
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> Session:
            current = owned(user, await uow.sessions.get(sid, lock=True))
            updated = current
            if not isinstance(cmd.status, msgspec.UnsetType):
                moved = transition(current, cmd.status, self.clock())
                if moved is not None:
                    if moved.status is ACTIVE:
                        await self._ensure_room_for_one_more_active(uow, user)
                    updated = moved
            changes = given(cmd, exclude=("status",))  # status: the state machine above
            if changes:
                updated = msgspec.structs.replace(updated, **changes)
            if updated != current:  # a no-op writes nothing and tells no one
                await uow.sessions.save(updated)
                kind = (
                    Kind.STATUS_CHANGED
                    if updated.status is not current.status
                    else Kind.SESSION_UPDATED
                )
                await self.emit(uow, kind, user.user_id, sid, session=updated)
            return updated

        return await self.db.write(work)

    async def set_status(
        self, user: Principal, session_id: str | uuid.UUID, target: SessionStatus
    ) -> Session:
        """start / pause / complete: the same state machine as ``update``."""
        return await self.update(user, session_id, UpdateSession(status=target))

    async def delete(self, user: Principal, session_id: str | uuid.UUID) -> None:
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> None:
            current = owned(user, await uow.sessions.get(sid, lock=True))
            await uow.sessions.delete(current)  # with its interactions and metrics
            await self.emit(uow, Kind.SESSION_DELETED, user.user_id, sid)

        await self.db.write(work)
