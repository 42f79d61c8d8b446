"""Input types: the REST request bodies, field for field.

Only the shape lives here. Limits and defaults are the domain's: the resolvers
hand these objects, as plain data, to the same validation the REST face uses,
so both faces refuse the same values with the same messages. The descriptions
state those limits for the people reading the schema.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry import UNSET

from app.domain.records import Difficulty, QuestionType, ResponseStructure, SessionStatus
from app.schema import types as _types  # noqa: F401 - registers the enums with Strawberry


def _f(description: str, *, name: str | None = None) -> Any:
    """An optional input field (absent stays absent) with its description."""
    return strawberry.field(default=UNSET, description=description, name=name)


@strawberry.input(description="The role; title and company are required")
class JobContextInput:
    title: str = strawberry.field(description="Job title (1..200 characters)")
    company: str = strawberry.field(description="Company (1..200 characters)")
    description: str | None = _f("Role description (<= 10,000 characters)")
    requirements: list[str] | None = _f("Skills asked for (<= 100, each <= 500); default []")
    interview_type: QuestionType | None = _f("Kind of interview")
    seniority: Difficulty | None = _f("Level of the role")


@strawberry.input(description="How the assistant behaves; missing fields take their defaults")
class SessionSettingsInput:
    transcription_enabled: bool | None = _f("Transcribe questions live; default true")
    response_generation: bool | None = _f("Suggest answers; default true")
    confidence_threshold: float | None = _f("Minimum confidence to show, 0..1; default 0.8")
    preferred_language: str | None = _f("Language code (1..35 characters); default en")
    enabled_features: list[str] | None = _f(
        "Feature flags (<= 50, each <= 100); default real-time-transcription, response-suggestions"
    )


@strawberry.input(description="A new session: the role, and optionally the settings")
class CreateSessionInput:
    job_context: JobContextInput = strawberry.field(description="The role being interviewed for")
    settings: SessionSettingsInput | None = _f("How the assistant behaves; defaults when absent")


@strawberry.input(description="Each given field replaces the stored one; absent ones stay")
class UpdateSessionInput:
    status: SessionStatus | None = _f("A new status, by the state machine (COMPLETED is final)")
    job_context: JobContextInput | None = _f("Replaces the role")
    settings: SessionSettingsInput | None = _f("Replaces the settings (missing fields: defaults)")


@strawberry.input(description="How the assistant classified a question")
class QuestionClassificationInput:
    type: QuestionType = strawberry.field(description="The kind of question")
    category: str | None = _f("Free topic, e.g. frontend (<= 500 characters)")
    difficulty: Difficulty | None = _f("Level the question aims at")
    requires_star: bool | None = _f(
        "Whether a STAR-structured answer fits; default false", name="requiresSTAR"
    )


@strawberry.input(description="One suggested answer; id, content and structure are required")
class GeneratedResponseInput:
    id: str = strawberry.field(description="The assistant's id for this answer (1..200)")
    content: str = strawberry.field(description="The suggested answer (1..20,000 characters)")
    structure: ResponseStructure = strawberry.field(description="How the answer is organised")
    estimated_duration: int | None = _f("Estimated speaking time in seconds (>= 0)")
    confidence: float | None = _f("The assistant's confidence, 0..1")
    tags: list[str] | None = _f("Labels (<= 50, each <= 100 characters); default []")


@strawberry.input(description="A question asked during a session (not a completed one)")
class CreateInteractionInput:
    session_id: strawberry.ID = strawberry.field(description="The session (UUID)")
    question: str = strawberry.field(description="The question as transcribed (1..5,000)")
    question_classification: QuestionClassificationInput | None = _f(
        "How the assistant classified it"
    )
    generated_responses: list[GeneratedResponseInput] | None = _f(
        "Answers the assistant suggested (<= 10); default []"
    )


@strawberry.input(description="null clears a field; an absent field is left as it is")
class UpdateInteractionInput:
    selected_response: str | None = _f("The answer the user chose (<= 20,000 characters)")
    user_feedback: int | None = _f("The user's rating, 1..5")


@strawberry.input(description="A performance sample; absent values are stored as null")
class RecordMetricsInput:
    session_id: strawberry.ID = strawberry.field(description="The session (UUID), any status")
    transcription_latency_ms: int | None = _f(
        "Time to transcribe the question, in milliseconds (0..3,600,000)"
    )
    response_generation_ms: int | None = _f(
        "Time to generate the suggestions, in milliseconds (0..3,600,000)"
    )
    total_latency_ms: int | None = _f(
        "From question to suggestions, in milliseconds (0..3,600,000)"
    )
    transcription_accuracy: float | None = _f("Share of words transcribed correctly, 0..1")
    user_satisfaction: int | None = _f("The user's rating, 1..5")


@strawberry.input(description="Which sessions a list shows; every condition must hold")
class SessionFilter:
    status: list[SessionStatus] | None = strawberry.field(
        default=None, description="Any of these statuses"
    )
    created_from: date | None = strawberry.field(
        default=None, description="Created on or after this UTC day"
    )
    created_to: date | None = strawberry.field(
        default=None, description="Created on or before this UTC day"
    )
    search: str | None = strawberry.field(
        default=None,
        description="A case-insensitive substring of the title, company or description (<= 200)",
    )
    interview_type: QuestionType | None = strawberry.field(
        default=None, description="The job context's interview type"
    )
