"""Every error code of graphql.md, over HTTP: 200 with an errors list."""

from __future__ import annotations

import pytest

from tests.api import Api
from tests.conftest import bearer, make_token
from tests.graphql.gql import errors_of

SESSION = "query($id: ID!) { session(id: $id) { id status } }"


@pytest.fixture
def owner(client, new_user):
    return Api(client, new_user())


@pytest.fixture
def intruder(client, new_user):
    return Api(client, new_user())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        bearer(make_token("u", secret="another-secret-that-is-long-enough-000000")),
        bearer(make_token("u", ttl=-3600)),
        {"Authorization": "Basic dTpw"},
    ],
    ids=["missing", "malformed", "forged", "expired", "wrong-scheme"],
)
async def test_every_operation_needs_a_valid_token(client, headers):
    for doc in (
        "{ sessions { id } }",
        "{ activeSessions { id } }",
        "{ analytics { totalSessions } }",
        '{ session(id: "00000000-0000-4000-8000-000000000000") { id } }',
        'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }',
        'mutation { deleteSession(id: "00000000-0000-4000-8000-000000000000") }',
    ):
        r = await client.post("/graphql", json={"query": doc}, headers=headers)
        assert r.status_code == 200
        body = r.json()
        assert body["data"] is None
        assert [
            (e["extensions"]["code"], e["extensions"]["statusCode"], e["message"])
            for e in body["errors"]
        ] == [("UNAUTHENTICATED", 401, "Unauthorized")]


async def test_unauthenticated_mutation_changes_nothing(client, owner):
    await client.post(
        "/graphql",
        json={
            "query": 'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }'
        },
    )
    r = await owner.request("GET", "/interview-sessions")
    assert r.json() == []


async def test_introspection_works_without_a_token(client):
    r = await client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    assert r.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_forbidden_on_every_operation_naming_another_users_session(owner, intruder):
    s = await owner.new_session()
    i = (await owner.add_interaction(s["id"])).json()
    docs = [
        ("query($id: ID!) { session(id: $id) { id } }", {"id": s["id"]}),
        (
            "mutation($id: ID!) { updateSession(id: $id, input: {status: PAUSED}) { id } }",
            {"id": s["id"]},
        ),
        ("mutation($id: ID!) { startSession(id: $id) { id } }", {"id": s["id"]}),
        ("mutation($id: ID!) { pauseSession(id: $id) { id } }", {"id": s["id"]}),
        ("mutation($id: ID!) { completeSession(id: $id) { id } }", {"id": s["id"]}),
        ("mutation($id: ID!) { deleteSession(id: $id) }", {"id": s["id"]}),
        (
            'mutation($id: ID!) { createInteraction(input: {sessionId: $id, question: "Q"}) { id } }',
            {"id": s["id"]},
        ),
        (
            "mutation($id: ID!) { recordMetrics(input: {sessionId: $id, totalLatencyMs: 5}) { id } }",
            {"id": s["id"]},
        ),
        (
            "mutation($id: ID!) { updateInteraction(id: $id, input: {userFeedback: 1}) { id } }",
            {"id": i["id"]},
        ),
    ]
    for doc, variables in docs:
        body = await intruder.graphql(doc, variables)
        assert errors_of(body) == [("FORBIDDEN", "Access denied to this session")], doc
        assert body["errors"][0]["extensions"]["statusCode"] == 403
    details = (await owner.request("GET", f"/interview-sessions/{s['id']}/details")).json()
    assert details["status"] == "active"
    assert len(details["interactions"]) == 1 and details["metrics"] == []
    assert details["interactions"][0]["userFeedback"] is None


async def test_not_found_and_bad_ids(owner):
    missing = "00000000-0000-4000-8000-000000000000"
    body = await owner.graphql(SESSION, {"id": missing})
    assert errors_of(body) == [("NOT_FOUND", "Interview session not found")]
    assert body["errors"][0]["extensions"]["statusCode"] == 404
    body = await owner.graphql(
        "mutation($id: ID!) { updateInteraction(id: $id, input: {userFeedback: 2}) { id } }",
        {"id": missing},
    )
    assert errors_of(body) == [("NOT_FOUND", "Interaction not found")]
    body = await owner.graphql(SESSION, {"id": "not-a-uuid"})
    assert errors_of(body) == [("BAD_REQUEST", "Validation failed (uuid is expected)")]


@pytest.mark.parametrize(
    ("input_", "field"),
    [
        ({"jobContext": {"title": "", "company": "X"}}, "jobContext.title"),
        ({"jobContext": {"title": "x" * 201, "company": "X"}}, "jobContext.title"),
        (
            {"jobContext": {"title": "T", "company": "X", "requirements": ["r"] * 101}},
            "jobContext.requirements",
        ),
        (
            {
                "jobContext": {"title": "T", "company": "X"},
                "settings": {"confidenceThreshold": 1.5},
            },
            "settings.confidenceThreshold",
        ),
        (
            {
                "jobContext": {"title": "T", "company": "X"},
                "settings": {"transcriptionEnabled": None},
            },
            "settings.transcriptionEnabled",
        ),
    ],
)
async def test_validation_errors_name_the_field_like_rest(owner, input_, field):
    body = await owner.graphql(
        "mutation($input: CreateSessionInput!) { createSession(input: $input) { id } }",
        {"input": input_},
    )
    [(code, message)] = errors_of(body)
    assert code == "BAD_REQUEST" and message.startswith(f"{field}: ")
    rest = await owner.request("POST", "/interview-sessions", json=input_)
    assert rest.status_code == 400
    assert rest.json()["message"] == message
    assert (await owner.request("GET", "/interview-sessions")).json() == []


