"""Query resolvers: parse, call the service, return its records."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from app.domain.paging import session_filter
from app.domain.records import Analytics, Session, SessionStatus
from app.resolvers.context import Info
from app.schema.inputs import SessionFilter
from app.schema.types import (
    RECORD,
    WRITTEN,
    InterviewSession,
    SessionConnection,
    UserAnalytics,
    lazy_edges,
    page_info,
)

SessionId = Annotated[strawberry.ID, strawberry.argument(description="The session's id (UUID)")]


@strawberry.type(description="What you can read: your sessions and their analytics")
class Query:
    @strawberry.field(
        graphql_type=InterviewSession,
        description="One of your sessions, by id",
        metadata={WRITTEN: "session_json", RECORD: Session},
    )
    async def session(self, info: Info, id: SessionId) -> Session:
        ctx = info.context
        return await ctx.service.sessions.get(ctx.user(), id)

    @strawberry.field(
        graphql_type=list[InterviewSession],
        description="Your sessions, newest first; limit 1..1000 (default all, up to 1000)",
        metadata={WRITTEN: "sessions_json", RECORD: Session},
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
        description="Your sessions a page at a time, newest first, filtered (Relay cursors)"
    )
    async def sessions_connection(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size from the start, 1..100")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Rows after this cursor (with first)")
        ] = None,
        last: Annotated[
            int | None, strawberry.argument(description="Page size from the end, 1..100")
        ] = None,
        before: Annotated[
            str | None, strawberry.argument(description="Rows before this cursor (with last)")
        ] = None,
        filter: Annotated[
            SessionFilter | None, strawberry.argument(description="Which sessions to list")
        ] = None,
    ) -> SessionConnection:
        ctx = info.context
        user = ctx.user()
        sessions = ctx.service.sessions
        req = sessions.page_request(user, first=first, after=after, last=last, before=before)
        f = filter or SessionFilter()
        flt = session_filter(
            status=f.status,
            created_from=f.created_from,
            created_to=f.created_to,
            search=f.search,
            interview_type=f.interview_type,
        )
        page = await sessions.page(user, flt, req)
        return SessionConnection(
            edges=lazy_edges(page),
            page_info=page_info(page),
            count=lambda: sessions.count(user, flt),
        )

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
