"""Subscription resolvers: a user's live events, replayed from a cursor, then live.

Everything that can refuse a subscription (a bad id, someone else's or a
missing session, a foreign or expired cursor) is checked when the resolver
runs, before it returns the stream: a refusal is an error answer with its
code, never a silently empty stream. The stream is the domain's
(:mod:`app.domain.live`).

A subscription that names no cursor (``after`` null or absent) on a socket
whose ``connection_init`` carried one (``{"after": "<cursor>"}``) resumes
after that one: a stock ``graphql-ws`` client, which resends each
subscription exactly as first sent when it reconnects, loses nothing if its
``connectionParams`` function returns the last cursor it saw.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

import strawberry

from app.domain.live import Subscription as LiveStream
from app.domain.records import SessionEvent as Event
from app.resolvers.context import Info
from app.schema.types import SessionEvent

After = Annotated[
    str | None,
    strawberry.argument(description="Replay every event after this cursor first (no gap)"),
]


async def _stream(subscription: LiveStream) -> AsyncGenerator[Event, None]:
    """The events of a subscription that passed its checks; closed when the
    client completes or goes away."""
    try:
        async for event in subscription:
            yield event
    finally:
        subscription.close()


@strawberry.type(description="Live events of your sessions (graphql-transport-ws at /graphql)")
class Subscription:
    @strawberry.subscription(
        graphql_type=SessionEvent, description="Every change of one of your sessions"
    )
    async def session_events(
        self,
        info: Info,
        session_id: Annotated[strawberry.ID, strawberry.argument(description="The session (UUID)")],
        after: After = None,
    ) -> AsyncIterator[Event]:
        user = info.context.user()
        after = after if after is not None else info.context.resume_after
        return _stream(await info.context.service.live.subscribe(user, session_id, after))

    @strawberry.subscription(
        graphql_type=SessionEvent, description="Every change of every one of your sessions"
    )
    async def my_events(self, info: Info, after: After = None) -> AsyncIterator[Event]:
        user = info.context.user()
        after = after if after is not None else info.context.resume_after
        return _stream(await info.context.service.live.subscribe(user, None, after))
