"""The event table: each change's event, written with it, read by the live streams."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Select,
    bindparam,
    func,
    select,
)

from app.db.executor import Executor
from app.db.late import Late
from app.db.models import events_table as et
from app.db.statements import prune_statement
from app.domain.records import (
    Interaction,
    Metric,
    Session,
    SessionEvent,
    SessionEventType,
)


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
            prune_statement(et.name, self.ex.dialect), {"before": before, "limit": limit}
        )
        return len(rows)
