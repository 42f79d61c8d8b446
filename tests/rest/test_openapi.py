"""The OpenAPI document: a summary on every operation, every status a route can
answer with a real example of the contract's body, and the headers every answer
carries."""

from __future__ import annotations

import pytest

from app.context import reason


@pytest.fixture
async def doc(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


async def test_every_operation_has_a_summary_and_the_pipelines_statuses(doc):
    for path, method, op in operations(doc):
        assert op.get("summary"), (path, method)
        statuses = set(op["responses"])
        if path in ("/health", "/ready"):  # probes: no token, no rate limit
            assert statuses == {"200", "503"}
            continue
        assert {"401", "429", "500", "503"} <= statuses, (path, method)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= statuses, (path, method)
        if "{session_id}" in path or "{interaction_id}" in path:
            assert {"400", "403", "404"} <= statuses, (path, method)


async def test_every_error_has_real_examples_of_the_contract_body(doc):
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400 or path in ("/health", "/ready"):
                continue
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            examples = [x["value"] for x in content["examples"].values()]
            assert examples, (path, method, status)
            for value in examples:
                assert value["statusCode"] == int(status), (path, method, value)
                assert value["error"] == reason(int(status))
                assert value["message"]


async def test_every_answer_documents_its_headers(doc):
    headers = doc["components"]["headers"]
    assert {"X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        headers
    )
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            names = set(response.get("headers", {}))
            assert "X-Request-ID" in names, (path, method, status)
            if path not in ("/health", "/ready"):
                assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= names
            if status == "429":
                assert "Retry-After" in names


async def test_health_documents_its_503(doc):
    unhealthy = doc["paths"]["/health"]["get"]["responses"]["503"]["content"]["application/json"]
    assert unhealthy["example"]["database"] == "unavailable"


async def test_every_operation_has_a_short_camel_case_operation_id(doc):
    """Generated clients name their methods after these (issue: names like
    interview_sessions_active_active_sessions); the GraphQL field's name where
    there is one."""
    ids = {(path, method): op.get("operationId") for path, method, op in operations(doc)}
    expected = {
        ("/interview-sessions", "post"): "createSession",
        ("/interview-sessions", "get"): "listSessions",
        ("/interview-sessions/active", "get"): "listActiveSessions",
        ("/interview-sessions/analytics", "get"): "getAnalytics",
        ("/interview-sessions/{session_id}", "get"): "getSession",
        ("/interview-sessions/{session_id}/details", "get"): "getSessionDetails",
        ("/interview-sessions/{session_id}", "put"): "updateSession",
        ("/interview-sessions/{session_id}", "delete"): "deleteSession",
        ("/interview-sessions/{session_id}/start", "put"): "startSession",
        ("/interview-sessions/{session_id}/pause", "put"): "pauseSession",
        ("/interview-sessions/{session_id}/complete", "put"): "completeSession",
        ("/interview-sessions/interactions", "post"): "createInteraction",
        ("/interview-sessions/{session_id}/interactions", "get"): "listInteractions",
        ("/interview-sessions/interactions/{interaction_id}", "put"): "updateInteraction",
        ("/interview-sessions/metrics", "post"): "recordMetrics",
        ("/interview-sessions/{session_id}/metrics", "get"): "listMetrics",
        ("/interview-sessions/events", "get"): "myEvents",
        ("/interview-sessions/{session_id}/events", "get"): "sessionEvents",
    }
    for key, operation_id in expected.items():
        assert ids[key] == operation_id, key
    assert all(i and i[0].islower() and "_" not in i for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids)  # unique
