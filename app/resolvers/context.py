"""The per-request GraphQL context: built once per request, never shared.

It carries the principal (or None), the service, and the DataLoaders that
batch ``InterviewSession.interactions`` and ``.metrics`` into one statement
each. Loaders are created per request, so nothing is cached across requests
or users. Each service call takes its own pooled connection and transaction,
which is what makes concurrent resolvers safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext

from app.domain.records import Interaction, Metric, Principal
from app.domain.service import Service
from app.errors import Unauthorized


class Context(BaseContext, kw_only=True):
    service: Service
    principal: Principal | None
    request_id: str
    interactions: DataLoader[uuid.UUID, list[Interaction]]
    metrics: DataLoader[uuid.UUID, list[Metric]]

    def user(self) -> Principal:
        """The caller, or UNAUTHENTICATED."""
        if self.principal is None:
            raise Unauthorized()
        return self.principal


Info: TypeAlias = strawberry.Info[Context, Any]


def build_context(service: Service, principal: Principal | None, request_id: str) -> Context:
    async def load_interactions(keys: Sequence[uuid.UUID]) -> list[list[Interaction]]:
        if principal is None:
            raise Unauthorized()
        found = await service.interactions.for_sessions(principal, keys)
        return [found[k] for k in keys]

    async def load_metrics(keys: Sequence[uuid.UUID]) -> list[list[Metric]]:
        if principal is None:
            raise Unauthorized()
        found = await service.metrics.for_sessions(principal, keys)
        return [found[k] for k in keys]

    return Context(
        service=service,
        principal=principal,
        request_id=request_id,
        interactions=DataLoader(load_fn=load_interactions),  # type: ignore[arg-type]
        metrics=DataLoader(load_fn=load_metrics),  # type: ignore[arg-type]
    )
