"""Plain typed records that cross the service boundary, and the input commands.

Records are msgspec structs: immutable in spirit, cheap to build, and encoded
straight to JSON by the REST face. Field names are snake_case in Python; their
external names are the contract's camelCase (the same in REST and GraphQL).
Validation limits from the contract are declared here once, on the input types,
and enforced by :func:`app.domain.validation.parse` for both faces.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

# ---------------------------------------------------------------- enumerations


def write_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as the API writes every timestamp."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SessionStatus(enum.Enum):
    """Lifecycle of an interview session."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class QuestionType(enum.Enum):
    """What kind of question the interviewer asked."""

    TECHNICAL = "technical"
    BEHAVIORAL = "behavioral"
    SITUATIONAL = "situational"
    CULTURAL = "cultural"


class Difficulty(enum.Enum):
    """Seniority a question (or a role) is aimed at."""

    JUNIOR = "junior"
    MID = "mid"
    SENIOR = "senior"


class ResponseStructure(enum.Enum):
    """How a suggested answer is organised."""

    STAR = "STAR"
    DIRECT = "direct"
    TECHNICAL = "technical"


# ---------------------------------------------------------------- limits

MAX_INT32 = 2**31 - 1  # GraphQL Int is 32-bit; no stored integer may exceed it.
MAX_LIST_LIMIT = 1000

Title = Annotated[str, Meta(min_length=1, max_length=200)]
Description = Annotated[str, Meta(max_length=10_000)]
ShortText = Annotated[str, Meta(max_length=500)]
Tag = Annotated[str, Meta(max_length=100)]
Question = Annotated[str, Meta(min_length=1, max_length=5_000)]
ResponseText = Annotated[str, Meta(min_length=1, max_length=20_000)]
SelectedText = Annotated[str, Meta(max_length=20_000)]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
Rating = Annotated[int, Meta(ge=1, le=5)]
LatencyMs = Annotated[int, Meta(ge=0, le=3_600_000)]
Seconds = Annotated[int, Meta(ge=0, le=MAX_INT32)]
Language = Annotated[str, Meta(min_length=1, max_length=35)]
IdText = Annotated[str, Meta(min_length=1, max_length=200)]

DEFAULT_FEATURES = ("real-time-transcription", "response-suggestions")


class _Camel(Struct, rename="camel", kw_only=True):
    """Base: camelCase names outside, unknown fields refused on input."""


class _Input(_Camel, forbid_unknown_fields=True):
    pass


# ---------------------------------------------------------------- value objects
# Used both as input (validated) and inside records.


class JobContext(_Input):
    """The role the candidate is interviewing for."""

    title: Title
    company: Title
    description: Description | None = None
    requirements: Annotated[list[ShortText], Meta(max_length=100)] = field(default_factory=list)
    interview_type: QuestionType | None = None
    seniority: Difficulty | None = None


class SessionSettings(_Input):
    """How the assistant behaves during the session; missing fields take defaults."""

    transcription_enabled: bool = True
    response_generation: bool = True
    confidence_threshold: Fraction = 0.8
    preferred_language: Language = "en"
    enabled_features: Annotated[list[Tag], Meta(max_length=50)] = field(
        default_factory=lambda: list(DEFAULT_FEATURES)
    )


class QuestionClassification(_Input):
    """How the assistant classified a question."""

    type: QuestionType
    category: ShortText | None = None
    difficulty: Difficulty | None = None
    requires_star: bool = field(default=False, name="requiresSTAR")


class GeneratedResponse(_Input):
    """One answer the assistant suggested."""

    id: IdText
    content: ResponseText
    structure: ResponseStructure
    estimated_duration: Seconds | None = None
    confidence: Fraction | None = None
    tags: Annotated[list[Tag], Meta(max_length=50)] = field(default_factory=list)


# ---------------------------------------------------------------- records


class Session(_Camel, kw_only=True):
    """An interview session as clients see it."""

    id: uuid.UUID
    user_id: str
    job_context: JobContext
    status: SessionStatus
    settings: SessionSettings
    started_at: datetime
    ended_at: datetime | None = None
    created_at: datetime


class Interaction(_Camel, kw_only=True):
    """A question asked during a session and what the assistant did with it."""

    id: uuid.UUID
    session_id: uuid.UUID
    question: str
    question_classification: QuestionClassification | None = None
    generated_responses: list[GeneratedResponse] = field(default_factory=list)
    selected_response: str | None = None
    user_feedback: int | None = None
    timestamp: datetime


