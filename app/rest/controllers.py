"""The documented REST routes. Thin: parse, call the service, return its records."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, NamedTuple, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import JSONBody, Parameter, SkipValidation

from app.context import principal_of, request_database
from app.domain.paging import session_filter
from app.domain.records import (
    MAX_LIST_LIMIT,
    Analytics,
    CreateInteraction,
    CreateSession,
    Interaction,
    Metric,
    Principal,
    QuestionType,
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
from app.rest.openapi import errors

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
    service: Service = request.app.state.service
    # A keyed write runs in its own transaction (app/idempotency.py).
    database = request_database(request.scope)  # type: ignore[arg-type]
    return Call(principal, service if database is None else service.within(database))


# The handlers' ``call`` parameter: injected by Litestar from ``caller``.
Caller = NamedDependency[Call]
# The optional body of the state routes (documented as the empty object).


def body(kind: type[T], data: Any) -> T:
    """The one strict parse of a request body, by the domain's rules.

    Handlers take their body as ``SkipValidation[JSONBody[...]]``: the OpenAPI
    document still shows the struct, but Litestar hands over the decoded JSON
    untouched (its own conversion is lax: ``"5"`` would pass for an integer).
    """
    if _empty(data):
        raise BadRequest(MISSING_BODY)
    return parse(kind, data)


def optional_body(kind: type[T], data: Any) -> T | None:
    """As :func:`body`, for routes whose body may be absent (then None): an
    absent body, not a JSON value such as ``""``, which is refused."""
    return None if data is None else parse(kind, data)


E = TypeVar("E", bound=enum.Enum)


def enum_values(kind: type[E], name: str, raw: Sequence[str | None] | None) -> list[E]:
    """Query values (repeated or comma-separated) as enum members, or 400."""
    out = []
    for item in raw or ():
        for value in (item or "").split(","):
            if not value.strip():
                continue
            try:
                out.append(kind(value.strip()))
            except ValueError:
                allowed = ", ".join(m.value for m in kind)
                raise BadRequest(f"{name}: must be one of {allowed}") from None
    return out


async def list_page(
    call: Call,
    path: str,
    query: list[tuple[str, str]],
    *,
    limit: int | None = None,
    cursor: str | None = None,
    status: list[str] | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    q: str | None = None,
    interview_type: str | None = None,
) -> tuple[list[Session], str | None]:
    """``GET /interview-sessions``: one page of sessions, and the ``Link``
    header of the next page (None on the last). ``query``: the request's
    query parameters, repeated in the next page's URL with its cursor."""
    sessions = call.service.sessions
    req = sessions.page_request(
        call.user, first=limit, after=cursor, first_name="limit", maximum=MAX_LIST_LIMIT
    )
    flt = session_filter(
        status=enum_values(SessionStatus, "status", status),
        created_from=created_from,
        created_to=created_to,
        search=q,
        interview_type=next(
            iter(enum_values(QuestionType, "interviewType", [interview_type])), None
        ),
    )
    page = await sessions.page(call.user, flt, req)
    if not page.has_next or page.end_cursor is None:
        return page.items, None
    following = [(k, v) for k, v in query if k != "cursor"]
    following.append(("cursor", page.end_cursor))
    return page.items, f'<{path}?{urlencode(following)}>; rel="next"'


def _empty(data: Any) -> bool:
    return data is None or data == b"" or data == ""


class NoFields(msgspec.Struct, forbid_unknown_fields=True):
    """Body of /start, /pause and /complete: nothing, or an empty JSON object."""


JSON_ONLY = "Content-Type must be application/json"


_QUERY_NAMES: dict[int, frozenset[str]] = {}
NOT_QUERY = frozenset({"call", "request", "data", "session_id", "interaction_id"})


