"""The batched reads of one request, or of one subscription event.

A session's ``interactions``, ``metrics``, first page of interactions and
their count are read for every session asked for in one turn of the loop
with one service call each (:class:`app.queries.batch.Batch`); a compiled
plan's lists written as JSON, with one call for all of them
(:mod:`app.queries.written`). A :class:`Reads` is made for each HTTP request
and for each operation and each event of a subscription (the GraphQL face
asks for a fresh one), so nothing read is kept beyond it: a later event
never sees what an earlier one read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from app.domain.paging import Page, PageRequest
from app.domain.records import Interaction, Metric, Principal, SessionStatus
from app.domain.service import Service
from app.domain.sessions import check_limit
from app.domain.validation import parse_uuid
from app.errors import DomainError
from app.queries.batch import Batch
from app.queries.projection import Children, Projection
from app.queries.written import written_lists, written_session, written_sessions


class Reads:
    __slots__ = ("_counts", "_interactions", "_metrics", "_pages", "service", "user")

    def __init__(self, service: Service, user: Principal) -> None:
        self.service = service
        self.user = user
        self._interactions: Batch[uuid.UUID, list[Interaction]] = Batch(self._load_interactions)
        self._metrics: Batch[uuid.UUID, list[Metric]] = Batch(self._load_metrics)
        self._pages: Batch[tuple[uuid.UUID, PageRequest], Page[Interaction]] = Batch(
            self._load_pages
        )
        self._counts: Batch[uuid.UUID, int] = Batch(self._load_counts)

    # ---------------------------------------------------------------- what the faces ask

    def interactions(self, session_id: uuid.UUID) -> asyncio.Future[list[Interaction]]:
        """The session's interactions, oldest first ([] for someone else's)."""
        return self._interactions.get(session_id)

    def metrics(self, session_id: uuid.UUID) -> asyncio.Future[list[Metric]]:
        return self._metrics.get(session_id)

    def interaction_page(
        self, session_id: uuid.UUID, first: int | None, after: str | None
    ) -> asyncio.Future[Page[Interaction]]:
        """``InterviewSession.interactionsConnection``'s page."""
        req = self.service.interactions.page_request(session_id, first, after)
        return self._pages.get((session_id, req))

    def interaction_count(self, session_id: uuid.UUID) -> asyncio.Future[int]:
        return self._counts.get(session_id)

    async def written(
        self, session_ids: Sequence[uuid.UUID], parts: tuple[Children, ...]
    ) -> list[tuple[str, ...]]:
        """Each session's lists as JSON arrays written by the storage, per part."""
        db: Any = self.service.db
        found = await written_lists(
            db, getattr(db, "dialect", ""), self.user.user_id, session_ids, parts
        )
        return [found[sid] for sid in session_ids]

    async def session_json(self, projection: Projection, *, id: str) -> str | None:
        """``Query.session`` written whole by the storage; None: the resolver
        answers (with its error: missing, someone else's, a bad id)."""
        try:
            sid = parse_uuid(id)
        except DomainError:
            return None
        db: Any = self.service.db
        dialect = getattr(db, "dialect", "")
        return await written_session(db, dialect, self.user.user_id, sid, projection)

    async def sessions_json(
        self,
        projection: Projection,
        *,
        limit: int | None = None,
        status: SessionStatus | None = None,
    ) -> str:
        """``Query.sessions`` written whole by the storage (the same limit rule)."""
        db: Any = self.service.db
        return await written_sessions(
            db,
            getattr(db, "dialect", ""),
            self.user.user_id,
            projection,
            limit=check_limit(limit),
            status=status,
        )

    # ---------------------------------------------------------------- one call per batch

    async def _load_interactions(
        self, keys: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Interaction]]:
        return await self.service.interactions.for_sessions(self.user, keys)

    async def _load_metrics(self, keys: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Metric]]:
        return await self.service.metrics.for_sessions(self.user, keys)

    async def _load_pages(
        self, keys: Sequence[tuple[uuid.UUID, PageRequest]]
    ) -> dict[tuple[uuid.UUID, PageRequest], Page[Interaction]]:
        interactions = self.service.interactions
        found: dict[tuple[uuid.UUID, PageRequest], Page[Interaction]] = {}
        # First pages (the common case) in one statement per page size...
        for size in {r.size for _s, r in keys if r == PageRequest(r.size)}:
            sids = [s for s, r in keys if r == PageRequest(size)]
            pages = await interactions.first_pages(self.user, sids, size)
            found.update({(sid, PageRequest(size)): pages[sid] for sid in sids})
        # ... a later page (one session paging on) on its own.
        rest = [k for k in keys if k not in found]
        pages_on = await asyncio.gather(*(interactions.page(self.user, s, r) for s, r in rest))
        found.update(zip(rest, pages_on, strict=True))
        return found

    async def _load_counts(self, keys: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        return await self.service.interactions.counts(self.user, keys)
