"""What every part of the service shares: the database, the clock, ownership."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from app.domain.ports import Database, EventBus, UnitOfWork
from app.domain.records import (
    Interaction,
    Metric,
    Principal,
    Session,
    SessionEvent,
    SessionEventType,
)
from app.errors import ACCESS_DENIED, SESSION_NOT_FOUND, Forbidden, NotFound

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def ensure_owner(user: Principal, owner_id: str) -> None:
    """The ownership rule, written once: someone else's is 403."""
    if owner_id != user.user_id:
        raise Forbidden(ACCESS_DENIED)


def owned(user: Principal, session: Session | None) -> Session:
    """A session the caller may use: missing is 404, someone else's is 403."""
    if session is None:
        raise NotFound(SESSION_NOT_FOUND)
    ensure_owner(user, session.user_id)
    return session


def settable(cmd: msgspec.Struct) -> dict[str, Any]:
    """A create command's values, named as the record's fields. The command
    names what a client may set; ``session_id`` (a string there, a UUID in the
    record) is set by the service after the UUID check."""
    values = msgspec.structs.asdict(cmd)
    values.pop("session_id", None)
    return values


def given(cmd: msgspec.Struct, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """An update command's fields that were given (absent ones stay UNSET)."""
    return {
        name: value
        for name, value in msgspec.structs.asdict(cmd).items()
        if name not in exclude and value is not msgspec.UNSET
    }


class ServiceBase:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.bus: EventBus | None = None  # set by Service.build: wakes subscribers

    async def emit(
        self,
        uow: UnitOfWork,
        kind: SessionEventType,
        user_id: str,
        session_id: uuid.UUID,
        *,
        session: Session | None = None,
        interaction: Interaction | None = None,
        metric: Metric | None = None,
    ) -> None:
        """Record the event of a change in the change's own transaction; once
        committed, the owner's subscribers (in every process) are woken."""
        event = SessionEvent(
            type=kind,
            user_id=user_id,
            session_id=session_id,
            at=self.clock(),
            session=session,
            interaction=interaction,
            metric=metric,
        )
        bus = self.bus
        if bus is None:
            await uow.events.add(event)
        else:
            await uow.events.add(event, lambda seq: bus.published(user_id, seq))
