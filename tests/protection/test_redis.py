"""Redis rate-limit storage: real Redis, and two server processes sharing one budget."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from app.ratelimit import RateLimiter
from tests.conftest import REDIS_URL, REQUIRE_REDIS, bearer, make_token
from tests.server import running_server


def redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc!r}"
    return None


@pytest.fixture(scope="module")
def redis_url() -> str:
    problem = redis_problem()
    if problem:
        if REQUIRE_REDIS:
            pytest.fail(f"REQUIRE_REDIS=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    return REDIS_URL


async def test_limiter_on_redis_counts_exactly(redis_url):
    limiter = RateLimiter("3/minute;100/second", redis_url)
    key = f"test:{uuid.uuid4()}"
    verdicts = [await limiter.hit(key) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].limit == 3 and verdicts[3].reset >= 1
    other = await limiter.hit(f"test:{uuid.uuid4()}")
    assert other.allowed


async def test_concurrent_hits_never_exceed_the_limit(redis_url):
    limiter = RateLimiter("20/minute", redis_url)
    key = f"test:{uuid.uuid4()}"
    verdicts = await asyncio.gather(*(limiter.hit(key) for _ in range(50)))
    assert sum(v.allowed for v in verdicts) == 20


def test_two_server_processes_share_one_budget(redis_url, tmp_path):
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/shared.db",
        "RATE_LIMITS": "10/minute",
        "RATE_LIMIT_STORAGE": redis_url,
    }
    headers = bearer(make_token(f"user-{uuid.uuid4()}"))
    with running_server(env) as a, running_server(env) as b:
        statuses = []
        for i in range(10):
            base = a if i % 2 == 0 else b
            r = httpx.get(f"{base}/interview-sessions", headers=headers, timeout=10)
            statuses.append(r.status_code)
            assert r.headers["RateLimit-Remaining"] == str(9 - i)
        refused = [
            httpx.get(f"{base}/interview-sessions", headers=headers, timeout=10) for base in (a, b)
        ]
        assert statuses == [200] * 10
        assert [r.status_code for r in refused] == [429, 429]
        assert all(r.json()["statusCode"] == 429 for r in refused)
        other = bearer(make_token(f"user-{uuid.uuid4()}"))
        assert httpx.get(f"{b}/interview-sessions", headers=other, timeout=10).status_code == 200


async def test_a_refused_request_spends_no_window_even_under_races(redis_url):
    limiter = RateLimiter("100/minute;10/second", redis_url)
    key = f"test:{uuid.uuid4()}"
    verdicts = await asyncio.gather(*(limiter.hit(key) for _ in range(30)))
    assert sum(v.allowed for v in verdicts) == 10
    refused = [v for v in verdicts if not v.allowed]
    assert all(v.limit == 10 and v.remaining == 0 for v in refused)
    # Only the 10 allowed requests count against the minute.
    after = await RateLimiter("100/minute", redis_url).hit(key)
    assert after.remaining == 100 - 10 - 1


async def test_redis_headers_describe_the_tightest_window(redis_url):
    limiter = RateLimiter("5/minute;3/second", redis_url)
    key = f"test:{uuid.uuid4()}"
    first = await limiter.hit(key)
    assert (first.limit, first.remaining) == (3, 2)
    assert 1 <= first.reset <= 1


def test_persisted_queries_are_shared_by_two_processes_through_redis(redis_url, tmp_path):
    import hashlib

    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/apq.db",
        "RATE_LIMITS": "1000/minute",
        "RATE_LIMIT_STORAGE": redis_url,  # the persisted-query store follows it
    }
    query = f"query Shared{uuid.uuid4().hex[:8]} {{ sessions(limit: 1) {{ id }} }}"
    ext = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}
    }
    headers = bearer(make_token(f"user-{uuid.uuid4()}"))
    with running_server(env) as a, running_server(env) as b:
        r = httpx.post(f"{b}/graphql", json={"extensions": ext}, headers=headers, timeout=10)
        assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        r = httpx.post(f"{a}/graphql", json={"query": query, "extensions": ext}, headers=headers)
        assert r.json() == {"data": {"sessions": []}}
        r = httpx.post(f"{b}/graphql", json={"extensions": ext}, headers=headers, timeout=10)
        assert r.json() == {"data": {"sessions": []}}
