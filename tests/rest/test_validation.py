"""Every validation limit of the contract: 400, a message naming the field, nothing stored.

Each test sends a table of bad bodies to one endpoint (one database per test keeps
the suite fast) and reports every case that was not refused as it should be.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.api import (
    INVALID_UUID,
    JOB,
    RESPONSE,
    Api,
    assert_error,
    assert_field_error,
    messages_of,
)

# name -> (body, field the message must name, text the message must contain or None)
Cases = dict[str, tuple[Any, str, str | None]]
REQUIRED = "field required"
UNKNOWN = "unknown field"


async def refused(send: Callable[[Any], Awaitable[httpx.Response]], cases: Cases) -> dict:
    """The cases that were not answered 400 naming their field (empty when all were)."""
    failures = {}
    for name, (body, field, detail) in cases.items():
        r = await send(body)
        try:
            assert_field_error(r, field, detail)
        except (AssertionError, ValueError) as exc:
            failures[name] = f"{r.status_code} {r.text[:300]} ({exc})"
    return failures


def job(**changes: Any) -> dict[str, Any]:
    body = {**JOB, **changes}
    return {k: v for k, v in body.items() if v is not ...}


CREATE_SESSION: Cases = {
    "jobContext missing": ({}, "jobContext", REQUIRED),
    "jobContext null": ({"jobContext": None}, "jobContext", None),
    "jobContext not an object": ({"jobContext": "SE"}, "jobContext", None),
    "title missing": ({"jobContext": job(title=...)}, "jobContext.title", REQUIRED),
    "title empty": ({"jobContext": job(title="")}, "jobContext.title", None),
    "title too long": ({"jobContext": job(title="t" * 201)}, "jobContext.title", "200"),
    "title not a string": ({"jobContext": job(title=7)}, "jobContext.title", None),
    "company missing": ({"jobContext": job(company=...)}, "jobContext.company", REQUIRED),
    "company empty": ({"jobContext": job(company="")}, "jobContext.company", None),
    "company too long": ({"jobContext": job(company="c" * 201)}, "jobContext.company", "200"),
    "description too long": (
        {"jobContext": job(description="d" * 10_001)},
        "jobContext.description",
        "10000",
    ),
    "requirements too many": (
        {"jobContext": job(requirements=["r"] * 101)},
        "jobContext.requirements",
        "100",
    ),
    "requirements not a list": (
        {"jobContext": job(requirements="React")},
        "jobContext.requirements",
        None,
    ),
    "requirement not a string": (
        {"jobContext": job(requirements=["ok", 3])},
        "jobContext.requirements[1]",
        None,
    ),
    "interviewType unknown": (
        {"jobContext": job(interviewType="coding")},
        "jobContext.interviewType",
        "coding",
    ),
    "seniority unknown": (
        {"jobContext": job(seniority="principal")},
        "jobContext.seniority",
        "principal",
    ),
    "confidenceThreshold below 0": (
        {"jobContext": JOB, "settings": {"confidenceThreshold": -0.01}},
        "settings.confidenceThreshold",
        None,
    ),
    "confidenceThreshold above 1": (
        {"jobContext": JOB, "settings": {"confidenceThreshold": 1.01}},
        "settings.confidenceThreshold",
        None,
    ),
    "confidenceThreshold not a number": (
        {"jobContext": JOB, "settings": {"confidenceThreshold": "high"}},
        "settings.confidenceThreshold",
        None,
    ),
    "transcriptionEnabled not a bool": (
        {"jobContext": JOB, "settings": {"transcriptionEnabled": "yes"}},
        "settings.transcriptionEnabled",
        None,
    ),
    # JSON types are not coerced: a string is not a boolean or a number.
    "transcriptionEnabled a string 'true'": (
        {"jobContext": JOB, "settings": {"transcriptionEnabled": "true"}},
        "settings.transcriptionEnabled",
        None,
    ),
    "responseGeneration a number": (
        {"jobContext": JOB, "settings": {"responseGeneration": 1}},
        "settings.responseGeneration",
        None,
    ),
    "confidenceThreshold a numeric string": (
        {"jobContext": JOB, "settings": {"confidenceThreshold": "0.5"}},
        "settings.confidenceThreshold",
        None,
    ),
    "settings not an object": ({"jobContext": JOB, "settings": [1]}, "settings", None),
    "unknown in jobContext": ({"jobContext": job(salary=1)}, "jobContext.salary", UNKNOWN),
    "unknown in settings": (
        {"jobContext": JOB, "settings": {"theme": "dark"}},
        "settings.theme",
        UNKNOWN,
    ),
    "unknown top-level": ({"jobContext": JOB, "notes": "x"}, "notes", UNKNOWN),
    # Mass assignment: none of the server-owned fields can be set by the client.
    **{
        f"mass assignment of {name}": ({"jobContext": JOB, name: value}, name, UNKNOWN)
        for name, value in {
            "id": "3f1e0c56-2a9b-4d0e-8f00-000000000001",
            "userId": "someone-else",
            "status": "completed",
            "startedAt": "2020-01-01T00:00:00Z",
            "endedAt": "2020-01-01T00:00:00Z",
            "createdAt": "2020-01-01T00:00:00Z",
        }.items()
    },
}


async def test_create_session_limits(client, new_user):
    api = Api(client, new_user())
    failures = await refused(
        lambda body: api.request("POST", "/interview-sessions", json=body), CREATE_SESSION
    )
    assert failures == {}
    assert (await api.list_sessions()).json() == []


async def test_several_problems_are_reported_together_or_one_at_a_time(client, new_user):
    """``message`` is a string or a list of strings, each naming a field."""
    api = Api(client, new_user())
    r = await api.request(
        "POST",
        "/interview-sessions",
        json={"jobContext": {"title": "", "company": "c" * 201}, "settings": {"x": 1}},
    )
    assert r.status_code == 400
    messages = messages_of(r)
    assert messages
    assert all(
        m.split(":", 1)[0] in {"jobContext.title", "jobContext.company", "settings.x"}
        for m in messages
    ), messages


UPDATE_SESSION: Cases = {
    "status unknown": ({"status": "archived"}, "status", "archived"),
    "status null": ({"status": None}, "status", None),
    "jobContext title empty": ({"jobContext": job(title="")}, "jobContext.title", None),
    "jobContext company missing": (
        {"jobContext": job(company=...)},
        "jobContext.company",
        REQUIRED,
    ),
    "jobContext title too long": (
        {"jobContext": job(title="t" * 201)},
        "jobContext.title",
        "200",
    ),
    "jobContext seniority unknown": (
        {"jobContext": job(seniority="staff")},
        "jobContext.seniority",
        None,
    ),
    "jobContext null": ({"jobContext": None}, "jobContext", None),
    "settings threshold": (
        {"settings": {"confidenceThreshold": 2}},
        "settings.confidenceThreshold",
        None,
    ),
    "unknown in jobContext": ({"jobContext": job(extra=True)}, "jobContext.extra", UNKNOWN),
    "unknown in settings": ({"settings": {"volume": 11}}, "settings.volume", UNKNOWN),
    "unknown top-level": ({"title": "x"}, "title", UNKNOWN),
    **{
        f"mass assignment of {name}": ({name: value, "status": "paused"}, name, UNKNOWN)
        for name, value in {
            "id": "3f1e0c56-2a9b-4d0e-8f00-000000000001",
            "userId": "someone-else",
            "startedAt": "2020-01-01T00:00:00Z",
            "endedAt": "2020-01-01T00:00:00Z",
            "createdAt": "2020-01-01T00:00:00Z",
        }.items()
    },
}


async def test_update_session_limits(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    failures = await refused(lambda body: api.update(s["id"], body), UPDATE_SESSION)
    assert failures == {}
    assert (await api.get(s["id"])).json() == s


def response(**changes: Any) -> dict[str, Any]:
    body = {**RESPONSE, **changes}
    return {k: v for k, v in body.items() if v is not ...}


CREATE_INTERACTION: Cases = {
    "question missing": ({}, "question", REQUIRED),
    "question empty": ({"question": ""}, "question", None),
    "question too long": ({"question": "q" * 5_001}, "question", "5000"),
    "question not a string": ({"question": ["q"]}, "question", None),
    "classification type missing": (
        {"question": "q", "questionClassification": {"category": "x"}},
        "questionClassification.type",
        REQUIRED,
    ),
    "classification type unknown": (
        {"question": "q", "questionClassification": {"type": "trick"}},
        "questionClassification.type",
        "trick",
    ),
    "classification difficulty unknown": (
        {"question": "q", "questionClassification": {"type": "technical", "difficulty": "hard"}},
        "questionClassification.difficulty",
        None,
    ),
    "classification requiresSTAR not a bool": (
        {"question": "q", "questionClassification": {"type": "technical", "requiresSTAR": "no"}},
        "questionClassification.requiresSTAR",
        None,
    ),
    "more than 10 responses": (
        {"question": "q", "generatedResponses": [response(id=f"r{i}") for i in range(11)]},
        "generatedResponses",
        "10",
    ),
    "response content too long": (
        {"question": "q", "generatedResponses": [response(content="c" * 20_001)]},
        "generatedResponses[0].content",
        "20000",
    ),
    "response content missing": (
        {"question": "q", "generatedResponses": [response(content=...)]},
        "generatedResponses[0].content",
        REQUIRED,
    ),
    "response id missing": (
        {"question": "q", "generatedResponses": [RESPONSE, response(id=...)]},
        "generatedResponses[1].id",
        REQUIRED,
    ),
    "response structure missing": (
        {"question": "q", "generatedResponses": [response(structure=...)]},
        "generatedResponses[0].structure",
        REQUIRED,
    ),
    "response structure unknown": (
        {"question": "q", "generatedResponses": [response(structure="essay")]},
        "generatedResponses[0].structure",
        "essay",
    ),
    "response structure wrong case": (
        {"question": "q", "generatedResponses": [response(structure="star")]},
        "generatedResponses[0].structure",
        None,
    ),
    "estimatedDuration negative": (
        {"question": "q", "generatedResponses": [response(estimatedDuration=-1)]},
        "generatedResponses[0].estimatedDuration",
        None,
    ),
    "estimatedDuration a numeric string": (
        {"question": "q", "generatedResponses": [response(estimatedDuration="45")]},
        "generatedResponses[0].estimatedDuration",
        None,
    ),
    "requiresSTAR a string": (
        {"question": "q", "questionClassification": {"type": "technical", "requiresSTAR": "1"}},
        "questionClassification.requiresSTAR",
        None,
    ),
    "estimatedDuration not an integer": (
        {"question": "q", "generatedResponses": [response(estimatedDuration=1.5)]},
        "generatedResponses[0].estimatedDuration",
        None,
    ),
    "confidence above 1": (
        {"question": "q", "generatedResponses": [response(confidence=1.01)]},
        "generatedResponses[0].confidence",
        None,
    ),
    "confidence below 0": (
        {"question": "q", "generatedResponses": [response(confidence=-0.5)]},
        "generatedResponses[0].confidence",
        None,
    ),
    "tags not strings": (
        {"question": "q", "generatedResponses": [response(tags=[1])]},
        "generatedResponses[0].tags[0]",
        None,
    ),
    "unknown top-level": ({"question": "q", "answer": "a"}, "answer", UNKNOWN),
    "unknown in classification": (
        {"question": "q", "questionClassification": {"type": "technical", "score": 1}},
        "questionClassification.score",
        UNKNOWN,
    ),
    "unknown in a response": (
        {"question": "q", "generatedResponses": [response(rank=1)]},
        "generatedResponses[0].rank",
        UNKNOWN,
    ),
    **{
        f"mass assignment of {name}": ({"question": "q", name: value}, name, UNKNOWN)
        for name, value in {
            "id": "3f1e0c56-2a9b-4d0e-8f00-000000000001",
            "timestamp": "2020-01-01T00:00:00Z",
            "selectedResponse": "chosen",
            "userFeedback": 5,
        }.items()
    },
}


async def test_create_interaction_limits(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    failures = await refused(
        lambda body: api.request(
            "POST", "/interview-sessions/interactions", json={"sessionId": s["id"], **body}
        ),
        CREATE_INTERACTION,
    )
    assert failures == {}
    assert (await api.interactions(s["id"])).json() == []


async def test_create_interaction_session_id(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    path = "/interview-sessions/interactions"
    r = await api.request("POST", path, json={"question": "q"})
    assert_field_error(r, "sessionId", REQUIRED)
    for bad in ("not-a-uuid", "12345", s["id"][:-1], s["id"] + "0", s["id"].replace("-", "")):
        r = await api.request("POST", path, json={"sessionId": bad, "question": "q"})
        assert_error(r, 400, INVALID_UUID)
    r = await api.request("POST", path, json={"sessionId": 42, "question": "q"})
    assert_field_error(r, "sessionId")
    assert (await api.interactions(s["id"])).json() == []


UPDATE_INTERACTION: Cases = {
    "userFeedback 0": ({"userFeedback": 0}, "userFeedback", None),
    "userFeedback 6": ({"userFeedback": 6}, "userFeedback", None),
    "userFeedback not an integer": ({"userFeedback": 4.5}, "userFeedback", None),
    "userFeedback a string": ({"userFeedback": "5"}, "userFeedback", None),
    "selectedResponse too long": (
        {"selectedResponse": "s" * 20_001},
        "selectedResponse",
        "20000",
    ),
    "selectedResponse not a string": ({"selectedResponse": 1}, "selectedResponse", None),
    "unknown top-level": ({"comment": "great"}, "comment", UNKNOWN),
    **{
        f"mass assignment of {name}": ({name: value, "userFeedback": 3}, name, UNKNOWN)
        for name, value in {
            "id": "3f1e0c56-2a9b-4d0e-8f00-000000000001",
            "sessionId": "3f1e0c56-2a9b-4d0e-8f00-000000000002",
            "question": "rewritten",
            "timestamp": "2020-01-01T00:00:00Z",
        }.items()
    },
}


async def test_update_interaction_limits(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(s["id"])
    failures = await refused(lambda body: api.update_interaction(i["id"], body), UPDATE_INTERACTION)
    assert failures == {}
    assert (await api.interactions(s["id"])).json() == [i]


LATENCIES = ("transcriptionLatencyMs", "responseGenerationMs", "totalLatencyMs")
RECORD_METRICS: Cases = {
    **{
        f"{name} {label}": ({name: value}, name, None)
        for name in LATENCIES
        for label, value in (
            ("negative", -1),
            ("above one hour", 3_600_001),
            ("not an integer", 1.5),
            ("a numeric string", "1200"),
        )
    },
    "transcriptionAccuracy above 1": (
        {"transcriptionAccuracy": 1.01},
        "transcriptionAccuracy",
        None,
    ),
    "transcriptionAccuracy below 0": (
        {"transcriptionAccuracy": -0.01},
        "transcriptionAccuracy",
        None,
    ),
    "userSatisfaction 0": ({"userSatisfaction": 0}, "userSatisfaction", None),
    "userSatisfaction 6": ({"userSatisfaction": 6}, "userSatisfaction", None),
    "userSatisfaction not an integer": ({"userSatisfaction": 4.5}, "userSatisfaction", None),
    "userSatisfaction a string": ({"userSatisfaction": "3"}, "userSatisfaction", None),
    "transcriptionAccuracy a string": (
        {"transcriptionAccuracy": "0.9"},
        "transcriptionAccuracy",
        None,
    ),
    "unknown top-level": ({"cpuLoad": 0.5}, "cpuLoad", UNKNOWN),
    **{
        f"mass assignment of {name}": ({name: value}, name, UNKNOWN)
        for name, value in {
            "id": "3f1e0c56-2a9b-4d0e-8f00-000000000001",
            "createdAt": "2020-01-01T00:00:00Z",
        }.items()
    },
}


async def test_record_metrics_limits(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    failures = await refused(
        lambda body: api.request(
            "POST", "/interview-sessions/metrics", json={"sessionId": s["id"], **body}
        ),
        RECORD_METRICS,
    )
    assert failures == {}
    r = await api.request("POST", "/interview-sessions/metrics", json={"totalLatencyMs": 1})
    assert_field_error(r, "sessionId", REQUIRED)
    r = await api.request(
        "POST", "/interview-sessions/metrics", json={"sessionId": "nope", "totalLatencyMs": 1}
    )
    assert_error(r, 400, INVALID_UUID)
    assert (await api.metrics(s["id"])).json() == []


async def test_limit_must_be_an_integer_from_1_to_1000(client, new_user):
    api = Api(client, new_user())
    await api.new_session()
    for bad in ("0", "1001", "-1", "abc", "1.5", "", "true"):
        r = await api.request("GET", f"/interview-sessions?limit={bad}")
        assert_field_error(r, "limit")
    assert len((await api.list_sessions(limit=1)).json()) == 1


async def test_analytics_dates_must_be_valid_and_ordered(client, new_user):
    api = Api(client, new_user())
    for name in ("startDate", "endDate"):
        for bad in ("2024-13-01", "2024-02-30", "01/02/2024", "yesterday", "2024-1-5", ""):
            r = await api.analytics(**{name: bad})
            assert_field_error(r, name)
    r = await api.analytics(startDate="2024-02-01", endDate="2024-01-31")
    assert r.status_code == 400
    body = r.json()
    assert (body["statusCode"], body["error"]) == (400, "Bad Request")
    assert "startDate" in body["message"] and "endDate" in body["message"]
    # The same day on both ends is a valid one-day window.
    r = await api.analytics(startDate="2024-01-31", endDate="2024-01-31")
    assert r.status_code == 200