def query_names(handler: Any) -> frozenset[str]:
    """The query parameters a handler declares (read from its signature once)."""
    names = _QUERY_NAMES.get(id(handler))
    if names is None:
        names = frozenset(
            getattr(fd.kwarg_definition, "query", None) or name
            for name, fd in handler.parsed_fn_signature.parameters.items()
            if name not in NOT_QUERY
        )
        _QUERY_NAMES[id(handler)] = names
    return names


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Before any handler: an unknown query parameter is 400 (like an unknown
    body field), and a request that carries a body must say it is JSON (415
    otherwise): a form, XML or text body is not parsed as if it were."""
    if request.scope["query_string"]:
        unknown = sorted(set(request.query_params) - query_names(request.route_handler))
        if unknown:
            messages = [f"{name}: unknown query parameter" for name in unknown]
            raise BadRequest(messages[0] if len(messages) == 1 else messages)
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    headers = request.headers
    length = headers.get("content-length")
    has_body = "transfer-encoding" in headers or (length is not None and length.strip() != "0")
    if has_body and not is_json_media_type(headers.get("content-type")):
        raise HTTPException(status_code=415, detail=JSON_ONLY)
    if has_body:
        try:  # JSON is UTF-8; the decoder would fail on it as a server error
            (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("Request body is not valid UTF-8") from None


def is_json_media_type(value: str | None) -> bool:
    if not value:
        return False
    media, _, params = value.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return False
    charset = next(
        (
            p.split("=", 1)[1].strip().strip('"').lower()
            for p in params.split(";")
            if "=" in p and p.split("=", 1)[0].strip().lower() == "charset"
        ),
        "utf-8",
    )
    return charset in ("utf-8", "utf8")


# The error answers of each kind of route, with real examples (app/rest/openapi.py).
_BODY = ["a field is missing", "several problems", "malformed id"]
CREATE_SESSION = errors(400, 409, s400=_BODY, s409=["active cap"])
LIST = errors(400, s400=["bad limit", "bad cursor"])
ACTIVE = errors()
ANALYTICS = errors(400, s400=["bad window"])
ONE_SESSION = errors(400, 403, 404, s400=["malformed id"], s404=["no session"])
UPDATE_SESSION = errors(
    400, 403, 404, 409, s400=[*_BODY, "completed is final"], s404=["no session"]
)
STATE = errors(400, 403, 404, 409, s400=["malformed id", "completed is final"], s404=["no session"])
CREATE_INTERACTION = errors(400, 403, 404, s400=_BODY, s404=["no session"])
UPDATE_INTERACTION = errors(400, 403, 404, s400=_BODY, s404=["no interaction"])
RECORD_METRICS = errors(400, 403, 404, s400=_BODY, s404=["no session"])

StateBody = SkipValidation[JSONBody[NoFields | None]]

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
    before_request = check_request  # type: ignore[assignment]  # Litestar calls it unbound

    # ---------------------------------------------------------------- sessions

    @post(
        "/",
        summary="Create interview session",
        responses=CREATE_SESSION,
        operation_id="createSession",
    )
    async def create_session(
        self, call: Caller, data: SkipValidation[JSONBody[CreateSession]]
    ) -> Session:
        """Creates a new, active session for the authenticated user."""
        return await call.service.sessions.create(call.user, body(CreateSession, data))

    @get("/", summary="Get user sessions", responses=LIST, operation_id="listSessions")
    async def list_sessions(
        self,
        call: Caller,
        request: Request[Any, Any, Any],
        limit: Annotated[
            int | None,
            Parameter(
                description="Sessions per page (1..1000; default all, up to 1000)",
                schema_extra={"minimum": 1, "maximum": MAX_LIST_LIMIT},
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            Parameter(description="The next page: the cursor from the Link header's rel=next"),
        ] = None,
        status: Annotated[
            list[str] | None,
            Parameter(
                description="Only these statuses (active, paused, completed): repeated, "
                "or comma-separated"
            ),
        ] = None,
        createdFrom: Annotated[
            date | None, Parameter(description="Created on or after this UTC day (YYYY-MM-DD)")
        ] = None,
        createdTo: Annotated[
            date | None, Parameter(description="Created on or before this UTC day (YYYY-MM-DD)")
        ] = None,
        q: Annotated[
            str | None,
            Parameter(description="Case-insensitive substring of title, company or description"),
        ] = None,
        interviewType: Annotated[
            str | None, Parameter(description="The job context's interview type")
        ] = None,
    ) -> Response[list[Session]]:
        """The user's sessions, newest first. When more follow, the ``Link``
        header carries the next page's URL (``rel="next"``)."""
        items, link = await list_page(
            call,
            request.url.path,
            list(request.query_params.multi_items()),
            limit=limit,
            cursor=cursor,
            status=status,
            created_from=createdFrom,
            created_to=createdTo,
            q=q,
            interview_type=interviewType,
        )
        return Response(items, headers={"Link": link} if link else {})

    @get(
        "/active",
        summary="Get active sessions",
        responses=ACTIVE,
        operation_id="listActiveSessions",
    )
    async def active_sessions(self, call: Caller) -> list[Session]:
        """Only the user's active sessions, newest first."""
        return await call.service.sessions.active(call.user)

    @get(
        "/analytics", summary="Get user analytics", responses=ANALYTICS, operation_id="getAnalytics"
    )
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

    @get(
        "/{session_id:str}",
        summary="Get session by id",
        responses=ONE_SESSION,
        operation_id="getSession",
    )
    async def get_session(self, call: Caller, session_id: SessionId) -> Session:
        return await call.service.sessions.get(call.user, session_id)

    @get(
        "/{session_id:str}/details",
        summary="Get session with interactions and metrics",
        responses=ONE_SESSION,
        operation_id="getSessionDetails",
    )
    async def session_details(self, call: Caller, session_id: SessionId) -> SessionDetails:
        return await call.service.sessions.details(call.user, session_id)

    @put(
        "/{session_id:str}",
        summary="Update session",
        responses=UPDATE_SESSION,
        operation_id="updateSession",
    )
    async def update_session(
        self, call: Caller, session_id: SessionId, data: SkipValidation[JSONBody[UpdateSession]]
    ) -> Session:
        """Replaces each top-level field given; a status change follows the state machine."""
        return await call.service.sessions.update(call.user, session_id, body(UpdateSession, data))

    @put(
        "/{session_id:str}/start",
        summary="Start or resume session",
        responses=STATE,
        operation_id="startSession",
    )
    async def start_session(
        self, call: Caller, session_id: SessionId, data: StateBody = None
    ) -> Session:
        optional_body(NoFields, data)
        return await call.service.sessions.set_status(call.user, session_id, SessionStatus.ACTIVE)

    @put(
        "/{session_id:str}/pause",
        summary="Pause session",
        responses=STATE,
        operation_id="pauseSession",
    )
    async def pause_session(
        self, call: Caller, session_id: SessionId, data: StateBody = None
    ) -> Session:
        optional_body(NoFields, data)
        return await call.service.sessions.set_status(call.user, session_id, SessionStatus.PAUSED)

    @put(
        "/{session_id:str}/complete",
        summary="Complete session",
        responses=STATE,
        operation_id="completeSession",
    )
    async def complete_session(
        self, call: Caller, session_id: SessionId, data: StateBody = None
    ) -> Session:
        optional_body(NoFields, data)
        return await call.service.sessions.set_status(
            call.user, session_id, SessionStatus.COMPLETED
        )

    @delete(
        "/{session_id:str}",
        summary="Delete session",
        responses=ONE_SESSION,
        operation_id="deleteSession",
    )
    async def delete_session(self, call: Caller, session_id: SessionId) -> None:
        """Permanently deletes the session with its interactions and metrics."""
        await call.service.sessions.delete(call.user, session_id)

    # ---------------------------------------------------------------- interactions

    @post(
        "/interactions",
        summary="Create interaction",
        responses=CREATE_INTERACTION,
        operation_id="createInteraction",
    )
    async def create_interaction(
        self, call: Caller, data: SkipValidation[JSONBody[CreateInteraction]]
    ) -> Interaction:
        return await call.service.interactions.create(call.user, body(CreateInteraction, data))

    @get(
        "/{session_id:str}/interactions",
        summary="Get session interactions",
        responses=ONE_SESSION,
        operation_id="listInteractions",
    )
    async def list_interactions(self, call: Caller, session_id: SessionId) -> list[Interaction]:
        """Oldest first."""
        return await call.service.interactions.list_for_session(call.user, session_id)

    @put(
        "/interactions/{interaction_id:str}",
        summary="Update interaction",
        responses=UPDATE_INTERACTION,
        operation_id="updateInteraction",
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

    @post(
        "/metrics", summary="Record metrics", responses=RECORD_METRICS, operation_id="recordMetrics"
    )
    async def record_metrics(
        self, call: Caller, data: SkipValidation[JSONBody[RecordMetrics]]
    ) -> Metric:
        return await call.service.metrics.record(call.user, body(RecordMetrics, data))

    @get(
        "/{session_id:str}/metrics",
        summary="Get session metrics",
        responses=ONE_SESSION,
        operation_id="listMetrics",
    )
    async def list_metrics(self, call: Caller, session_id: SessionId) -> list[Metric]:
        """Oldest first."""
        return await call.service.metrics.list_for_session(call.user, session_id)
