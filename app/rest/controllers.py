"""The documented REST routes. Thin: parse, call the service, return its records."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, NamedTuple, TypeVar

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, SkipValidation

from app.context import ErrorBody, principal_of
from app.domain.records import (
    Analytics,
    CreateInteraction,
    CreateSession,
    Interaction,
    Metric,
    Principal,
    RecordMetrics,
    Session,
    SessionDetails,
    SessionStatus,
    UpdateInteraction,
    UpdateSession,
)
from app.domain.service import Service
from app.domain.validation import parse
from app.errors import BadRequest, Unauthorized
from app.rest.errors import MISSING_BODY

T = TypeVar("T")


class Call(NamedTuple):
    """Who is calling, and the service to call: one dependency per request."""

    user: Principal
    service: Service


def caller(request: Request[Any, Any, Any]) -> Call:
    """The ``call`` dependency of every route. The pipeline refuses anonymous
    requests to these routes before they get here (so a malformed body from a
    stranger is a 401, not a 400); this is the second lock on the door."""
    principal = principal_of(request.scope)  # type: ignore[arg-type]
    if principal is None:
        raise Unauthorized()
    return Call(principal, request.app.state.service)


# The handlers' ``call`` parameter: injected by Litestar from ``caller``.
Caller = NamedDependency[Call]


def body(kind: type[T], data: Any) -> T:
    """The one strict parse of a request body, by the domain's rules.

    Handlers take their body as ``SkipValidation[JSONBody[...]]``: the OpenAPI
    document still shows the struct, but Litestar hands over the decoded JSON
    untouched (its own conversion is lax: ``"5"`` would pass for an integer).
    """
    if data is None or data == b"" or data == "":
        raise BadRequest(MISSING_BODY)
    return parse(kind, data)


_DESCRIPTIONS = {
    400: "Validation failed, a malformed id, or a forbidden status transition",
    401: "Missing, malformed, expired or forged bearer token",
    403: "The session belongs to another user",
    404: "No such session or interaction",
    409: "Too many active sessions, or a concurrent modification",
    429: "Rate limit exceeded (see Retry-After)",
    503: "The database cannot be reached",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a route can give."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[code])
        for code in (400, 401, 429, 503, *codes)
    }


# Typed as str so a malformed id reaches the domain's contract message; the
# OpenAPI document still says what a valid one looks like.
SessionId = Annotated[
    str, Parameter(description="Session id (UUID)", schema_extra={"format": "uuid"})
]
InteractionId = Annotated[
    str, Parameter(description="Interaction id (UUID)", schema_extra={"format": "uuid"})
]


class InterviewSessionController(Controller):
    path = "/interview-sessions"
    tags = ["interview-sessions"]
    security = [{"BearerToken": []}]
    dependencies = {"call": Provide(caller, sync_to_thread=False)}

    # ---------------------------------------------------------------- sessions

    @post("/", summary="Create interview session", responses=errors(409))
    async def create_session(
        self, call: Caller, data: SkipValidation[JSONBody[CreateSession]]
    ) -> Session:
        """Creates a new, active session for the authenticated user."""
        return await call.service.sessions.create(call.user, body(CreateSession, data))

    @get("/", summary="Get user sessions", responses=errors())
    async def list_sessions(
        self,
        call: Caller,
        limit: Annotated[
            int | None,
            Parameter(
                description="Maximum number of sessions (1..1000)",
                schema_extra={"minimum": 1, "maximum": 1000},
            ),
        ] = None,
    ) -> list[Session]:
        """The user's sessions, newest first."""
        return await call.service.sessions.list_sessions(call.user, limit=limit)

    @get("/active", summary="Get active sessions", responses=errors())
    async def active_sessions(self, call: Caller) -> list[Session]:
        """Only the user's active sessions, newest first."""
        return await call.service.sessions.active(call.user)

    @get("/analytics", summary="Get user analytics", responses=errors())
    async def analytics(
        self,
        call: Caller,
        startDate: Annotated[
            date | None, Parameter(description="First UTC day (YYYY-MM-DD)")
        ] = None,
        endDate: Annotated[date | None, Parameter(description="Last UTC day (YYYY-MM-DD)")] = None,
    ) -> Analytics:
        """Aggregates over the sessions created in the window (both days inclusive)."""
        return await call.service.analytics.for_user(call.user, startDate, endDate)

    @get("/{session_id:str}", summary="Get session by id", responses=errors(403, 404))
    async def get_session(self, call: Caller, session_id: SessionId) -> Session:
        return await call.service.sessions.get(call.user, session_id)

    @get(
        "/{session_id:str}/details",
        summary="Get session with interactions and metrics",
        responses=errors(403, 404),
    )
    async def session_details(self, call: Caller, session_id: SessionId) -> SessionDetails:
        return await call.service.sessions.details(call.user, session_id)

    @put("/{session_id:str}", summary="Update session", responses=errors(403, 404, 409))
    async def update_session(
        self, call: Caller, session_id: SessionId, data: SkipValidation[JSONBody[UpdateSession]]
    ) -> Session:
        """Replaces each top-level field given; a status change follows the state machine."""
        return await call.service.sessions.update(call.user, session_id, body(UpdateSession, data))

    @put(
        "/{session_id:str}/start",
        summary="Start or resume session",
        responses=errors(403, 404, 409),
    )
    async def start_session(self, call: Caller, session_id: SessionId) -> Session:
        return await call.service.sessions.set_status(call.user, session_id, SessionStatus.ACTIVE)

    @put("/{session_id:str}/pause", summary="Pause session", responses=errors(403, 404, 409))
    async def pause_session(self, call: Caller, session_id: SessionId) -> Session:
        return await call.service.sessions.set_status(call.user, session_id, SessionStatus.PAUSED)

    @put("/{session_id:str}/complete", summary="Complete session", responses=errors(403, 404, 409))
    async def complete_session(self, call: Caller, session_id: SessionId) -> Session:
        return await call.service.sessions.set_status(
            call.user, session_id, SessionStatus.COMPLETED
        )

    @delete("/{session_id:str}", summary="Delete session", responses=errors(403, 404))
    async def delete_session(self, call: Caller, session_id: SessionId) -> None:
        """Permanently deletes the session with its interactions and metrics."""
        await call.service.sessions.delete(call.user, session_id)

    # ---------------------------------------------------------------- interactions

    @post("/interactions", summary="Create interaction", responses=errors(403, 404))
    async def create_interaction(
        self, call: Caller, data: SkipValidation[JSONBody[CreateInteraction]]
    ) -> Interaction:
        return await call.service.interactions.create(call.user, body(CreateInteraction, data))

    @get(
        "/{session_id:str}/interactions",
        summary="Get session interactions",
        responses=errors(403, 404),
    )
    async def list_interactions(self, call: Caller, session_id: SessionId) -> list[Interaction]:
        """Oldest first."""
        return await call.service.interactions.list_for_session(call.user, session_id)

    @put(
        "/interactions/{interaction_id:str}",
        summary="Update interaction",
        responses=errors(403, 404),
    )
    async def update_interaction(
        self,
        call: Caller,
        interaction_id: InteractionId,
        data: SkipValidation[JSONBody[UpdateInteraction]],
    ) -> Interaction:
        return await call.service.interactions.update(
            call.user, interaction_id, body(UpdateInteraction, data)
        )

    # ---------------------------------------------------------------- metrics

    @post("/metrics", summary="Record metrics", responses=errors(403, 404))
    async def record_metrics(
        self, call: Caller, data: SkipValidation[JSONBody[RecordMetrics]]
    ) -> Metric:
        return await call.service.metrics.record(call.user, body(RecordMetrics, data))

    @get("/{session_id:str}/metrics", summary="Get session metrics", responses=errors(403, 404))
    async def list_metrics(self, call: Caller, session_id: SessionId) -> list[Metric]:
        """Oldest first."""
        return await call.service.metrics.list_for_session(call.user, session_id)
