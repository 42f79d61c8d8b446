"""Live events for REST clients: Server-Sent Events.

``GET /interview-sessions/events`` (every session of the caller) and
``GET /interview-sessions/{id}/events``: each event is one SSE message, ``id:``
its cursor, ``event:`` its type in lower case, ``data:`` the event as JSON with
the REST field names. ``Last-Event-ID`` (what browsers send when they
reconnect) or ``?after=`` resumes exactly after that event. Ownership and
errors are answered before the stream starts; a comment every
``SSE_HEARTBEAT_SECONDS`` keeps proxies from closing an idle stream; the
stream ends when the token expires or the server stops.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.domain.live import Subscription
from app.domain.records import Interaction, Metric, Session, SessionEventType
from app.domain.records import SessionEvent as Event
from app.metrics import LIVE_EVENTS_DELIVERED, LIVE_SUBSCRIPTIONS
from app.rest.controllers import Caller, SessionId, caller, check_request
from app.rest.openapi import errors


class EventBody(msgspec.Struct, rename="camel"):
    """``data:`` of an SSE message: the event with the REST field names."""

    cursor: str
    type: SessionEventType
    session_id: uuid.UUID
    at: datetime
    session: Session | None
    interaction: Interaction | None
    metric: Metric | None


class Streams:
    """The open SSE streams of this process, so a stopping server ends them."""

    def __init__(self, heartbeat: float) -> None:
        self.heartbeat = heartbeat
        self.open: set[Subscription] = set()
        self.closing = False

    def close_all(self) -> None:
        self.closing = True
        for subscription in list(self.open):
            subscription.interrupt()


def _message(live: Any, event: Event) -> ServerSentEventMessage:
    cursor = live.cursor(event)
    body = EventBody(
        cursor=cursor,
        type=event.type,
        session_id=event.session_id,
        at=event.at,
        session=event.session,
        interaction=event.interaction,
        metric=event.metric,
    )
    return ServerSentEventMessage(
        data=msgspec.json.encode(body).decode(), event=event.type.value, id=cursor
    )


async def _messages(
    live: Any, streams: Streams, subscription: Subscription, expires: float | None
) -> AsyncGenerator[ServerSentEventMessage, None]:
    streams.open.add(subscription)
    LIVE_SUBSCRIPTIONS.inc()
    try:
        # A comment (no data: not an event for the client) and the reconnect delay.
        yield ServerSentEventMessage(comment="connected", data=None, retry=2000)
        while not streams.closing and (expires is None or time.time() < expires):
            event = await subscription.next_within(streams.heartbeat)
            if streams.closing:
                return
            if event is None:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
            else:
                yield _message(live, event)
                LIVE_EVENTS_DELIVERED.inc()
                if subscription.ended:  # the session was deleted: nothing more comes
                    return
    finally:
        LIVE_SUBSCRIPTIONS.dec()
        streams.open.discard(subscription)
        subscription.close()


After = Annotated[
    str | None,
    Parameter(
        description="Resume after this event's cursor (the same as the Last-Event-ID header)"
    ),
]
AccessToken = Annotated[
    str | None,
    QueryParameter(
        name="access_token",
        description="The bearer token, for a browser's EventSource, which cannot send "
        "headers (RFC 6750, 2.3). Only on the event streams; never logged.",
    ),
]
LastEventId = Annotated[
    str | None,
    HeaderParameter(name="last-event-id", description="Sent by browsers when they reconnect"),
]
SSE_ERRORS = errors(400, 403, 404, s400=["malformed id", "bad cursor"], s404=["no session"])


async def _stream(
    request: Request[Any, Any, Any], call: Any, session_id: str | None, after: str | None
) -> ServerSentEvent:
    live = call.service.live
    subscription = await live.subscribe(call.user, session_id, after)
    streams: Streams = request.app.state.streams
    expires = (request.scope.get("state") or {}).get("expires")
    return ServerSentEvent(
        _messages(live, streams, subscription, expires),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class EventStreamController(Controller):
    """The SSE routes, beside the other /interview-sessions routes (same
    dependency for the caller, same checks of every request)."""

    path = "/interview-sessions"
    tags = ["interview-sessions"]
    security = [{"BearerToken": []}]
    dependencies = {"call": Provide(caller, sync_to_thread=False)}
    before_request = check_request  # type: ignore[assignment]  # Litestar calls it unbound

    @get(
        "/events",
        summary="Live events of all your sessions (Server-Sent Events)",
        responses=errors(400, s400=["bad cursor"]),
        media_type="text/event-stream",
        operation_id="myEvents",
    )
    async def my_events(
        self,
        request: Request[Any, Any, Any],
        call: Caller,
        after: After = None,
        last_event_id: LastEventId = None,
        access_token: AccessToken = None,  # read by the pipeline (app/pipeline)
    ) -> ServerSentEvent:
        """Every change of every session of the caller, as it commits."""
        return await _stream(request, call, None, after or last_event_id)

    @get(
        "/{session_id:str}/events",
        summary="Live events of one session (Server-Sent Events)",
        responses=SSE_ERRORS,
        media_type="text/event-stream",
        operation_id="sessionEvents",
    )
    async def session_events(
        self,
        request: Request[Any, Any, Any],
        call: Caller,
        session_id: SessionId,
        after: After = None,
        last_event_id: LastEventId = None,
        access_token: AccessToken = None,  # read by the pipeline (app/pipeline)
    ) -> ServerSentEvent:
        """Every change of one session, as it commits."""
        return await _stream(request, call, session_id, after or last_event_id)
