"""Strawberry output types, enums and scalars, named exactly as graphql.md says.

Resolvers return the domain records themselves (msgspec structs); these types
describe them, and Strawberry's default resolver reads the attributes. The
enums are the domain enums, registered with Strawberry: GraphQL shows their
names (``ACTIVE``), REST their values (``active``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from app.domain.records import Difficulty, QuestionType, ResponseStructure, SessionStatus

# Registering the domain enums makes them GraphQL enums in place.
strawberry.enum(SessionStatus, description="Lifecycle of a session")
strawberry.enum(QuestionType, description="Kind of interview question")
strawberry.enum(Difficulty, description="Seniority level")
strawberry.enum(ResponseStructure, description="How a suggested answer is organised")


def serialize_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, exactly as the REST face writes it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    type: QuestionType
    category: str | None
    difficulty: Difficulty | None
    requires_star: bool = strawberry.field(
        name="requiresSTAR", description="Whether a STAR-structured answer fits"
    )


@strawberry.type(description="One answer the assistant suggested")
class GeneratedResponse:
    id: str
    content: str
    structure: ResponseStructure
    estimated_duration: int | None = strawberry.field(description="Seconds")
    confidence: float | None = strawberry.field(description="0..1")
    tags: list[str]


@strawberry.type(description="A question asked during a session and what the assistant did")
class Interaction:
    id: strawberry.ID
    session_id: strawberry.ID
    question: str
    question_classification: QuestionClassification | None
    generated_responses: list[GeneratedResponse]
    selected_response: str | None = strawberry.field(description="The answer the user chose")
    user_feedback: int | None = strawberry.field(description="1..5")
    timestamp: datetime = strawberry.field(description="When it was recorded")


@strawberry.type(description="One performance sample recorded for a session")
class SessionMetric:
    id: strawberry.ID
    session_id: strawberry.ID
    transcription_latency_ms: int | None
    response_generation_ms: int | None
    total_latency_ms: int | None
    transcription_accuracy: float | None = strawberry.field(description="0..1")
    user_satisfaction: int | None = strawberry.field(description="1..5")
    created_at: datetime


LOADER = "loader"  # field metadata: the context attribute holding the field's DataLoader


def batched(loader: str, description: str) -> Any:
    """A field resolved by the request's DataLoader ``info.context.<loader>``,
    keyed by the parent's id. The metadata says so to the compiled query plans,
    which then load all parents' values with one ``load_many``."""

    async def resolve(root: Any, info: strawberry.Info) -> list[Any]:
        result: list[Any] = await getattr(info.context, loader).load(root.id)
        return result

    return strawberry.field(resolver=resolve, description=description, metadata={LOADER: loader})


@strawberry.type(description="An interview session")
class InterviewSession:
    id: strawberry.ID
    user_id: strawberry.ID = strawberry.field(description="The owner (the token's sub)")
    job_context: JobContext
    status: SessionStatus
    settings: SessionSettings
    started_at: datetime
    ended_at: datetime | None = strawberry.field(description="Set when completed")
    created_at: datetime

    interactions: list[Interaction] = batched(
        "interactions", "Oldest first; batched per request by a DataLoader"
    )
    metrics: list[SessionMetric] = batched(
        "metrics", "Oldest first; batched per request by a DataLoader"
    )


@strawberry.type
class QuestionTypeCount:
    type: QuestionType
    count: int


@strawberry.type(description="A day's means; null where the day has no such values")
class TrendMetrics:
    latency: float | None
    accuracy: float | None
    satisfaction: float | None


@strawberry.type
class PerformanceTrend:
    date: date
    metrics: TrendMetrics


@strawberry.type(description="Aggregates over the user's sessions created in the window")
class UserAnalytics:
    total_sessions: int
    average_session_duration: float | None = strawberry.field(
        description="Minutes, over completed sessions"
    )
    average_latency: float | None
    average_accuracy: float | None
    average_satisfaction: float | None
    most_common_question_types: list[QuestionTypeCount]
    performance_trends: list[PerformanceTrend]
