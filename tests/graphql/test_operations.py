"""Every query and mutation of graphql.md, through HTTP, on both databases."""

from __future__ import annotations

import pytest

from tests.api import JOB, Api
from tests.graphql.gql import (
    ANALYTICS_FIELDS,
    INTERACTION_FIELDS,
    METRIC_FIELDS,
    SESSION_FIELDS,
    errors_of,
    rest_shape,
)

CREATE = f"""
mutation Create($input: CreateSessionInput!) {{ createSession(input: $input) {{ {SESSION_FIELDS} }} }}
"""


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


async def gql_create(api: Api, **job) -> dict:
    body = await api.graphql(CREATE, {"input": {"jobContext": {**JOB, **job}}})
    assert "errors" not in body, body
    return body["data"]["createSession"]


async def test_create_session_fills_defaults_and_reads_back_through_rest(api):
    s = await gql_create(api, interviewType="TECHNICAL", seniority="MID", requirements=["Go"])
    assert s["status"] == "ACTIVE"
    assert s["userId"] == api.user
    assert s["endedAt"] is None
    assert s["startedAt"] == s["createdAt"] and s["createdAt"].endswith("Z")
    assert s["jobContext"] == {
        "title": "Software Engineer",
        "company": "Tech Corp",
        "description": None,
        "requirements": ["Go"],
        "interviewType": "TECHNICAL",
        "seniority": "MID",
    }
    assert s["settings"] == {
        "transcriptionEnabled": True,
        "responseGeneration": True,
        "confidenceThreshold": 0.8,
        "preferredLanguage": "en",
        "enabledFeatures": ["real-time-transcription", "response-suggestions"],
    }
    rest = (await api.request("GET", f"/interview-sessions/{s['id']}")).json()
    assert rest == rest_shape(s)


async def test_session_created_by_rest_reads_identically_through_graphql(api):
    created = await api.new_session(
        jobContext={
            **JOB,
            "description": "d",
            "interviewType": "behavioral",
            "seniority": "senior",
        },
        settings={"confidenceThreshold": 0.55, "preferredLanguage": "de"},
    )
    q = f"query($id: ID!) {{ session(id: $id) {{ {SESSION_FIELDS} }} }}"
    body = await api.graphql(q, {"id": created["id"]})
    assert rest_shape(body["data"]["session"]) == created
    assert body["data"]["session"]["jobContext"]["interviewType"] == "BEHAVIORAL"


async def test_sessions_limit_status_and_active(api):
    a = await api.new_session()
    b = await api.new_session()
    c = await api.new_session()
    await api.status(b["id"], "pause")
    body = await api.graphql(
        """{ all: sessions { id } two: sessions(limit: 2) { id }
             paused: sessions(status: PAUSED) { id status } activeSessions { id status } }"""
    )
    data = body["data"]
    assert [s["id"] for s in data["all"]] == [c["id"], b["id"], a["id"]]
    assert [s["id"] for s in data["two"]] == [c["id"], b["id"]]
    assert data["paused"] == [{"id": b["id"], "status": "PAUSED"}]
    assert [s["id"] for s in data["activeSessions"]] == [c["id"], a["id"]]
    rest_active = (await api.request("GET", "/interview-sessions/active")).json()
    assert [s["id"] for s in rest_active] == [c["id"], a["id"]]


