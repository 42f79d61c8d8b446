"""What every part of the service shares: the database, the clock, ownership."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from app.db.engine import Database
from app.domain.records import Principal, Session
from app.errors import ACCESS_DENIED, SESSION_NOT_FOUND, Forbidden, NotFound

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def owned(user: Principal, session: Session | None) -> Session:
    """The ownership rule, written once: missing is 404, someone else's is 403."""
    if session is None:
        raise NotFound(SESSION_NOT_FOUND)
    if session.user_id != user.user_id:
        raise Forbidden(ACCESS_DENIED)
    return session


class ServiceBase:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
