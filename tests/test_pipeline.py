"""One pipeline: every answer, whatever produced it, carries the same headers.

REST answers, GraphQL answered by a compiled plan and by the standard
executor, the pipeline's own 401/413/429, Litestar's 404/405, a masked 500,
/health, the OpenAPI document and GraphiQL: each must carry the request id and
the CORS headers for an allowed origin (and none for another), and be
compressed when large and the client accepts it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.api import Api
from tests.conftest import bearer, make_settings, make_token

PAGE = "http://localhost:5173"
EXPOSED = {
    "x-request-id",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"cors_origins": (PAGE,), "rate_limits": "1000/minute"}


async def every_kind_of_answer(client: httpx.AsyncClient, user: str, **headers: str):
    """(label, response) for each kind of answer the API gives."""
    auth = {**bearer(make_token(user)), **headers}
    api = Api(client, user)
    api.headers = auth
    s = await api.new_session()
    for _ in range(12):
        await api.new_interaction(s["id"], question="What is the difference? " * 20)
    big = "{ sessions { id interactions { id question } } }"
    yield "rest 200", await api.request("GET", f"/interview-sessions/{s['id']}/interactions")
    yield "rest 201", await api.create_session()
    yield "rest 400", await api.request("GET", "/interview-sessions/nope")
    yield "rest 401", await client.get("/interview-sessions", headers=headers)
    yield "rest 404 route", await api.request("GET", "/nowhere")
    yield "rest 405", await api.request("PATCH", "/interview-sessions")
    yield (
        "rest 413",
        await api.request(
            "POST",
            "/interview-sessions",
            content=b"x" * 2_000_000,
            headers={"content-type": "application/json"},
        ),
    )
    yield "graphql plan", await api.request("POST", "/graphql", json={"query": big})
    yield (
        "graphql standard",
        await api.request(
            "POST",
            "/graphql",
            json={
                "query": 'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }'
            },
        ),
    )
    yield "graphql error", await api.request("POST", "/graphql", json={"query": "{ nope }"})
    # Idempotency-Key answers are sent by app/idempotency.py, inside the pipeline.
    keyed = {"idempotency-key": f"pipeline-{uuid.uuid4()}"}
    create = {"jobContext": {"title": "a", "company": "b"}}
    yield (
        "rest keyed 201",
        await api.request("POST", "/interview-sessions", json=create, headers=keyed),
    )
    yield (
        "rest replay",
        await api.request("POST", "/interview-sessions", json=create, headers=keyed),
    )
    yield "rest key 422", await api.request("POST", "/interview-sessions", json={}, headers=keyed)
    mutation = {
        "query": 'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }'
    }
    gkey = {"idempotency-key": f"pipeline-{uuid.uuid4()}"}
    yield "graphql keyed", await api.request("POST", "/graphql", json=mutation, headers=gkey)
    yield "graphql replay", await api.request("POST", "/graphql", json=mutation, headers=gkey)
    yield "graphql 415", await api.request("POST", "/graphql", content=b"{}")
    yield "graphiql", await client.get("/graphql", headers={**headers, "accept": "text/html"})
    yield "health", await client.get("/health", headers=headers)
    yield "openapi", await client.get("/schema/openapi.json", headers=headers)


async def test_every_answer_carries_the_request_id_and_cors_headers(client, new_user):
    seen = []
    async for label, r in every_kind_of_answer(client, new_user(), origin=PAGE):
        seen.append(label)
        assert r.headers.get("x-request-id"), label
        assert r.headers.get("access-control-allow-origin") == PAGE, label
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert exposed >= EXPOSED, label
        assert "Origin" in r.headers.get("vary", ""), label
        assert "access-control-allow-credentials" not in r.headers, label
    assert len(seen) == 19


async def test_an_origin_that_is_not_allowed_gets_no_cors_header(client, new_user):
    async for label, r in every_kind_of_answer(client, new_user(), origin="https://evil.example"):
        assert "access-control-allow-origin" not in r.headers, label
        assert r.headers.get("x-request-id"), label


async def test_large_answers_are_compressed_whatever_produced_them(client, new_user):
    expected = {"rest 200", "graphql plan", "graphiql", "openapi"}
    compressed = set()
    async for label, r in every_kind_of_answer(client, new_user(), **{"accept-encoding": "gzip"}):
        if r.headers.get("content-encoding") == "gzip":
            compressed.add(label)
            assert "Accept-Encoding" in r.headers["vary"], label
            assert r.json() if label not in ("graphiql",) else r.text  # httpx decoded it
        elif r.headers.get("content-type", "").startswith(("application/json", "text/")):
            assert len(r.content) < 1024, label  # small answers stay as they are
            assert "Accept-Encoding" in r.headers.get("vary", ""), label
    assert compressed == expected


async def test_brotli_is_preferred_and_q_values_are_respected(client, new_user):
    api = Api(client, new_user())
    for accept, expected in (
        ("gzip, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("gzip;q=0, br;q=0", None),
        ("identity", None),
        ("*", "br"),
    ):
        r = await client.get("/schema/openapi.json", headers={"accept-encoding": accept})
        assert r.headers.get("content-encoding") == expected, accept
        assert r.json()["openapi"].startswith("3.")
    raw = await api.request("GET", "/schema/openapi.json", headers={"accept-encoding": "gzip"})
    assert raw.status_code == 200


async def test_a_preflight_needs_no_token_and_spends_no_budget(client, new_user):
    api = Api(client, new_user())
    preflight = {
        "origin": PAGE,
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization, content-type, idempotency-key",
    }
    for path in ("/interview-sessions/abc/pause", "/graphql", "/nowhere"):
        r = await client.options(path, headers=preflight)
        assert r.status_code == 204, path
        assert r.headers["access-control-allow-origin"] == PAGE
        assert "PUT" in r.headers["access-control-allow-methods"]
        allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        assert int(r.headers["access-control-max-age"]) >= 600
        assert "Origin" in r.headers["vary"]
        assert "ratelimit-remaining" not in r.headers
    first = await api.request("GET", "/interview-sessions")
    assert first.headers["ratelimit-remaining"] == "999"  # the preflights cost nothing
    r = await client.options("/graphql", headers={**preflight, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    ("env", "origin", "allowed"),
    [
        ("production", "http://localhost:5173", False),
        ("development", "http://localhost:5173", True),
        ("development", "http://127.0.0.1:3000", True),
        ("development", "http://evil.example", False),
        ("development", "https://localhost:5173", False),
    ],
)
async def test_cors_defaults(db_url, env, origin, allowed):
    application = create_app(make_settings(db_url, app_env=env))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/health", headers={"origin": origin})
    assert (r.headers.get("access-control-allow-origin") == origin) is allowed


async def test_any_origin(db_url):
    application = create_app(make_settings(db_url, cors_origins=("*",)))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/health", headers={"origin": "https://anything.example"})
    assert r.headers["access-control-allow-origin"] == "*"
