"""The per-request GraphQL context: built once per request, never shared.

It carries the principal (or None), the service, and the DataLoaders that
batch ``InterviewSession.interactions`` and ``.metrics`` into one statement
each. Loaders are created per request, so nothing is cached across requests
or users. Each service call takes its own pooled connection and transaction,
which is what makes concurrent resolvers safe.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

import msgspec
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext

from app.domain.paging import Page, PageRequest
from app.domain.projection import Children, Projection
from app.domain.records import Interaction, Metric, Principal, SessionStatus
from app.domain.service import Service
from app.errors import Unauthorized


class Context(BaseContext, kw_only=True):
    service: Service
    principal: Principal | None
    request_id: str
    # WebSocket connections only: the connection_init payload, and the socket's state.
    connection_params: dict[str, Any] | None = None
    connection: Any = None
    # The request's DataLoaders, each made when first used (most requests use none).
    loaders: dict[str, DataLoader[Any, Any]] = {}

    def _loader(self, name: str, load: Any) -> DataLoader[Any, Any]:
        loader = self.loaders.get(name)
        if loader is None:
            loader = self.loaders[name] = DataLoader(load_fn=load)
        return loader

    @property
    def interactions(self) -> DataLoader[uuid.UUID, list[Interaction]]:
        return self._loader("interactions", self._load_interactions)

    @property
    def metrics(self) -> DataLoader[uuid.UUID, list[Metric]]:
        return self._loader("metrics", self._load_metrics)

    @property
    def interaction_pages(self) -> DataLoader[tuple[uuid.UUID, PageRequest], Page[Interaction]]:
        return self._loader("interaction_pages", self._load_pages)

    @property
    def interaction_counts(self) -> DataLoader[uuid.UUID, int]:
        return self._loader("interaction_counts", self._load_counts)

    async def _load_interactions(self, keys: Sequence[uuid.UUID]) -> list[list[Interaction]]:
        found = await self.service.interactions.for_sessions(self.user(), keys)
        return [found[k] for k in keys]

    async def _load_metrics(self, keys: Sequence[uuid.UUID]) -> list[list[Metric]]:
        found = await self.service.metrics.for_sessions(self.user(), keys)
        return [found[k] for k in keys]

    async def _load_pages(
        self, keys: Sequence[tuple[uuid.UUID, PageRequest]]
    ) -> list[Page[Interaction]]:
        principal = self.user()
        service = self.service
        found: dict[tuple[uuid.UUID, PageRequest], Page[Interaction]] = {}
        # First pages (the common case) in one statement per page size...
        for size in {r.size for _s, r in keys if r == PageRequest(r.size)}:
            sids = [s for s, r in keys if r == PageRequest(size)]
            pages = await service.interactions.first_pages(principal, sids, size)
            found.update({(sid, PageRequest(size)): pages[sid] for sid in sids})
        # ... a later page (one session paging on) on its own.
        rest = [k for k in keys if k not in found]
        for key, page in zip(
            rest,
            await asyncio.gather(*(service.interactions.page(principal, s, r) for s, r in rest)),
            strict=True,
        ):
            found[key] = page
        return [found[k] for k in keys]

    async def _load_counts(self, keys: Sequence[uuid.UUID]) -> list[int]:
        counts = await self.service.interactions.counts(self.user(), keys)
        return [counts[k] for k in keys]

    def fresh(self) -> Context:
        """This context with no DataLoader yet: each execution (an HTTP
        request, each operation on a socket, each event of a subscription)
        reads what is stored now, never what an earlier one cached."""
        return msgspec.structs.replace(self, loaders={})

    def user(self) -> Principal:
        """The caller, or UNAUTHENTICATED."""
        if self.principal is None:
            raise Unauthorized()
        return self.principal

    async def interaction_page(
        self, session: Any, first: int | None, after: str | None
    ) -> Page[Interaction]:
        """``InterviewSession.interactionsConnection``: batched over the sessions."""
        req = self.service.interactions.page_request(session.id, first, after)
        return await self.interaction_pages.load((session.id, req))

    async def interaction_count(self, session: Any) -> int:
        return await self.interaction_counts.load(session.id)

    # What the compiled plans call when the storage writes the answer (see
    # app.domain.projection): the same service rules, the JSON written.

    async def written(
        self, keys: Sequence[uuid.UUID], parts: tuple[Children, ...]
    ) -> list[tuple[str, ...]]:
        """The ``interactions``/``metrics`` loaders' lists, per session, as JSON."""
        found = await self.service.sessions.children_json(self.user(), keys, parts)
        return [found[k] for k in keys]

    async def session_json(self, projection: Projection, *, id: str) -> str | None:
        """``Query.session`` written; None: let the resolver answer (an error)."""
        return await self.service.sessions.get_json(self.user(), id, projection)

    async def sessions_json(
        self,
        projection: Projection,
        *,
        limit: int | None = None,
        status: SessionStatus | None = None,
    ) -> str:
        """``Query.sessions`` written."""
        return await self.service.sessions.list_json(
            self.user(), projection, limit=limit, status=status
        )


Info: TypeAlias = strawberry.Info[Context, Any]


def build_context(service: Service, principal: Principal | None, request_id: str) -> Context:
    return Context(service=service, principal=principal, request_id=request_id)
