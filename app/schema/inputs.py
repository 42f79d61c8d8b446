"""Input types: the REST request bodies, field for field.

Only the shape lives here. Limits and defaults are the domain's: the resolvers
hand these objects, as plain data, to the same validation the REST face uses,
so both faces refuse the same values with the same messages.
"""

from __future__ import annotations

import strawberry
from strawberry import UNSET

from app.domain.records import Difficulty, QuestionType, ResponseStructure, SessionStatus
from app.schema import types as _types  # noqa: F401 - registers the enums with Strawberry


@strawberry.input(description="The role; title and company are required (1..200 characters)")
class JobContextInput:
    title: str
    company: str
    description: str | None = UNSET
    requirements: list[str] | None = strawberry.field(
        default=UNSET, description="At most 100; defaults to []"
    )
    interview_type: QuestionType | None = UNSET
    seniority: Difficulty | None = UNSET


@strawberry.input(description="Missing fields take their defaults")
class SessionSettingsInput:
    transcription_enabled: bool | None = strawberry.field(default=UNSET, description="Default true")
    response_generation: bool | None = strawberry.field(default=UNSET, description="Default true")
    confidence_threshold: float | None = strawberry.field(default=UNSET, description="0..1, 0.8")
    preferred_language: str | None = strawberry.field(default=UNSET, description="Default en")
    enabled_features: list[str] | None = UNSET


@strawberry.input
class CreateSessionInput:
    job_context: JobContextInput
    settings: SessionSettingsInput | None = UNSET


@strawberry.input(description="Each given field replaces the stored one")
class UpdateSessionInput:
    status: SessionStatus | None = UNSET
    job_context: JobContextInput | None = UNSET
    settings: SessionSettingsInput | None = UNSET


@strawberry.input
class QuestionClassificationInput:
    type: QuestionType
    category: str | None = UNSET
    difficulty: Difficulty | None = UNSET
    requires_star: bool | None = strawberry.field(
        default=UNSET, name="requiresSTAR", description="Default false"
    )


@strawberry.input(description="id, content and structure are required")
class GeneratedResponseInput:
    id: str
    content: str
    structure: ResponseStructure
    estimated_duration: int | None = strawberry.field(default=UNSET, description="Seconds, >= 0")
    confidence: float | None = strawberry.field(default=UNSET, description="0..1")
    tags: list[str] | None = UNSET


@strawberry.input
class CreateInteractionInput:
    session_id: strawberry.ID
    question: str = strawberry.field(description="1..5,000 characters")
    question_classification: QuestionClassificationInput | None = UNSET
    generated_responses: list[GeneratedResponseInput] | None = strawberry.field(
        default=UNSET, description="At most 10"
    )


@strawberry.input(description="null clears a field; an absent field is left as it is")
class UpdateInteractionInput:
    selected_response: str | None = UNSET
    user_feedback: int | None = strawberry.field(default=UNSET, description="1..5")


@strawberry.input(description="Absent values are stored as null")
class RecordMetricsInput:
    session_id: strawberry.ID
    transcription_latency_ms: int | None = UNSET
    response_generation_ms: int | None = UNSET
    total_latency_ms: int | None = UNSET
    transcription_accuracy: float | None = UNSET
    user_satisfaction: int | None = UNSET
