"""GraphQL documents and helpers shared by the GraphQL tests."""

from __future__ import annotations

import enum
from typing import Any

from app.domain import records

SESSION_FIELDS = """
  id userId status startedAt endedAt createdAt
  jobContext { title company description requirements interviewType seniority }
  settings {
    transcriptionEnabled responseGeneration confidenceThreshold preferredLanguage enabledFeatures
  }
"""
INTERACTION_FIELDS = """
  id sessionId question selectedResponse userFeedback timestamp
  questionClassification { type category difficulty requiresSTAR }
  generatedResponses { id content structure estimatedDuration confidence tags }
"""
METRIC_FIELDS = """
  id sessionId transcriptionLatencyMs responseGenerationMs totalLatencyMs
  transcriptionAccuracy userSatisfaction createdAt
"""
ANALYTICS_FIELDS = """
  totalSessions averageSessionDuration averageLatency averageAccuracy averageSatisfaction
  mostCommonQuestionTypes { type count }
  performanceTrends { date metrics { latency accuracy satisfaction } }
"""

_ENUM_FIELDS: dict[str, type[enum.Enum]] = {
    "status": records.SessionStatus,
    "interviewType": records.QuestionType,
    "seniority": records.Difficulty,
    "difficulty": records.Difficulty,
    "structure": records.ResponseStructure,
}


def rest_shape(value: Any, key: str | None = None) -> Any:
    """A GraphQL result as the REST face writes it: enum names -> REST values."""
    if isinstance(value, dict):
        return {k: rest_shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rest_shape(v, key) for v in value]
    if isinstance(value, str) and key in _ENUM_FIELDS:
        return _ENUM_FIELDS[key][value].value
    if isinstance(value, str) and key == "type":
        return records.QuestionType[value].value
    return value


def errors_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["extensions"]["code"], e["message"]) for e in body.get("errors", [])]