async def test_interaction_and_metric_limits(owner):
    s = await owner.new_session()
    cases = [
        (
            'mutation($s: ID!) { createInteraction(input: {sessionId: $s, question: ""}) { id } }',
            "question: ",
        ),
        (
            "mutation($s: ID!) { recordMetrics(input: {sessionId: $s, userSatisfaction: 6}) { id } }",
            "userSatisfaction: ",
        ),
        (
            "mutation($s: ID!) { recordMetrics(input: {sessionId: $s, totalLatencyMs: 3600001}) { id } }",
            "totalLatencyMs: ",
        ),
        (
            'mutation { recordMetrics(input: {sessionId: "nope", totalLatencyMs: 1}) { id } }',
            "Validation failed (uuid is expected)",
        ),
    ]
    for doc, prefix in cases:
        body = await owner.graphql(doc, {"s": s["id"]} if "$s" in doc else {})
        [(code, message)] = errors_of(body)
        assert code == "BAD_REQUEST" and message.startswith(prefix), message


async def test_coercion_errors_are_bad_request(owner):
    for doc in (
        '{ sessions(limit: "ten") { id } }',
        "{ sessions(status: DONE) { id } }",
        "{ sessions { nope } }",
        "{ sessions { id }",
        "query($l: Int) { sessions(limit: $l) { id } }",
    ):
        r = await owner.request("POST", "/graphql", json={"query": doc, "variables": {"l": "x"}})
        assert r.status_code == 200
        codes = {e["extensions"]["code"] for e in r.json()["errors"]}
        assert codes == {"BAD_REQUEST"}, (doc, r.json())


async def test_limit_out_of_range(owner):
    body = await owner.graphql("{ sessions(limit: 1001) { id } }")
    assert errors_of(body) == [("BAD_REQUEST", "limit: must be an integer between 1 and 1000")]


async def test_malformed_http_requests_answer_4xx_with_coded_errors_and_no_data(owner):
    r = await owner.request(
        "POST", "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "data" not in r.json()
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    r = await owner.request("POST", "/graphql", json={"variables": {}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    r = await owner.request(
        "GET", "/graphql", params={"query": 'mutation { deleteSession(id: "x") }'}
    )
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("settings_overrides", [{"max_active_sessions": 1}])
async def test_conflict_when_too_many_active(owner, settings_overrides):
    first = await owner.new_session()
    body = await owner.graphql(
        'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }'
    )
    [(code, message)] = errors_of(body)
    assert code == "CONFLICT" and "at most 1" in message
    assert body["errors"][0]["extensions"]["statusCode"] == 409
    await owner.status(first["id"], "pause")
    second = (
        await owner.graphql(
            'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }'
        )
    )["data"]["createSession"]
    body = await owner.graphql(
        "mutation($id: ID!) { startSession(id: $id) { id } }", {"id": first["id"]}
    )
    assert errors_of(body)[0][0] == "CONFLICT"
    active = (await owner.request("GET", "/interview-sessions/active")).json()
    assert [s["id"] for s in active] == [second["id"]]


async def test_unexpected_errors_are_masked(owner, service, monkeypatch, caplog):
    async def boom(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(service.sessions, "list_sessions", boom)
    body = await owner.graphql("{ sessions { id } }")
    assert errors_of(body) == [("INTERNAL_SERVER_ERROR", "Internal server error")]
    assert body["errors"][0]["extensions"]["statusCode"] == 500
    assert "secret" not in str(body) and "RuntimeError" not in str(body)
    assert any("SELECT secret" in str(r.exc_info) for r in caplog.records if r.exc_info)


async def test_dates_are_strictly_yyyy_mm_dd_like_rest(owner):
    for bad in ("20240101", "2024-1-01", "2024-13-01"):
        body = await owner.graphql(
            "query($d: Date) { analytics(startDate: $d) { totalSessions } }", {"d": bad}
        )
        assert errors_of(body)[0][0] == "BAD_REQUEST", bad
        r = await owner.request("GET", "/interview-sessions/analytics", params={"startDate": bad})
        assert r.status_code == 400, bad


async def test_the_last_representable_day_is_a_valid_window_end(owner):
    await owner.new_session()
    r = await owner.request(
        "GET", "/interview-sessions/analytics", params={"endDate": "9999-12-31"}
    )
    assert r.status_code == 200
    assert r.json()["totalSessions"] == 1
    body = await owner.graphql('{ analytics(endDate: "9999-12-31") { totalSessions } }')
    assert body == {"data": {"analytics": {"totalSessions": 1}}}