async def test_update_and_state_mutations(api):
    s = await gql_create(api)
    upd = f"""mutation($id: ID!, $input: UpdateSessionInput!) {{
        updateSession(id: $id, input: $input) {{ {SESSION_FIELDS} }} }}"""
    body = await api.graphql(
        upd, {"id": s["id"], "input": {"jobContext": {"title": "Staff", "company": "Y"}}}
    )
    u = body["data"]["updateSession"]
    assert u["jobContext"]["title"] == "Staff" and u["jobContext"]["requirements"] == []
    assert u["settings"] == s["settings"] and u["status"] == "ACTIVE"

    for op, status in (
        ("pauseSession", "PAUSED"),
        ("startSession", "ACTIVE"),
        ("pauseSession", "PAUSED"),
        ("pauseSession", "PAUSED"),
    ):
        body = await api.graphql(
            f"mutation($id: ID!) {{ {op}(id: $id) {{ status endedAt }} }}", {"id": s["id"]}
        )
        assert body["data"][op] == {"status": status, "endedAt": None}

    body = await api.graphql(
        "mutation($id: ID!) { completeSession(id: $id) { status endedAt } }", {"id": s["id"]}
    )
    done = body["data"]["completeSession"]
    assert done["status"] == "COMPLETED" and done["endedAt"].endswith("Z")
    again = await api.graphql(
        "mutation($id: ID!) { completeSession(id: $id) { endedAt } }", {"id": s["id"]}
    )
    assert again["data"]["completeSession"]["endedAt"] == done["endedAt"]

    body = await api.graphql("mutation($id: ID!) { startSession(id: $id) { id } }", {"id": s["id"]})
    assert errors_of(body) == [
        ("BAD_REQUEST", "Invalid status transition from 'completed' to 'active'")
    ]
    body = await api.graphql(upd, {"id": s["id"], "input": {"status": "PAUSED"}})
    assert errors_of(body) == [
        ("BAD_REQUEST", "Invalid status transition from 'completed' to 'paused'")
    ]
    rest = (await api.request("GET", f"/interview-sessions/{s['id']}")).json()
    assert rest["status"] == "completed" and rest["endedAt"] == done["endedAt"]


async def test_delete_session(api):
    s = await api.new_session()
    await api.add_interaction(s["id"])
    body = await api.graphql("mutation($id: ID!) { deleteSession(id: $id) }", {"id": s["id"]})
    assert body == {"data": {"deleteSession": True}}
    assert (await api.request("GET", f"/interview-sessions/{s['id']}")).status_code == 404
    body = await api.graphql("mutation($id: ID!) { deleteSession(id: $id) }", {"id": s["id"]})
    assert errors_of(body) == [("NOT_FOUND", "Interview session not found")]


async def test_interactions_and_metrics_mutations_match_rest_details(api):
    s = await gql_create(api)
    create_i = f"""mutation($input: CreateInteractionInput!) {{
        createInteraction(input: $input) {{ {INTERACTION_FIELDS} }} }}"""
    body = await api.graphql(
        create_i,
        {
            "input": {
                "sessionId": s["id"],
                "question": "What is your experience with React?",
                "questionClassification": {
                    "type": "TECHNICAL",
                    "category": "frontend",
                    "difficulty": "MID",
                    "requiresSTAR": False,
                },
                "generatedResponses": [
                    {
                        "id": "response-1",
                        "content": "I have 3 years...",
                        "structure": "DIRECT",
                        "estimatedDuration": 45,
                        "confidence": 0.9,
                        "tags": ["experience"],
                    },
                    {"id": "response-2", "content": "Situation...", "structure": "STAR"},
                ],
            }
        },
    )
    i = body["data"]["createInteraction"]
    assert i["selectedResponse"] is None and i["userFeedback"] is None
    assert i["generatedResponses"][1] == {
        "id": "response-2",
        "content": "Situation...",
        "structure": "STAR",
        "estimatedDuration": None,
        "confidence": None,
        "tags": [],
    }
    upd_i = f"""mutation($id: ID!, $input: UpdateInteractionInput!) {{
        updateInteraction(id: $id, input: $input) {{ {INTERACTION_FIELDS} }} }}"""
    body = await api.graphql(
        upd_i,
        {"id": i["id"], "input": {"selectedResponse": "I have 3 years...", "userFeedback": 5}},
    )
    i = body["data"]["updateInteraction"]
    assert (i["selectedResponse"], i["userFeedback"]) == ("I have 3 years...", 5)
    body = await api.graphql(upd_i, {"id": i["id"], "input": {"userFeedback": None}})
    i = body["data"]["updateInteraction"]
    assert (i["selectedResponse"], i["userFeedback"]) == ("I have 3 years...", None)

    rec = f"""mutation($input: RecordMetricsInput!) {{ recordMetrics(input: $input) {{ {METRIC_FIELDS} }} }}"""
    body = await api.graphql(
        rec,
        {
            "input": {
                "sessionId": s["id"],
                "transcriptionLatencyMs": 1200,
                "totalLatencyMs": 2000,
                "transcriptionAccuracy": 0.96,
            }
        },
    )
    m = body["data"]["recordMetrics"]
    assert m["transcriptionAccuracy"] == 0.96 and m["userSatisfaction"] is None

    details = (await api.request("GET", f"/interview-sessions/{s['id']}/details")).json()
    assert details["interactions"] == [rest_shape(i)]
    assert details["metrics"] == [rest_shape(m)]

    q = f"""query($id: ID!) {{ session(id: $id) {{ {SESSION_FIELDS}
        interactions {{ {INTERACTION_FIELDS} }} metrics {{ {METRIC_FIELDS} }} }} }}"""
    body = await api.graphql(q, {"id": s["id"]})
    assert rest_shape(body["data"]["session"]) == details


