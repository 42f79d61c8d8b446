"""The per-request GraphQL context: built once per request, never shared.

It carries the principal (or None), the service, and the execution's batched
reads (app/queries/reads.py), made fresh for every execution: nothing read is
kept across requests, operations or subscription events, nor shared between
users. Each service call takes its own pooled connection (or the request's
transaction), which is what makes concurrent resolvers safe.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec
import strawberry
from strawberry.litestar import BaseContext

from app.domain.records import Principal
from app.domain.service import Service
from app.errors import Unauthorized
from app.queries.reads import Reads


class Context(BaseContext, kw_only=True):
    service: Service
    principal: Principal | None
    request_id: str
    # WebSocket connections only: the connection_init payload, and the socket's state.
    connection_params: dict[str, Any] | None = None
    connection: Any = None
    # connection_init's "after": where a reconnecting client's subscriptions
    # that name no cursor of their own resume (README, "Reconnecting").
    resume_after: str | None = None
    # This execution's batched reads (app/queries/reads.py), made when first used.
    batched: Reads | None = None

    @property
    def reads(self) -> Reads:
        """The batched reads of this execution (an HTTP request, an operation
        on a socket, an event of a subscription: see ``fresh``)."""
        reads = self.batched
        if reads is None:
            reads = self.batched = Reads(self.service, self.user())
        return reads

    def fresh(self) -> Context:
        """This context with no read batched yet: each execution (an HTTP
        request, each operation on a socket, each event of a subscription)
        reads what is stored now, never what an earlier one read."""
        return msgspec.structs.replace(self, batched=None)

    def user(self) -> Principal:
        """The caller, or UNAUTHENTICATED."""
        if self.principal is None:
            raise Unauthorized()
        return self.principal


Info: TypeAlias = strawberry.Info[Context, Any]


def build_context(service: Service, principal: Principal | None, request_id: str) -> Context:
    return Context(service=service, principal=principal, request_id=request_id)
