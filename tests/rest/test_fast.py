"""Fast REST reads (app/rest/fast.py) against Litestar: for every request,
the answer in front of Litestar and Litestar's own must be the same (status,
headers, body); what the fast path does not take exactly is Litestar's."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.api import CLASSIFICATION, RESPONSE, Api
from tests.conftest import bearer, make_settings, make_token

VOLATILE = {"date", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


def stable(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted(
        # (Litestar lists a 405's allowed methods in no fixed order.)
        (k, ", ".join(sorted(v.split(", "))) if k == "allow" else v)
        for k, v in r.headers.items()
        if k not in VOLATILE
    )
    return r.status_code, headers, r.content


@pytest.fixture
async def two_apps(db_url):
    fast = create_app(make_settings(db_url))
    slow = create_app(make_settings(db_url, rest_fast_reads=False))
    async with LifespanManager(fast), LifespanManager(slow):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://t")
            for a in (fast, slow)
        ]
        async with clients[0], clients[1]:
            yield (fast, clients[0]), (slow, clients[1])


def reads_of(app) -> object:
    assert app.fast is not None
    return app.fast.__self__  # the FastReads behind the pipeline's hook


async def seeded(client: httpx.AsyncClient, user: str) -> list[str]:
    api = Api(client, user)
    ids = []
    for n in range(5):
        s = await api.new_session(jobContext={"title": f"T{n}", "company": "C", "description": "é"})
        ids.append(s["id"])
    await api.add_interaction(
        ids[0], questionClassification=CLASSIFICATION, generatedResponses=[RESPONSE]
    )
    await api.add_interaction(ids[0])
    await api.record_metrics(ids[0], totalLatencyMs=1000, transcriptionAccuracy=0.96)
    await api.status(ids[1], "complete")
    return ids


ANSWERED = [
    "/interview-sessions",
    "/interview-sessions?limit=2",
    "/interview-sessions?limit=1000",
    "/interview-sessions/{0}/details",
    "/interview-sessions/{1}/details",
]
PASSED_ON = [
    "/interview-sessions?limit=0",
    "/interview-sessions?limit=1001",
    "/interview-sessions?limit=abc",
    "/interview-sessions?limit=02",
    "/interview-sessions?limit=2&limit=3",
    "/interview-sessions?limit=2&status=active",
    "/interview-sessions?cursor=nope",
    "/interview-sessions?cursor=",
    "/interview-sessions?nope=1",
    "/interview-sessions?q=%C3%A9",
    "/interview-sessions/{0}/details?x=1",
    "/interview-sessions/00000000-0000-4000-8000-000000000000/details",
    "/interview-sessions/{OTHER}/details",
    "/interview-sessions/not-a-uuid/details",
]


@pytest.mark.parametrize("url", ANSWERED)
async def test_the_fast_answer_is_litestars(two_apps, new_user, url):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    ids = await seeded(fast, user)
    headers = bearer(make_token(user))
    reads = reads_of(fast_app)
    before = reads.answered
    a = await fast.get(url.format(*ids), headers=headers)
    b = await slow.get(url.format(*ids), headers=headers)
    assert b.status_code == 200, b.text
    assert stable(a) == stable(b)
    assert reads.answered == before + 1, "the fast path should have answered"


async def test_following_fast_next_links_is_litestars_paging(two_apps, new_user):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    await seeded(fast, user)
    headers = bearer(make_token(user))
    urls = {"fast": "/interview-sessions?limit=2", "slow": "/interview-sessions?limit=2"}
    seen: dict[str, list[str]] = {"fast": [], "slow": []}
    for name, client in (("fast", fast), ("slow", slow)):
        url: str | None = urls[name]
        while url:
            r = await client.get(url, headers=headers)
            assert r.status_code == 200
            seen[name] += [s["id"] for s in r.json()]
            link = r.headers.get("link")
            url = link[1 : link.index(">")] if link else None
    assert seen["fast"] == seen["slow"] and len(seen["fast"]) == 5
    assert reads_of(fast_app).answered >= 3  # the cursor pages too


@pytest.mark.parametrize("url", PASSED_ON)
async def test_what_the_fast_path_does_not_take_is_answered_by_litestar(two_apps, new_user, url):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    ids = await seeded(fast, user)
    other = await Api(fast, new_user()).new_session()
    headers = bearer(make_token(user))
    target = url.replace("{OTHER}", other["id"]).format(*ids)
    reads = reads_of(fast_app)
    before = reads.answered
    a = await fast.get(target, headers=headers)
    b = await slow.get(target, headers=headers)
    assert stable(a) == stable(b)
    assert reads.answered == before


async def test_anonymous_and_other_methods_never_take_the_fast_path(two_apps, new_user):
    (fast_app, fast), (_slow_app, slow) = two_apps
    for client in (fast, slow):
        r = await client.get("/interview-sessions")
        assert r.status_code == 401
    user = new_user()
    headers = bearer(make_token(user))
    a = await fast.head("/interview-sessions", headers=headers)
    b = await slow.head("/interview-sessions", headers=headers)
    assert stable(a) == stable(b)
    assert reads_of(fast_app).answered == 0
