"""The ``WrittenRepository`` port written in Python, from records the other
repositories read: for storages whose database does not build the JSON
(SQLite, where this is faster than SQLite's JSON functions, and the in-memory
fakes of the rule tests). Same rules as PostgreSQL's statements: only the
user's sessions, the lists in their read order. Three statements at most
(the sessions, each kind of list for all of them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from app.domain.ports import InteractionRepository, MetricRepository, SessionRepository
from app.domain.projection import Children, Lists, Projection, child_kinds, write, write_one
from app.domain.records import SessionStatus


class WrittenInPython:
    def __init__(
        self,
        sessions: SessionRepository,
        interactions: InteractionRepository,
        metrics: MetricRepository,
    ) -> None:
        self.sessions = sessions
        self.interactions = interactions
        self.metrics = metrics

    async def _lists(
        self, kinds: Iterable[str], session_ids: Sequence[uuid.UUID], user_id: str
    ) -> Lists:
        out: Lists = {}
        for kind in set(kinds):
            if kind == "interactions":
                out[kind] = dict(await self.interactions.list_for_sessions(session_ids, user_id))
            else:
                out[kind] = dict(await self.metrics.list_for_sessions(session_ids, user_id))
        return out

    async def children(
        self, session_ids: Sequence[uuid.UUID], user_id: str, parts: tuple[Children, ...]
    ) -> dict[uuid.UUID, tuple[str, ...]]:
        lists = await self._lists((p.kind for p in parts), session_ids, user_id)
        return {
            sid: tuple(write(lists[p.kind].get(sid, []), p.projection) for p in parts)
            for sid in session_ids
        }

    async def session(
        self, session_id: uuid.UUID, user_id: str, projection: Projection
    ) -> str | None:
        found = await self.sessions.get(session_id)
        if found is None or found.user_id != user_id:
            return None
        kinds = (kind for kind, _c in child_kinds(projection))
        return write_one(found, projection, await self._lists(kinds, [found.id], user_id))

    async def sessions_of(
        self, user_id: str, projection: Projection, *, limit: int, status: SessionStatus | None
    ) -> str:
        found = await self.sessions.list_for_user(user_id, limit=limit, status=status)
        kinds = (kind for kind, _c in child_kinds(projection))
        return write(found, projection, await self._lists(kinds, [s.id for s in found], user_id))
