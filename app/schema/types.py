"""Strawberry output types, enums and scalars, named exactly as graphql.md says.

Resolvers return the domain records themselves (msgspec structs); these types
describe them, and Strawberry's default resolver reads the attributes. The
enums are the domain enums, registered with Strawberry: GraphQL shows their
names (``ACTIVE``), REST their values (``active``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from app.domain import records
from app.domain.records import (
    Difficulty,
    QuestionType,
    ResponseStructure,
    SessionEventType,
    SessionStatus,
    write_datetime,
)


def _enum(cls: Any, description: str, values: dict[str, str]) -> None:
    """Register a domain enum with Strawberry in place, each value described."""
    strawberry.enum(cls, description=description)
    for value in cls.__strawberry_definition__.values:
        value.description = values[value.name]


_enum(
    SessionStatus,
    "Lifecycle of a session: active <-> paused, active|paused -> completed (final)",
    {
        "ACTIVE": "Running: interactions and metrics are being recorded",
        "PAUSED": "Interrupted; can be resumed (startSession) or completed",
        "COMPLETED": "Finished: endedAt is set, no new interactions, no status change",
    },
)
_enum(
    QuestionType,
    "Kind of interview question (also the kind of interview)",
    {
        "TECHNICAL": "Knowledge and problem solving in the field",
        "BEHAVIORAL": "How the candidate acted in past situations",
        "SITUATIONAL": "How the candidate would act in a hypothetical situation",
        "CULTURAL": "Values and fit with the team and company",
    },
)
_enum(
    Difficulty,
    "Seniority level of a role or a question",
    {"JUNIOR": "Entry level", "MID": "Intermediate level", "SENIOR": "Senior level"},
)
_enum(
    ResponseStructure,
    "How a suggested answer is organised",
    {
        "STAR": "Situation, Task, Action, Result",
        "DIRECT": "A short, direct answer",
        "TECHNICAL": "A technical explanation",
    },
)


# RFC 3339 in UTC with a ``Z``, exactly as the REST face writes it.
serialize_datetime = write_datetime


def _parse_datetime(value: object) -> datetime:
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    except ValueError:
        pass
    raise StrawberryInputCoercionError(
        f'Value cannot represent a DateTime: "{value}". Use RFC 3339 with a zone, e.g. Z.'
    )


DATETIME_Z = ScalarDefinition(
    name="DateTime",
    description="RFC 3339 timestamp in UTC with a Z suffix, e.g. 2024-01-01T10:00:00Z",
    specified_by_url=None,
    serialize=serialize_datetime,
    parse_value=_parse_datetime,
    parse_literal=None,
    origin=datetime,
)


_YYYY_MM_DD = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def _parse_date(value: object) -> date:
    """Only YYYY-MM-DD, as REST accepts (fromisoformat alone also takes 20240101)."""
    try:
        if isinstance(value, str) and _YYYY_MM_DD.match(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise StrawberryInputCoercionError(f'Value cannot represent a Date: "{value}". Use YYYY-MM-DD.')


def serialize_date(value: date) -> str:
    return value.isoformat()


DATE_STRICT = ScalarDefinition(
    name="Date",
    description="A calendar day, YYYY-MM-DD",
    specified_by_url=None,
    serialize=serialize_date,
    parse_value=_parse_date,
    parse_literal=None,
    origin=date,
)


@strawberry.type(description="The role the candidate is interviewing for")
class JobContext:
    title: str = strawberry.field(description="Job title (1..200 characters)")
    company: str = strawberry.field(description="Company (1..200 characters)")
    description: str | None = strawberry.field(description="Role description (<= 10,000)")
    requirements: list[str] = strawberry.field(description="Skills asked for (<= 100)")
    interview_type: QuestionType | None = strawberry.field(description="Kind of interview")
    seniority: Difficulty | None = strawberry.field(description="Level of the role")


@strawberry.type(description="How the assistant behaves during the session")
class SessionSettings:
    transcription_enabled: bool = strawberry.field(description="Transcribe questions live")
    response_generation: bool = strawberry.field(description="Suggest answers")
    confidence_threshold: float = strawberry.field(description="0..1, default 0.8")
    preferred_language: str = strawberry.field(description="Language code, default en")
    enabled_features: list[str] = strawberry.field(description="Feature flags")


@strawberry.type(description="How the assistant classified a question")
class QuestionClassification:
    type: QuestionType = strawberry.field(description="The kind of question")
    category: str | None = strawberry.field(description="Free topic, e.g. frontend (<= 500)")
    difficulty: Difficulty | None = strawberry.field(description="Level the question aims at")
    requires_star: bool = strawberry.field(
        name="requiresSTAR", description="Whether a STAR-structured answer fits"
    )


@strawberry.type(description="One answer the assistant suggested")
class GeneratedResponse:
    id: str = strawberry.field(description="The assistant's id for this answer (1..200)")
    content: str = strawberry.field(description="The suggested answer (1..20,000 characters)")
    structure: ResponseStructure = strawberry.field(description="How the answer is organised")
    estimated_duration: int | None = strawberry.field(
        description="Estimated speaking time in seconds (>= 0)"
    )
    confidence: float | None = strawberry.field(description="The assistant's confidence, 0..1")
    tags: list[str] = strawberry.field(description="Labels (<= 50, each <= 100 characters)")


@strawberry.type(description="A question asked during a session and what the assistant did")
class Interaction:
    id: strawberry.ID = strawberry.field(description="Interaction id (UUID)")
    session_id: strawberry.ID = strawberry.field(description="The session it belongs to (UUID)")
    question: str = strawberry.field(description="The question as transcribed (1..5,000)")
    question_classification: QuestionClassification | None = strawberry.field(
        description="How the assistant classified it; null if it did not"
    )
    generated_responses: list[GeneratedResponse] = strawberry.field(
        description="Answers the assistant suggested (<= 10)"
    )
    selected_response: str | None = strawberry.field(
        description="The answer the user chose (<= 20,000 characters); null until chosen"
    )
    user_feedback: int | None = strawberry.field(description="The user's rating, 1..5")
    timestamp: datetime = strawberry.field(description="When it was recorded (UTC)")


@strawberry.type(description="One performance sample recorded for a session")
class SessionMetric:
    id: strawberry.ID = strawberry.field(description="Metric id (UUID)")
    session_id: strawberry.ID = strawberry.field(description="The session it belongs to (UUID)")
    transcription_latency_ms: int | None = strawberry.field(
        description="Time to transcribe the question, in milliseconds (0..3,600,000)"
    )
    response_generation_ms: int | None = strawberry.field(
        description="Time to generate the suggestions, in milliseconds (0..3,600,000)"
    )
    total_latency_ms: int | None = strawberry.field(
        description="From question to suggestions, in milliseconds (0..3,600,000)"
    )
    transcription_accuracy: float | None = strawberry.field(
        description="Share of words transcribed correctly, 0..1"
    )
    user_satisfaction: int | None = strawberry.field(description="The user's rating, 1..5")
    created_at: datetime = strawberry.field(description="When it was recorded (UTC)")


LOADER = "loader"  # field metadata: the batched read of the field (app/queries/reads.py)
RECORD = "record"  # field metadata: the domain record each item of the list shows
# Root field metadata: the batched read (``Reads``) a compiled plan calls to
# have the storage write the field's whole answer (app/queries/written.py).
WRITTEN = "written"


def batched(loader: str, description: str, record: type[Any]) -> Any:
    """A field resolved by the execution's batched read ``info.context.reads.<loader>``,
    keyed by the parent's id. The metadata says so to the compiled query plans,
    which, when the selection only copies stored fields of ``record``, have
    every parent's list written as JSON by the storage at once
    (``Reads.written``)."""

    async def resolve(root: Any, info: strawberry.Info) -> list[Any]:
        result: list[Any] = await getattr(info.context.reads, loader)(root.id)
        return result

    return strawberry.field(
        resolver=resolve, description=description, metadata={LOADER: loader, RECORD: record}
    )


@strawberry.type(description="An interview session")
class InterviewSession:
    id: strawberry.ID = strawberry.field(description="Session id (UUID)")
    user_id: strawberry.ID = strawberry.field(description="The owner (the token's sub)")
    job_context: JobContext = strawberry.field(description="The role being interviewed for")
    status: SessionStatus = strawberry.field(description="Where the session is in its lifecycle")
    settings: SessionSettings = strawberry.field(description="How the assistant behaves")
    started_at: datetime = strawberry.field(
        description="When it started (UTC; the creation time, kept on resume)"
    )
    ended_at: datetime | None = strawberry.field(description="When it was completed (UTC)")
    created_at: datetime = strawberry.field(description="When it was created (UTC)")

    interactions: list[Interaction] = batched(
        "interactions", "Oldest first; batched per request by a DataLoader", records.Interaction
    )
    metrics: list[SessionMetric] = batched(
        "metrics", "Oldest first; batched per request by a DataLoader", records.Metric
    )

    @strawberry.field(description="The interactions a page at a time, oldest first")
    async def interactions_connection(
        self,
        info: strawberry.Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 1..100 (default 20)")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="The cursor of the row before the page")
        ] = None,
    ) -> InteractionConnection:
        page = await info.context.reads.interaction_page(self.id, first, after)
        return InteractionConnection(
            edges=lazy_edges(page),
            page_info=page_info(page),
            count=lambda: info.context.reads.interaction_count(self.id),
        )


@strawberry.type(description="How many classified interactions asked one kind of question")
class QuestionTypeCount:
    type: QuestionType = strawberry.field(description="The kind of question")
    count: int = strawberry.field(description="Interactions classified as this type")


@strawberry.type(description="A day's means; null where the day has no such values")
class TrendMetrics:
    latency: float | None = strawberry.field(description="Mean totalLatencyMs, milliseconds")
    accuracy: float | None = strawberry.field(description="Mean transcriptionAccuracy, 0..1")
    satisfaction: float | None = strawberry.field(description="Mean userSatisfaction, 1..5")


@strawberry.type(description="The means of the metrics recorded on one UTC day")
class PerformanceTrend:
    date: date = strawberry.field(description="The UTC day")
    metrics: TrendMetrics = strawberry.field(description="The day's means")


@strawberry.type(description="Aggregates over the user's sessions created in the window")
class UserAnalytics:
    total_sessions: int = strawberry.field(description="Sessions created in the window, any status")
    average_session_duration: float | None = strawberry.field(
        description="Mean endedAt - startedAt of the completed ones, in minutes; null if none"
    )
    average_latency: float | None = strawberry.field(
        description="Mean totalLatencyMs of their metrics, in milliseconds; null if none"
    )
    average_accuracy: float | None = strawberry.field(
        description="Mean transcriptionAccuracy, 0..1; null if none"
    )
    average_satisfaction: float | None = strawberry.field(
        description="Mean userSatisfaction, 1..5; null if none"
    )
    most_common_question_types: list[QuestionTypeCount] = strawberry.field(
        description="Classified interactions by type, most first, ties by name"
    )
    performance_trends: list[PerformanceTrend] = strawberry.field(
        description="One entry per UTC day with metrics, oldest first"
    )


# ---------------------------------------------------------------- pagination (frontend.md)


@strawberry.type(description="Where a page sits in its list (Relay)")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More rows follow the last edge")
    has_previous_page: bool = strawberry.field(
        description="Rows precede the first edge (known when paging with after or last)"
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor")
    end_cursor: str | None = strawberry.field(description="The last edge's cursor")


class LazyEdge:
    """An edge (SessionEdge, InteractionEdge) whose cursor is signed only when a
    query reads it: a page that asks for ``pageInfo { endCursor }`` alone signs
    one cursor, not one per row."""

    __slots__ = ("_cursors", "_index", "node")

    def __init__(self, cursors: Sequence[str], index: int, node: Any) -> None:
        self._cursors = cursors
        self._index = index
        self.node = node

    @property
    def cursor(self) -> str:
        return self._cursors[self._index]


def lazy_edges(page: Any) -> Any:
    """The edges of a page (typed as the connection's edge list)."""
    cursors = page.cursors
    return [LazyEdge(cursors, i, node) for i, node in enumerate(page.items)]


@strawberry.type(description="A session and its place in the list")
class SessionEdge:
    cursor: str = strawberry.field(description="Opaque; pass as after or before")
    node: InterviewSession = strawberry.field(description="The session")


@strawberry.type(description="One page of sessions, newest first")
class SessionConnection:
    edges: list[SessionEdge] = strawberry.field(description="The page's sessions, in order")
    page_info: PageInfo = strawberry.field(description="Cursors and what lies beyond")
    count: strawberry.Private[Any]

    @strawberry.field(description="How many sessions the filter matches (all pages)")
    async def total_count(self, info: strawberry.Info) -> int:
        total: int = await self.count()
        return total


@strawberry.type(description="An interaction and its place in the list")
class InteractionEdge:
    cursor: str = strawberry.field(description="Opaque; pass as after")
    node: Interaction = strawberry.field(description="The interaction")


@strawberry.type(description="One page of a session's interactions, oldest first")
class InteractionConnection:
    edges: list[InteractionEdge] = strawberry.field(description="The page's interactions")
    page_info: PageInfo = strawberry.field(description="Cursors and what lies beyond")
    count: strawberry.Private[Any]

    @strawberry.field(description="How many interactions the session holds")
    async def total_count(self, info: strawberry.Info) -> int:
        total: int = await self.count()
        return total


class LazyPageInfo:
    """A page's PageInfo, its cursors signed only when a query reads them."""

    __slots__ = ("_page",)

    def __init__(self, page: Any) -> None:
        self._page = page

    @property
    def has_next_page(self) -> bool:
        return bool(self._page.has_next)

    @property
    def has_previous_page(self) -> bool:
        return bool(self._page.has_previous)

    @property
    def start_cursor(self) -> str | None:
        return self._page.start_cursor  # type: ignore[no-any-return]

    @property
    def end_cursor(self) -> str | None:
        return self._page.end_cursor  # type: ignore[no-any-return]


def page_info(page: Any) -> Any:
    """The PageInfo of a page (typed as the connection's PageInfo)."""
    return LazyPageInfo(page)


# ---------------------------------------------------------------- live events (live.md)


_enum(
    SessionEventType,
    "What changed",
    {
        "SESSION_CREATED": "A session was created",
        "SESSION_UPDATED": "A session's job context or settings changed",
        "STATUS_CHANGED": "A session's status changed (start, pause, complete)",
        "SESSION_DELETED": "A session was deleted (with its interactions and metrics)",
        "INTERACTION_CREATED": "A question was recorded",
        "INTERACTION_UPDATED": "An interaction's selected response or feedback changed",
        "METRICS_RECORDED": "A performance sample was recorded",
    },
)


@strawberry.type(description="One committed change of one of your sessions")
class SessionEvent:
    type: SessionEventType = strawberry.field(description="What changed")
    session_id: strawberry.ID = strawberry.field(description="The session it happened to (UUID)")
    at: datetime = strawberry.field(description="When it was committed (UTC)")
    session: InterviewSession | None = strawberry.field(
        description="The session as this change left it; null for SESSION_DELETED"
    )
    interaction: Interaction | None = strawberry.field(
        description="The interaction (INTERACTION_* events)"
    )
    metric: SessionMetric | None = strawberry.field(description="The sample (METRICS_RECORDED)")

    @strawberry.field(
        description="Opaque, strictly increasing over your events: resume after it with after"
    )
    def cursor(self, info: strawberry.Info) -> str:
        cursor: str = info.context.service.live.cursor(self)
        return cursor
