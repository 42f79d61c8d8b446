"""Query resolvers: parse, call the service, return its records."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from app.domain.records import Analytics, Session, SessionStatus
from app.resolvers.context import Info
from app.schema.types import InterviewSession, UserAnalytics

SessionId = Annotated[strawberry.ID, strawberry.argument(description="The session's id (UUID)")]


@strawberry.type(description="What you can read: your sessions and their analytics")
class Query:
    @strawberry.field(graphql_type=InterviewSession, description="One of your sessions, by id")
    async def session(self, info: Info, id: SessionId) -> Session:
        ctx = info.context
        return await ctx.service.sessions.get(ctx.user(), id)

    @strawberry.field(
        graphql_type=list[InterviewSession],
        description="Your sessions, newest first; limit 1..1000 (default all, up to 1000)",
    )
    async def sessions(
        self,
        info: Info,
        limit: Annotated[
            int | None, strawberry.argument(description="At most this many, 1..1000 (default 1000)")
        ] = None,
        status: Annotated[
            SessionStatus | None, strawberry.argument(description="Only sessions in this status")
        ] = None,
    ) -> list[Session]:
        ctx = info.context
        return await ctx.service.sessions.list_sessions(ctx.user(), limit=limit, status=status)

    @strawberry.field(
        graphql_type=list[InterviewSession], description="Your active sessions, newest first"
    )
    async def active_sessions(self, info: Info) -> list[Session]:
        ctx = info.context
        return await ctx.service.sessions.active(ctx.user())

    @strawberry.field(
        graphql_type=UserAnalytics,
        description="Aggregates over sessions created between the UTC days (both inclusive)",
    )
    async def analytics(
        self,
        info: Info,
        start_date: Annotated[
            date | None,
            strawberry.argument(description="First UTC day, inclusive (open if absent)"),
        ] = None,
        end_date: Annotated[
            date | None, strawberry.argument(description="Last UTC day, inclusive (open if absent)")
        ] = None,
    ) -> Analytics:
        ctx = info.context
        return await ctx.service.analytics.for_user(ctx.user(), start_date, end_date)