async def test_interaction_on_completed_session_is_refused(api):
    s = await api.new_session()
    await api.status(s["id"], "complete")
    body = await api.graphql(
        'mutation($s: ID!) { createInteraction(input: {sessionId: $s, question: "Q"}) { id } }',
        {"s": s["id"]},
    )
    assert errors_of(body) == [("BAD_REQUEST", "Cannot add interactions to a completed session")]


async def test_analytics_matches_rest(api):
    s = await api.new_session()
    await api.add_interaction(s["id"], questionClassification={"type": "behavioral"})
    await api.add_interaction(s["id"], questionClassification={"type": "technical"})
    await api.add_interaction(s["id"], questionClassification={"type": "technical"})
    await api.record_metrics(s["id"], totalLatencyMs=1000, transcriptionAccuracy=0.9)
    await api.record_metrics(s["id"], totalLatencyMs=2000, userSatisfaction=4)
    await api.status(s["id"], "complete")
    body = await api.graphql(f"{{ analytics {{ {ANALYTICS_FIELDS} }} }}")
    g = body["data"]["analytics"]
    assert g["mostCommonQuestionTypes"] == [
        {"type": "TECHNICAL", "count": 2},
        {"type": "BEHAVIORAL", "count": 1},
    ]
    assert g["averageLatency"] == 1500
    rest = (await api.request("GET", "/interview-sessions/analytics")).json()
    assert rest_shape(g) == rest
    day = rest["performanceTrends"][0]["date"]
    body = await api.graphql(
        f"query($d: Date) {{ analytics(startDate: $d, endDate: $d) {{ {ANALYTICS_FIELDS} }} }}",
        {"d": day},
    )
    assert rest_shape(body["data"]["analytics"]) == rest
    body = await api.graphql(
        '{ analytics(startDate: "2024-02-01", endDate: "2024-01-01") { totalSessions } }'
    )
    assert errors_of(body) == [("BAD_REQUEST", "startDate must not be after endDate")]
    body = await api.graphql('{ analytics(startDate: "2024-13-01") { totalSessions } }')
    assert errors_of(body)[0][0] == "BAD_REQUEST"


async def test_query_over_get(api):
    await api.new_session()
    r = await api.request("GET", "/graphql", params={"query": "{ sessions { status } }"})
    assert r.status_code == 200
    assert r.json() == {"data": {"sessions": [{"status": "ACTIVE"}]}}


async def test_graphiql_is_served_to_browsers(client):
    r = await client.get("/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert "graphiql" in r.text.lower()
