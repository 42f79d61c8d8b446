"""The documented REST routes. Thin: parse, call the service, return its records."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

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
from app.gateway import principal_of
from app.rest.errors import ErrorBody


def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: anonymous requests get 401 before the body, query or path is parsed.

    Litestar decodes the JSON body before it resolves dependencies, so without
    this guard an anonymous request with a malformed body answered 400, not 401.
    """
    if principal_of(connection.scope) is None:  # type: ignore[arg-type]
        raise Unauthorized()


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Validate a JSON body strictly with the domain's ``parse``, as GraphQL does.

    Litestar converts bodies in msgspec's lax mode, which accepts ``"5"`` for an
    integer and ``"true"`` for a boolean; the contract wants the JSON types. An
    empty or malformed body is left to Litestar, which reports it.
    """
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return
    raw = await request.body()
    if not raw:
        return
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return
    except RecursionError:
        raise BadRequest("JSON body is nested too deeply") from None
    parse(field.annotation, data)


def require_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = principal_of(request.scope)  # type: ignore[arg-type]
    if principal is None:
        raise Unauthorized()
    return principal


def provide_service(request: Request[Any, Any, Any]) -> Service:
    service: Service = request.app.state.service
    return service


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


User = NamedDependency[Principal]
Svc = NamedDependency[Service]
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
    guards = [authenticated]
    before_request = staticmethod(strict_body)
    dependencies = {
        "user": Provide(require_principal, sync_to_thread=False),
        "service": Provide(provide_service, sync_to_thread=False),
    }

    # ---------------------------------------------------------------- sessions

    @post("/", summary="Create interview session", responses=errors(409))
    async def create_session(
        self, user: User, service: Svc, data: JSONBody[CreateSession]
    ) -> Session:
        """Creates a new, active session for the authenticated user."""
        return await service.sessions.create(user, data)

    @get("/", summary="Get user sessions", responses=errors())
    async def list_sessions(
        self,
        user: User,
        service: Svc,
        limit: Annotated[
            int | None,
            Parameter(
                description="Maximum number of sessions (1..1000)",
                schema_extra={"minimum": 1, "maximum": 1000},
            ),
        ] = None,
    ) -> list[Session]:
        """The user's sessions, newest first."""
        return await service.sessions.list_sessions(user, limit=limit)

    @get("/active", summary="Get active sessions", responses=errors())
    async def active_sessions(self, user: User, service: Svc) -> list[Session]:
        """Only the user's active sessions, newest first."""
        return await service.sessions.active(user)

    @get("/analytics", summary="Get user analytics", responses=errors())
    async def analytics(
        self,
        user: User,
        service: Svc,
        startDate: Annotated[
            date | None, Parameter(description="First UTC day (YYYY-MM-DD)")
        ] = None,
        endDate: Annotated[date | None, Parameter(description="Last UTC day (YYYY-MM-DD)")] = None,
    ) -> Analytics:
        """Aggregates over the sessions created in the window (both days inclusive)."""
        return await service.analytics.for_user(user, startDate, endDate)

    @get("/{session_id:str}", summary="Get session by id", responses=errors(403, 404))
    async def get_session(self, user: User, service: Svc, session_id: SessionId) -> Session:
        return await service.sessions.get(user, session_id)

    @get(
        "/{session_id:str}/details",
        summary="Get session with interactions and metrics",
        responses=errors(403, 404),
    )
    async def session_details(
        self, user: User, service: Svc, session_id: SessionId
    ) -> SessionDetails:
        return await service.sessions.details(user, session_id)

    @put("/{session_id:str}", summary="Update session", responses=errors(403, 404, 409))
    async def update_session(
        self, user: User, service: Svc, session_id: SessionId, data: JSONBody[UpdateSession]
    ) -> Session:
        """Replaces each top-level field given; a status change follows the state machine."""
        return await service.sessions.update(user, session_id, data)

    @put(
        "/{session_id:str}/start",
        summary="Start or resume session",
        responses=errors(403, 404, 409),
    )
    async def start_session(self, user: User, service: Svc, session_id: SessionId) -> Session:
        return await service.sessions.set_status(user, session_id, SessionStatus.ACTIVE)

    @put("/{session_id:str}/pause", summary="Pause session", responses=errors(403, 404, 409))
    async def pause_session(self, user: User, service: Svc, session_id: SessionId) -> Session:
        return await service.sessions.set_status(user, session_id, SessionStatus.PAUSED)

    @put("/{session_id:str}/complete", summary="Complete session", responses=errors(403, 404, 409))
    async def complete_session(self, user: User, service: Svc, session_id: SessionId) -> Session:
        return await service.sessions.set_status(user, session_id, SessionStatus.COMPLETED)

    @delete("/{session_id:str}", summary="Delete session", responses=errors(403, 404))
    async def delete_session(self, user: User, service: Svc, session_id: SessionId) -> None:
        """Permanently deletes the session with its interactions and metrics."""
        await service.sessions.delete(user, session_id)

    # ---------------------------------------------------------------- interactions

    @post("/interactions", summary="Create interaction", responses=errors(403, 404))
    async def create_interaction(
        self, user: User, service: Svc, data: JSONBody[CreateInteraction]
    ) -> Interaction:
        return await service.interactions.create(user, data)

    @get(
        "/{session_id:str}/interactions",
        summary="Get session interactions",
        responses=errors(403, 404),
    )
    async def list_interactions(
        self, user: User, service: Svc, session_id: SessionId
    ) -> list[Interaction]:
        """Oldest first."""
        return await service.interactions.list_for_session(user, session_id)

    @put(
        "/interactions/{interaction_id:str}",
        summary="Update interaction",
        responses=errors(403, 404),
    )
    async def update_interaction(
        self,
        user: User,
        service: Svc,
        interaction_id: InteractionId,
        data: JSONBody[UpdateInteraction],
    ) -> Interaction:
        return await service.interactions.update(user, interaction_id, data)

    # ---------------------------------------------------------------- metrics

    @post("/metrics", summary="Record metrics", responses=errors(403, 404))
    async def record_metrics(
        self, user: User, service: Svc, data: JSONBody[RecordMetrics]
    ) -> Metric:
        return await service.metrics.record(user, data)

    @get("/{session_id:str}/metrics", summary="Get session metrics", responses=errors(403, 404))
    async def list_metrics(self, user: User, service: Svc, session_id: SessionId) -> list[Metric]:
        """Oldest first."""
        return await service.metrics.list_for_session(user, session_id)
