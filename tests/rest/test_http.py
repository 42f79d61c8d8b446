"""HTTP basics: X-Request-ID, /health, the OpenAPI document."""

from __future__ import annotations

from tests.api import UNAUTHORIZED, Api
from tests.conftest import bearer


async def test_request_id_is_echoed_when_sent(client, new_user):
    api = Api(client, new_user())
    r = await api.request("GET", "/interview-sessions", headers={"X-Request-ID": "req-123.abc:9"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-123.abc:9"
    # Also on errors, answered before and after routing.
    r = await client.get("/interview-sessions", headers={"X-Request-ID": "anon-1"})
    assert (r.status_code, r.json(), r.headers["x-request-id"]) == (401, UNAUTHORIZED, "anon-1")
    r = await api.request("GET", "/nope", headers={"X-Request-ID": "lost-1"})
    assert (r.status_code, r.headers["x-request-id"]) == (404, "lost-1")


async def test_request_id_is_generated_when_absent_or_unusable(client, new_user):
    api = Api(client, new_user())
    ids = []
    for _ in range(3):
        r = await api.request("GET", "/interview-sessions")
        assert r.status_code == 200
        ids.append(r.headers["x-request-id"])
    assert all(ids) and len(set(ids)) == 3
    # An id that could corrupt logs (spaces, newlines, too long) is replaced, not echoed.
    for unsafe in ("two words", "x" * 500, "evil\tvalue"):
        r = await api.request("GET", "/interview-sessions", headers={"X-Request-ID": unsafe})
        assert r.status_code == 200
        assert r.headers["x-request-id"] not in ("", unsafe)
    r = await client.get("/health")
    assert r.headers["x-request-id"]


async def test_health_needs_no_token(client):
    for headers in ({}, bearer("not-a-token")):
        r = await client.get("/health", headers=headers)
        assert (r.status_code, r.json()) == (200, {"status": "ok", "database": "ok"})


DOCUMENTED = {
    "/interview-sessions": {"post": ("CreateSession", "201"), "get": (None, "200")},
    "/interview-sessions/active": {"get": (None, "200")},
    "/interview-sessions/analytics": {"get": (None, "200")},
    "/interview-sessions/{session_id}": {
        "get": (None, "200"),
        "put": ("UpdateSession", "200"),
        "delete": (None, "204"),
    },
    "/interview-sessions/{session_id}/details": {"get": (None, "200")},
    "/interview-sessions/{session_id}/start": {"put": ("NoFields?", "200")},
    "/interview-sessions/{session_id}/pause": {"put": ("NoFields?", "200")},
    "/interview-sessions/{session_id}/complete": {"put": ("NoFields?", "200")},
    "/interview-sessions/{session_id}/interactions": {"get": (None, "200")},
    "/interview-sessions/{session_id}/metrics": {"get": (None, "200")},
    "/interview-sessions/interactions": {"post": ("CreateInteraction", "201")},
    "/interview-sessions/interactions/{interaction_id}": {"put": ("UpdateInteraction", "200")},
    "/interview-sessions/metrics": {"post": ("RecordMetrics", "201")},
    "/health": {"get": (None, "200")},
}


async def test_openapi_documents_every_path_with_bodies_and_the_error_format(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    schemas = spec["components"]["schemas"]

    error = schemas["ErrorBody"]
    assert set(error["required"]) == {"statusCode", "message", "error"}
    assert error["properties"]["statusCode"]["type"] == "integer"
    assert error["properties"]["error"]["type"] == "string"
    message_types = {
        alt.get("type") for alt in error["properties"]["message"].get("oneOf", [])
    } or {error["properties"]["message"].get("type")}
    assert message_types == {"string"}  # always one string (generated clients rely on it)

    missing = []
    for path, operations in DOCUMENTED.items():
        for method, (body, success) in operations.items():
            op = spec["paths"].get(path, {}).get(method)
            if op is None:
                missing.append(f"{method.upper()} {path}")
                continue
            assert success in op["responses"], (path, method)
            if body is None:
                assert "requestBody" not in op, (path, method)
            elif body.endswith("?"):  # optional: nothing, or an empty JSON object
                content = op["requestBody"]["content"]["application/json"]
                assert {"$ref": f"#/components/schemas/{body[:-1]}"} in content["schema"]["oneOf"]
                assert op["requestBody"].get("required") is False, (path, method)
            else:
                content = op["requestBody"]["content"]["application/json"]
                assert content["schema"] == {"$ref": f"#/components/schemas/{body}"}
                assert op["requestBody"].get("required") is True, (path, method)
            if path != "/health":
                # Every route can refuse a token; all but /active can refuse input.
                for code in ("401",) if path.endswith("/active") else ("400", "401"):
                    ref = op["responses"][code]["content"]["application/json"]["schema"]
                    assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
                assert op.get("security") == [{"BearerToken": []}], (path, method)
    assert missing == []

    # Routes that take an id document 403 and 404 with the error body.
    for path in (p for p in DOCUMENTED if "{" in p):
        for method, op in spec["paths"][path].items():
            for code in ("403", "404"):
                ref = op["responses"][code]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, code)

    # The request bodies list their fields, camelCase, and refuse unknown ones.
    create = schemas["CreateSession"]
    assert set(create["properties"]) == {"jobContext", "settings"}
    assert create["required"] == ["jobContext"]
    assert set(schemas["JobContext"]["required"]) == {"title", "company"}
    assert schemas["JobContext"]["properties"]["title"]["maxLength"] == 200
    assert set(schemas["RecordMetrics"]["properties"]) == {
        "sessionId",
        "transcriptionLatencyMs",
        "responseGenerationMs",
        "totalLatencyMs",
        "transcriptionAccuracy",
        "userSatisfaction",
    }
    assert "securitySchemes" in spec["components"]
    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
