"""Validation messages name the field, the same way for both faces."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    RecordMetrics,
    UpdateInteraction,
)
from app.domain.validation import field_message, parse, parse_uuid, validation_message
from app.errors import BadRequest

# ---------------------------------------------------------------- field_message


@pytest.mark.parametrize(
    ("message", "path", "expected"),
    [
        ("Object missing required field `title`", "jobContext", "jobContext.title: field required"),
        ("Object missing required field `jobContext`", "", "jobContext: field required"),
        ("Object contains unknown field `id`", "", "id: unknown field"),
        ("Object contains unknown field `x`", ".settings", "settings.x: unknown field"),
        (
            "Expected `str` of length <= 200",
            "jobContext.title",
            "jobContext.title: expected `str` of length <= 200",
        ),
        ("Expected `object`, got `array`", "", "expected `object`, got `array`"),
    ],
)
def test_field_message(message, path, expected):
    assert field_message(message, path) == expected


# ---------------------------------------------------------------- parse


def problem(kind, data, prefix=""):
    with pytest.raises(BadRequest) as info:
        parse(kind, data, prefix)
    assert info.value.status_code == 400
    return info.value.message


def test_parse_names_nested_fields_with_dotted_paths():
    assert problem(CreateSession, {}) == "jobContext: field required"
    assert problem(CreateSession, {"jobContext": {"company": "C"}}) == (
        "jobContext.title: field required"
    )
    message = problem(CreateSession, {"jobContext": {"title": "t" * 201, "company": "C"}})
    assert message.startswith("jobContext.title: ") and "200" in message
    message = problem(
        CreateSession, {"jobContext": {"title": "T", "company": "C", "requirements": ["a", 1]}}
    )
    assert message.startswith("jobContext.requirements[1]: ")


def test_parse_names_list_items_with_indexes():
    data = {
        "sessionId": str(uuid.uuid4()),
        "question": "q",
        "generatedResponses": [
            {"id": "a", "content": "c", "structure": "STAR"},
            {"id": "b", "content": "c", "structure": "STAR", "confidence": 2},
        ],
    }
    assert problem(CreateInteraction, data).startswith("generatedResponses[1].confidence: ")


def test_parse_refuses_unknown_fields_at_every_level():
    assert problem(CreateSession, {"jobContext": {"title": "T", "company": "C"}, "id": 1}) == (
        "id: unknown field"
    )
    assert problem(CreateSession, {"jobContext": {"title": "T", "company": "C", "x": 1}}) == (
        "jobContext.x: unknown field"
    )
    assert problem(UpdateInteraction, {"question": "q"}) == "question: unknown field"


def test_parse_is_strict_about_json_types():
    assert problem(UpdateInteraction, {"userFeedback": "5"}).startswith("userFeedback: ")
    assert problem(RecordMetrics, {"sessionId": "x", "totalLatencyMs": "1"}).startswith(
        "totalLatencyMs: "
    )


def test_parse_with_a_prefix_names_the_full_path():
    assert problem(JobContext, {"company": "C"}, "input.jobContext") == (
        "input.jobContext.title: field required"
    )
    assert problem(JobContext, [], "input.jobContext").startswith("input.jobContext: ")


def test_parse_returns_the_command_with_defaults():
    cmd = parse(CreateSession, {"jobContext": {"title": "T", "company": "C"}})
    assert cmd.job_context.requirements == []
    assert cmd.settings.confidence_threshold == 0.8
    assert cmd.settings.enabled_features == ["real-time-transcription", "response-suggestions"]


def test_validation_message_of_a_top_level_type_error():
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert([], CreateSession)
    assert validation_message(info.value) == "expected `object`, got `array`"
    assert validation_message(info.value, "input") == "input: expected `object`, got `array`"


# ---------------------------------------------------------------- parse_uuid


def test_parse_uuid_accepts_canonical_uuids_in_any_case():
    value = uuid.uuid4()
    assert parse_uuid(str(value)) == value
    assert parse_uuid(str(value).upper()) == value
    assert parse_uuid(value) is value


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-uuid",
        "123",
        "0" * 32,  # no hyphens
        "{12345678-1234-1234-1234-123456789abc}",
        "12345678-1234-1234-1234-123456789abc\n",
        "12345678-1234-1234-1234-123456789abcd",
        "12345678-1234-1234-1234-123456789abg",
        " 12345678-1234-1234-1234-123456789abc",
    ],
)
def test_parse_uuid_refuses_anything_else(bad):
    with pytest.raises(BadRequest) as info:
        parse_uuid(bad)
    assert info.value.message == "Validation failed (uuid is expected)"