class Metric(_Camel, kw_only=True):
    """One performance sample recorded for a session."""

    id: uuid.UUID
    session_id: uuid.UUID
    transcription_latency_ms: int | None = None
    response_generation_ms: int | None = None
    total_latency_ms: int | None = None
    transcription_accuracy: float | None = None
    user_satisfaction: int | None = None
    created_at: datetime


class SessionDetails(Session, kw_only=True):
    """A session with all its interactions and metrics."""

    interactions: list[Interaction]
    metrics: list[Metric]


class QuestionTypeCount(_Camel):
    type: QuestionType
    count: int


class TrendMetrics(_Camel):
    latency: float | None
    accuracy: float | None
    satisfaction: float | None


class PerformanceTrend(_Camel):
    date: date
    metrics: TrendMetrics


class Analytics(_Camel):
    """Aggregates over a user's sessions in a window of UTC days."""

    total_sessions: int
    average_session_duration: float | None
    average_latency: float | None
    average_accuracy: float | None
    average_satisfaction: float | None
    most_common_question_types: list[QuestionTypeCount]
    performance_trends: list[PerformanceTrend]


# ---------------------------------------------------------------- commands (request bodies)


class CreateSession(_Input):
    """Body of POST /interview-sessions."""

    job_context: JobContext
    settings: SessionSettings = field(default_factory=SessionSettings)


class UpdateSession(_Input):
    """Body of PUT /interview-sessions/:id: each given field replaces the stored one."""

    status: SessionStatus | UnsetType = UNSET
    job_context: JobContext | UnsetType = UNSET
    settings: SessionSettings | UnsetType = UNSET


class CreateInteraction(_Input):
    """Body of POST /interview-sessions/interactions."""

    session_id: str
    question: Question
    question_classification: QuestionClassification | None = None
    generated_responses: Annotated[list[GeneratedResponse], Meta(max_length=10)] = field(
        default_factory=list
    )


class UpdateInteraction(_Input):
    """Body of PUT /interview-sessions/interactions/:id; null clears a field."""

    selected_response: SelectedText | UnsetType | None = UNSET
    user_feedback: Rating | UnsetType | None = UNSET


class RecordMetrics(_Input):
    """Body of POST /interview-sessions/metrics; absent values are stored as null."""

    session_id: str
    transcription_latency_ms: LatencyMs | None = None
    response_generation_ms: LatencyMs | None = None
    total_latency_ms: LatencyMs | None = None
    transcription_accuracy: Fraction | None = None
    user_satisfaction: Rating | None = None


def to_json_value(value: Struct) -> object:
    """The stored (and external) JSON form of a value object."""
    return msgspec.to_builtins(value)


class Principal(Struct, frozen=True):
    """Who is asking: the token's ``sub``. Every service call names one."""

    user_id: str


# ---------------------------------------------------------------- events (live.md)


class SessionEventType(enum.Enum):
    """What changed. A status change is STATUS_CHANGED; any other change of a
    session's fields is SESSION_UPDATED."""

    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    STATUS_CHANGED = "status_changed"
    SESSION_DELETED = "session_deleted"
    INTERACTION_CREATED = "interaction_created"
    INTERACTION_UPDATED = "interaction_updated"
    METRICS_RECORDED = "metrics_recorded"


class SessionEvent(_Camel, kw_only=True):
    """One committed change, as its owner's subscribers receive it.

    ``seq`` is the position in the user's own stream: strictly increasing, in
    commit order (the cursor clients resume from is made of it).
    """

    seq: int = 0  # set when stored
    type: SessionEventType
    user_id: str
    session_id: uuid.UUID
    at: datetime
    session: Session | None = None  # as the change left it; None when deleted
    interaction: Interaction | None = None
    metric: Metric | None = None


class KeyedAnswer(msgspec.Struct, kw_only=True):
    """A write request's ``Idempotency-Key`` and, once it is known, its answer.

    The key commits in the transaction of the change it guards, with the
    answer as a rule; ``status`` is None while a request that used the
    database again after its change is still running (its answer is stored
    right after it is known).
    """

    user_id: str
    key: str
    method: str
    path: str
    fingerprint: str
    created_at: datetime
    status: int | None = None
    headers: list[list[str]] | None = None
    body: bytes | None = None
