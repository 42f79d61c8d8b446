"""Input both databases can store, and numbers as JSON Schema reads them:
what ``parse`` lets through, and the field it names when it does not."""

from __future__ import annotations

import uuid

import pytest

from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    RecordMetrics,
    UpdateInteraction,
)
from app.domain.validation import parse, storable_text
from app.errors import BadRequest

UNSTORABLE = "text must be valid UTF-8 without NUL characters"
SID = str(uuid.uuid4())


class Text(str):
    """A ``str`` that is not exactly ``str`` (what a library might hand over)."""


class Number(float):
    """Likewise a ``float``."""


class Items(list):
    """Likewise a ``list``."""


def problem(kind, data, prefix=""):
    with pytest.raises(BadRequest) as info:
        parse(kind, data, prefix)
    assert info.value.status_code == 400
    return info.value.message


def job(**fields):
    return {"title": "T", "company": "C", **fields}


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("plain", True),
        ("", True),
        ("café, 東京 🎉", True),
        ("a\x00b", False),
        ("\x00", False),
        ("é\x00", False),
        ("\ud800", False),  # a lone surrogate: not UTF-8
        ("ok \udfff", False),
    ],
)
def test_storable_text(text, ok):
    assert storable_text(text) is ok


def test_text_that_cannot_be_stored_is_refused_naming_its_field():
    assert problem(CreateSession, {"jobContext": job(title="a\x00")}) == (
        f"jobContext.title: {UNSTORABLE}"
    )
    assert problem(CreateSession, {"jobContext": job(company="\ud83d")}) == (
        f"jobContext.company: {UNSTORABLE}"
    )
    assert problem(CreateSession, {"jobContext": job(requirements=["ok", "b\x00"])}) == (
        f"jobContext.requirements[1]: {UNSTORABLE}"
    )
    assert problem(CreateInteraction, {"sessionId": SID, "question": "\x00"}) == (
        f"question: {UNSTORABLE}"
    )
    assert problem(JobContext, job(description="x\x00"), "input.jobContext") == (
        f"input.jobContext.description: {UNSTORABLE}"
    )
    assert problem(JobContext, "\x00", "input.jobContext") == f"input.jobContext: {UNSTORABLE}"
    assert problem(JobContext, "\x00") == f"body: {UNSTORABLE}"


def test_a_name_that_cannot_be_stored_is_refused_naming_where_it_is():
    assert problem(CreateSession, {"jobContext": {"ti\x00tle": "x", "company": "C"}}) == (
        f"jobContext: {UNSTORABLE}"
    )
    assert problem(CreateSession, {"job\x00Context": {}}) == f"body: {UNSTORABLE}"
    assert problem(JobContext, {"\x00": 1}, "input.jobContext") == (
        f"input.jobContext: {UNSTORABLE}"
    )


def test_storable_text_of_any_script_is_kept():
    cmd = parse(CreateSession, {"jobContext": job(title="Ingénieur 東京", requirements=["ü"])})
    assert cmd.job_context.title == "Ingénieur 東京"
    assert cmd.job_context.requirements == ["ü"]


def test_integral_floats_are_integers_and_other_floats_stay():
    # 5.0 is an integer in JSON Schema (and what some JSON encoders write).
    assert parse(UpdateInteraction, {"userFeedback": 5.0}).user_feedback == 5
    assert type(parse(UpdateInteraction, {"userFeedback": 5.0}).user_feedback) is int
    assert problem(UpdateInteraction, {"userFeedback": 4.5}) == (
        "userFeedback: expected `int | null`, got `float`"
    )
    m = parse(
        RecordMetrics,
        {"sessionId": SID, "totalLatencyMs": 250.0, "transcriptionAccuracy": 0.25},
    )
    assert (m.total_latency_ms, m.transcription_accuracy) == (250, 0.25)
    assert (
        parse(RecordMetrics, {"sessionId": SID, "transcriptionAccuracy": 1}).transcription_accuracy
        == 1
    )
    nested = parse(
        CreateInteraction,
        {
            "sessionId": SID,
            "question": "Q",
            "generatedResponses": [
                {"id": "a", "content": "c", "structure": "STAR", "estimatedDuration": 30.0},
                {"id": "b", "content": "c", "structure": "STAR", "confidence": 0.5},
            ],
        },
    )
    assert nested.generated_responses[0].estimated_duration == 30
    assert nested.generated_responses[1].confidence == 0.5


def test_a_type_error_under_a_prefix_names_the_full_path():
    assert problem(JobContext, job(title=1), "input.jobContext") == (
        "input.jobContext.title: expected `str`, got `int`"
    )
    assert problem(JobContext, job(requirements=["a", 2]), "input.jobContext") == (
        "input.jobContext.requirements[1]: expected `str`, got `int`"
    )
    assert problem(CreateSession, {"jobContext": job(requirements=[3])}) == (
        "jobContext.requirements[0]: expected `str`, got `int`"
    )


def test_values_of_subclasses_are_read_as_their_base_type():
    cmd = parse(CreateSession, {"jobContext": job(title=Text("Lead"), requirements=[Text("Go")])})
    assert cmd.job_context.title == "Lead" and cmd.job_context.requirements == ["Go"]
    assert problem(JobContext, Text("a\x00")) == f"body: {UNSTORABLE}"
    assert problem(CreateSession, Items(["ok", "a\x00"])) == f"[1]: {UNSTORABLE}"
    assert parse(UpdateInteraction, {"userFeedback": Number(4.0)}).user_feedback == 4
    # A fraction is no integer, whatever its type.
    assert problem(UpdateInteraction, {"userFeedback": Number(4.5)}).startswith("userFeedback: ")


def test_without_a_prefix_the_path_starts_at_the_body():
    with pytest.raises(BadRequest) as info:
        parse(CreateSession, {"jobContext": job(title="a\x00")})
    assert info.value.message == f"jobContext.title: {UNSTORABLE}"
    with pytest.raises(BadRequest) as info:
        parse(CreateSession, {"jobContext": job(title=5)})
    assert info.value.message == "jobContext.title: expected `str`, got `int`"


def test_unstorable_text_in_a_subclass_is_refused_naming_its_field():
    assert problem(CreateSession, {"jobContext": job(title=Text("a\x00"))}) == (
        f"jobContext.title: {UNSTORABLE}"
    )
    assert problem(CreateSession, {"jobContext": job(requirements=Items(["a\x00"]))}) == (
        f"jobContext.requirements[0]: {UNSTORABLE}"
    )
