"""Rate limits: both windows together, per user, shared by REST and GraphQL.

Time is frozen (the limiter's and the memory storage's clock), so the counts
are exact whatever the machine's speed.
"""

from __future__ import annotations

import limits.aio.storage.memory
import pytest

import app.ratelimit
from tests.api import Api


class FrozenClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    c = FrozenClock()
    monkeypatch.setattr(limits.aio.storage.memory, "time", c)
    monkeypatch.setattr(app.ratelimit, "time", c)
    return c


@pytest.fixture
def settings_overrides():
    return {"rate_limits": "100/minute;10/second"}


@pytest.fixture
def api(client, new_user, clock):
    return Api(client, new_user())


async def test_eleventh_request_in_a_second_is_refused(api, client, new_user):
    for i in range(10):
        r = await api.request("GET", "/interview-sessions")
        assert r.status_code == 200
        assert r.headers["RateLimit-Limit"] == "10"
        assert r.headers["RateLimit-Remaining"] == str(9 - i)
        assert int(r.headers["RateLimit-Reset"]) == 1
    r = await api.request("GET", "/interview-sessions")
    assert r.status_code == 429
    assert r.json() == {
        "statusCode": 429,
        "message": "Rate limit exceeded: retry in 1 seconds",
        "error": "Too Many Requests",
    }
    assert r.headers["Retry-After"] == "1"
    assert r.headers["RateLimit-Limit"] == "10"
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["RateLimit-Reset"] == "1"
    assert "X-Request-ID" in r.headers

    other = Api(client, new_user())
    r = await other.request("GET", "/interview-sessions")
    assert r.status_code == 200 and r.headers["RateLimit-Remaining"] == "9"


async def test_the_second_window_frees_up(api, clock):
    for _ in range(10):
        assert (await api.request("GET", "/interview-sessions")).status_code == 200
    assert (await api.request("GET", "/interview-sessions")).status_code == 429
    clock.advance(1.01)
    r = await api.request("GET", "/interview-sessions")
    assert r.status_code == 200


async def test_minute_budget_trips_at_101(api, clock):
    for _ in range(10):
        for _ in range(10):
            r = await api.request("GET", "/interview-sessions")
            assert r.status_code == 200
        clock.advance(1.01)
    assert r.headers["RateLimit-Limit"] == "100"  # the tighter budget is now the minute
    assert r.headers["RateLimit-Remaining"] == "0"
    r = await api.request("GET", "/interview-sessions")
    assert r.status_code == 429
    assert r.headers["RateLimit-Limit"] == "100"
    retry = int(r.headers["Retry-After"])
    assert 40 <= retry <= 60
    clock.advance(retry)
    assert (await api.request("GET", "/interview-sessions")).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": "5/minute;2/second"}])
async def test_a_refused_burst_does_not_spend_the_minute(api, clock, settings_overrides):
    statuses = []
    for _ in range(3):  # two pass, the third is refused by the burst limit only
        statuses.append((await api.request("GET", "/interview-sessions")).status_code)
    clock.advance(1.01)
    for _ in range(2):
        statuses.append((await api.request("GET", "/interview-sessions")).status_code)
    clock.advance(1.01)
    for _ in range(2):  # one left in the minute: the refused one above did not count
        statuses.append((await api.request("GET", "/interview-sessions")).status_code)
    assert statuses == [200, 200, 429, 200, 200, 200, 429]


async def test_rest_and_graphql_share_one_budget(api):
    for _ in range(5):
        assert (await api.request("GET", "/interview-sessions")).status_code == 200
    for _ in range(5):
        r = await api.request("POST", "/graphql", json={"query": "{ sessions { id } }"})
        assert r.status_code == 200
    r = await api.request("POST", "/graphql", json={"query": "{ sessions { id } }"})
    # GraphQL clients read a GraphQL body; REST keeps the REST body.
    assert r.status_code == 429 and "Retry-After" in r.headers
    error = r.json()["errors"][0]
    assert error["extensions"] == {"code": "RATE_LIMITED", "statusCode": 429}
    assert error["message"].startswith("Rate limit exceeded")
    assert "data" not in r.json()
    rest = await api.request("GET", "/interview-sessions")
    assert rest.status_code == 429 and "Retry-After" in rest.headers
    assert rest.json()["statusCode"] == 429 and rest.json()["error"] == "Too Many Requests"


async def test_probes_metrics_docs_and_ide_files_spend_no_budget(client, clock, app):
    """Opening GraphiQL or the docs loads a dozen files: none spends budget,
    whatever the limits (frontend.md)."""
    pages = [
        "/health",
        "/ready",
        "/metrics",
        "/schema",
        "/schema/swagger",
        "/schema/redoc",
        "/schema/openapi.json",
    ]
    html = {"accept": "text/html"}
    graphiql = await client.get("/graphql", headers=html)
    assert graphiql.status_code == 200
    assets = [a.split('"')[0].split("'")[0] for a in graphiql.text.split("/static/")[1:]]
    for _ in range(3):
        for path in pages:
            r = await client.get(path)
            assert r.status_code in (200, 503), (path, r.status_code)
            assert "ratelimit-limit" not in {k.lower() for k in r.headers}, path
        assert (await client.get("/graphql", headers=html)).status_code == 200
        for asset in assets:
            r = await client.get(f"/static/{asset}")
            assert r.status_code in (200, 404), asset  # 404: the CDN serves it instead
            assert "ratelimit-limit" not in {k.lower() for k in r.headers}, asset
    # The API itself still spends it.
    r = await client.post("/graphql", json={"query": "{ __typename }"})
    assert "ratelimit-limit" in {k.lower() for k in r.headers}


async def test_health_is_exempt(client, clock):
    for _ in range(30):
        r = await client.get("/health")
        assert r.status_code == 200
        assert "RateLimit-Limit" not in r.headers


async def test_anonymous_requests_are_limited_by_address(app, client, clock):
    import httpx

    statuses = [(await client.get("/interview-sessions")).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await other.get("/interview-sessions")).status_code == 401
