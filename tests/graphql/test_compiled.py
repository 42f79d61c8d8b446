"""The compiled plans answer exactly as the standard executor does.

Every document runs through two apps on the same database: one with compiled
plans (the default) and one with GRAPHQL_COMPILED off, over POST and GET, with
each media type. Status, headers (but date, X-Request-ID and RateLimit-*) and
body bytes must be equal; the test also checks which documents the plans
answered and which they left to the standard executor.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.api import Api
from tests.conftest import bearer, make_token

FULL = """
  id userId status startedAt endedAt createdAt
  jobContext { title company description requirements interviewType seniority }
  settings { transcriptionEnabled responseGeneration confidenceThreshold
             preferredLanguage enabledFeatures }
"""
DETAILS = """
  interactions { id sessionId question selectedResponse userFeedback timestamp
    questionClassification { type category difficulty requiresSTAR }
    generatedResponses { id content structure estimatedDuration confidence tags } }
  metrics { id sessionId transcriptionLatencyMs responseGenerationMs totalLatencyMs
    transcriptionAccuracy userSatisfaction createdAt }
"""

COMPILED = [
    (f"{{ sessions {{ {FULL} }} }}", None, None),
    (f"{{ sessions(limit: 2) {{ {FULL} {DETAILS} }} }}", None, None),
    (
        "query($n: Int, $s: SessionStatus) { sessions(limit: $n, status: $s) { id status } }",
        {"n": 5, "s": "PAUSED"},
        None,
    ),
    (
        "{ a: sessions(limit: 1) { id x: id __typename } b: activeSessions { id } __typename }",
        None,
        None,
    ),
    (
        "{ sessions { ...S jobContext { ...J } } } fragment S on InterviewSession { id status "
        "jobContext { title } } fragment J on JobContext { company title }",
        None,
        None,
    ),
    ("{ sessions { ... on InterviewSession { id } ... { status } } }", None, None),
    (
        "{ sessions { id status @skip(if: true) endedAt @include(if: false) createdAt @include(if: true) } }",
        None,
        None,
    ),
    ("query($id: ID!) { session(id: $id) { " + FULL + DETAILS + " } }", "SESSION", None),
    (
        "{ analytics { totalSessions averageSessionDuration averageLatency averageAccuracy "
        "averageSatisfaction mostCommonQuestionTypes { type count } "
        "performanceTrends { date metrics { latency accuracy satisfaction } } } }",
        None,
        None,
    ),
    (
        "query($a: Date, $b: Date) { analytics(startDate: $a, endDate: $b) { totalSessions "
        "performanceTrends { date } } }",
        {"a": "2000-01-01", "b": "2100-01-01"},
        None,
    ),
    ('{ analytics(startDate: "2000-01-01") { totalSessions averageLatency } }', None, None),
    ("query One { sessions { id } } query Two { activeSessions { status } }", None, "Two"),
    (
        "{ sessions(limit: 1) { interactions { id } metrics { id } } activeSessions { metrics { id } } }",
        None,
        None,
    ),
]

STANDARD_ONLY = [
    ("query($x: Boolean!) { sessions { id status @include(if: $x) } }", {"x": False}, None),
    ('{ session(id: "00000000-0000-4000-8000-000000000000") { id } }', None, None),
    ('{ session(id: "nope") { id } }', None, None),
    ("{ sessions(limit: 0) { id } }", None, None),
    ("{ sessions { nope } }", None, None),
    ("{ sessions { id }", None, None),
    ("query($n: Int) { sessions(limit: $n) { id } }", {"n": "ten"}, None),
    ("query One { sessions { id } } query Two { activeSessions { id } }", None, None),
    ("{ __schema { queryType { name } } }", None, None),
    (  # two mutation fields run one after the other: the standard executor's
        'mutation { a: createSession(input: {jobContext: {title: "", company: "C"}}) { id } '
        'b: createSession(input: {jobContext: {title: "", company: "D"}}) { id } }',
        None,
        None,
    ),
    ('{ analytics(startDate: "2024-02-01", endDate: "2024-01-01") { totalSessions } }', None, None),
]


VOLATILE = {"date", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


def stable(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """What must be equal between the strategies: status, headers, body."""
    headers = sorted((k, v) for k, v in r.headers.items() if k not in VOLATILE)
    return r.status_code, headers, r.content


ACCEPTS = [
    {},
    {"accept": "application/graphql-response+json"},
    {"accept": "application/json", "x-request-id": "same-for-both"},
]


async def seed(client: httpx.AsyncClient, user: str) -> str:
    api = Api(client, user)
    a = await api.new_session(
        jobContext={
            "title": "A",
            "company": "C",
            "interviewType": "technical",
            "requirements": ["x", "y"],
            "description": "d",
        }
    )
    b = await api.new_session(settings={"confidenceThreshold": 1, "preferredLanguage": "de"})
    await api.add_interaction(
        a["id"],
        questionClassification={"type": "behavioral", "requiresSTAR": True},
        generatedResponses=[
            {
                "id": "r",
                "content": "c",
                "structure": "STAR",
                "estimatedDuration": 3,
                "confidence": 1,
            }
        ],
    )
    await api.add_interaction(a["id"])
    await api.record_metrics(a["id"], totalLatencyMs=1000, transcriptionAccuracy=0.96)
    await api.record_metrics(a["id"], userSatisfaction=4)
    await api.status(b["id"], "pause")
    await api.status(a["id"], "complete")
    return a["id"]


@pytest.mark.parametrize("extra", ACCEPTS)
@pytest.mark.parametrize(("query", "variables", "operation"), COMPILED)
async def test_compiled_answers_match_the_standard_executor(
    two_apps, new_user, query, variables, operation, extra
):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    sid = await seed(fast, user)
    if variables == "SESSION":
        variables = {"id": sid}
    body = {"query": query, "variables": variables, "operationName": operation}
    headers = {**bearer(make_token(user)), **extra}
    plans = fast_app.graphql.plans
    before = plans.answered
    a = await fast.post("/graphql", json=body, headers=headers)
    b = await slow.post("/graphql", json=body, headers=headers)
    assert a.status_code == 200
    assert "errors" not in b.json(), b.json()
    assert stable(a) == stable(b)
    assert plans.answered == before + 1, "the compiled plan should have answered"
    # The same over GET (queries only).
    params = {"query": query, "variables": json.dumps(variables)}
    if operation:
        params["operationName"] = operation
    a = await fast.get("/graphql", params=params, headers=headers)
    b = await slow.get("/graphql", params=params, headers=headers)
    assert stable(a) == stable(b)
    assert plans.answered == before + 2


@pytest.mark.parametrize("extra", ACCEPTS)
@pytest.mark.parametrize(("query", "variables", "operation"), STANDARD_ONLY)
async def test_what_plans_do_not_cover_is_answered_by_the_standard_executor(
    two_apps, new_user, query, variables, operation, extra
):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    await seed(fast, user)
    body = {"query": query, "variables": variables, "operationName": operation}
    headers = {**bearer(make_token(user)), **extra}
    plans = fast_app.graphql.plans
    before = plans.answered
    a = await fast.post("/graphql", json=body, headers=headers)
    b = await slow.post("/graphql", json=body, headers=headers)
    assert stable(a) == stable(b)
    assert plans.answered == before


async def test_anonymous_requests_are_left_to_the_standard_executor(two_apps):
    (fast_app, fast), _ = two_apps
    r = await fast.post("/graphql", json={"query": "{ sessions { id } }"})
    assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert fast_app.graphql.plans.answered == 0


async def test_cursors_are_signed_only_when_a_query_reads_them(two_apps, new_user, monkeypatch):
    """Each cursor is an HMAC: a page that reads only ``endCursor`` signs one
    cursor, not one per edge, on both executors."""
    from app.domain.paging import Cursors

    signed: list[str] = []
    encode = Cursors.encode

    def counting(self: Cursors, scope: str, position: Any) -> str:
        cursor = encode(self, scope, position)
        signed.append(cursor)
        return cursor

    monkeypatch.setattr(Cursors, "encode", counting)
    (_fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    headers = bearer(make_token(user))
    for title in "ABCDE":
        job = {"jobContext": {"title": title, "company": "C"}}
        assert (
            await fast.post("/interview-sessions", json=job, headers=headers)
        ).status_code == 201
    end_only = "{ sessionsConnection(first: 4) { edges { node { id } } pageInfo { endCursor } } }"
    every = "{ sessionsConnection(first: 4) { edges { cursor } pageInfo { endCursor } } }"
    for client in (fast, slow):
        signed.clear()
        page = (await client.post("/graphql", json={"query": end_only}, headers=headers)).json()
        # (In tests the canary may run the standard executor too: the same cursor again.)
        assert set(signed) == {page["data"]["sessionsConnection"]["pageInfo"]["endCursor"]}
        signed.clear()
        page = (await client.post("/graphql", json={"query": every}, headers=headers)).json()
        edges = page["data"]["sessionsConnection"]["edges"]
        assert len(edges) == 4 and set(signed) == {e["cursor"] for e in edges}


# ---------------------------------------------------------------- mutations

INTERACTION_SELECTION = (
    "id sessionId question selectedResponse userFeedback timestamp "
    "questionClassification { type category difficulty requiresSTAR } "
    "generatedResponses { id content structure estimatedDuration confidence tags }"
)
MUTATION_ERRORS = [
    ('mutation { createSession(input: {jobContext: {title: "", company: "C"}}) { id } }', None),
    (
        "mutation($i: CreateInteractionInput!) { createInteraction(input: $i) { id } }",
        {"i": {"sessionId": "00000000-0000-4000-8000-000000000000", "question": "Q"}},
    ),
    (
        "mutation($i: CreateInteractionInput!) { createInteraction(input: $i) { id } }",
        {"i": {"sessionId": "nope", "question": "Q"}},
    ),
    (
        "mutation($i: RecordMetricsInput!) { recordMetrics(input: $i) { id } }",
        {"i": {"sessionId": "SESSION", "userSatisfaction": 9}},
    ),
    (  # a completed session takes no interactions
        "mutation($i: CreateInteractionInput!) { createInteraction(input: $i) { id } }",
        {"i": {"sessionId": "SESSION", "question": "Q"}},
    ),
    ('mutation { deleteSession(id: "00000000-0000-4000-8000-000000000000") }', None),
]


def _with_session(variables: Any, sid: str) -> Any:
    return json.loads(json.dumps(variables).replace('"SESSION"', json.dumps(sid)))


@pytest.mark.parametrize("extra", ACCEPTS)
@pytest.mark.parametrize(("query", "variables"), MUTATION_ERRORS)
async def test_a_failing_mutation_plan_answers_as_the_standard_executor(
    two_apps, new_user, query, variables, extra
):
    """The plan runs the mutation once and writes its error exactly as the
    standard executor does (message, locations, path, code; data null)."""
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    sid = await seed(fast, user)  # completed
    body = {"query": query, "variables": _with_session(variables, sid)}
    headers = {**bearer(make_token(user)), **extra}
    plans = fast_app.graphql.plans
    before = plans.answered
    a = await fast.post("/graphql", json=body, headers=headers)
    b = await slow.post("/graphql", json=body, headers=headers)
    assert "errors" in b.json() and b.json()["data"] is None
    assert stable(a) == stable(b)
    assert plans.answered == before + 1, "the mutation's plan should have answered"


def _masked(answer: dict[str, Any]) -> dict[str, Any]:
    """Ids and times differ between two runs of a mutation; the rest may not."""
    text = json.dumps(answer)
    text = re.sub(r'"(id|sessionId|timestamp|createdAt|startedAt)": "[^"]*"', r'"\1": "-"', text)
    return json.loads(text)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (
            f"mutation($i: CreateInteractionInput!) {{ createInteraction(input: $i) "
            f"{{ {INTERACTION_SELECTION} }} }}",
            {
                "i": {
                    "sessionId": "SESSION",
                    "question": "Why React?",
                    "questionClassification": {
                        "type": "TECHNICAL",
                        "category": "frontend",
                        "requiresSTAR": True,
                    },
                    "generatedResponses": [
                        {"id": "r1", "content": "c", "structure": "STAR", "confidence": 1}
                    ],
                }
            },
        ),
        (
            "mutation($i: RecordMetricsInput!) { recordMetrics(input: $i) "
            "{ id sessionId totalLatencyMs transcriptionAccuracy userSatisfaction createdAt } }",
            {"i": {"sessionId": "SESSION", "totalLatencyMs": 1200, "transcriptionAccuracy": 1}},
        ),
        (
            'mutation { createSession(input: {jobContext: {title: "T", company: "C", '
            "interviewType: TECHNICAL}}) { id status jobContext { title interviewType } "
            "settings { confidenceThreshold enabledFeatures } interactions { id } "
            "metrics { id } } }",
            None,
        ),
        ("mutation($id: ID!) { pauseSession(id: $id) { id status endedAt } }", {"id": "SESSION"}),
    ],
)
async def test_a_mutation_plan_answers_as_the_standard_executor(
    two_apps, new_user, query, variables
):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    headers = bearer(make_token(user))
    answers = []
    for client in (fast, slow):
        job = {"jobContext": {"title": "A", "company": "C"}}
        sid = (await client.post("/interview-sessions", json=job, headers=headers)).json()["id"]
        body = {"query": query, "variables": _with_session(variables, sid)}
        plans = fast_app.graphql.plans
        before = plans.answered
        r = await client.post("/graphql", json=body, headers=headers)
        assert r.status_code == 200 and "errors" not in r.json(), r.json()
        if client is fast:
            assert plans.answered == before + 1, "the mutation's plan should have answered"
        answers.append(_masked(r.json()))
    assert answers[0] == answers[1]


async def test_a_mutation_the_plan_cannot_write_runs_once(two_apps, new_user, monkeypatch):
    """When the plan cannot write what the mutation returned, the standard
    executor completes that value: the mutation never runs a second time."""
    from app.resolvers.compiled import Plan
    from app.resolvers.plan_rules import Fallback

    async def cannot(self: Plan, *args: Any) -> Any:
        raise Fallback("as a completion that meets something it does not model")

    monkeypatch.setattr(Plan, "_complete", cannot)
    (fast_app, fast), _ = two_apps
    user = new_user()
    headers = bearer(make_token(user))
    query = (
        'mutation { createSession(input: {jobContext: {title: "T", company: "C"}}) '
        "{ id status jobContext { title } interactions { id } } }"
    )
    r = await fast.post("/graphql", json={"query": query}, headers=headers)
    created = r.json()["data"]["createSession"]
    assert created["status"] == "ACTIVE" and created["interactions"] == []
    listed = (await fast.get("/interview-sessions", headers=headers)).json()
    assert [s["id"] for s in listed] == [created["id"]]  # one session, not two
    assert fast_app.graphql.plans.passed_on >= 1
