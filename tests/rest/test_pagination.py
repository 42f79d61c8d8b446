"""REST lists at scale: cursors in a Link header, filters, search, strict parameters."""

from __future__ import annotations

import base64
import re

import pytest

from tests.api import Api, assert_error

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


async def pages(api: Api, url: str) -> list[list[dict]]:
    """Follow rel=next links from ``url`` to the end."""
    out = []
    while True:
        r = await api.request("GET", url)
        assert r.status_code == 200, r.text
        out.append(r.json())
        link = r.headers.get("link")
        if link is None:
            return out
        url = LINK.match(link)["url"]  # type: ignore[index]


async def test_following_next_links_visits_every_session_once_newest_first(api, app_clock):
    made = []
    for n in range(7):
        app_clock.advance(minutes=1)
        made.append((await api.new_session(jobContext={"title": f"R{n}", "company": "C"}))["id"])
    got = await pages(api, "/interview-sessions?limit=3")
    assert [len(p) for p in got] == [3, 3, 1]
    assert [s["id"] for p in got for s in p] == made[::-1]


async def test_paging_while_sessions_are_created_neither_skips_nor_repeats(api, app_clock):
    before = []
    for _ in range(6):
        app_clock.advance(minutes=1)
        before.append((await api.new_session())["id"])
    r = await api.request("GET", "/interview-sessions?limit=2")
    seen = [s["id"] for s in r.json()]
    url = LINK.match(r.headers["link"])["url"]  # type: ignore[index]
    for _ in range(3):  # new sessions arrive between pages
        app_clock.advance(minutes=1)
        await api.new_session()
    seen += [s["id"] for p in await pages(api, url) for s in p]
    assert seen == before[::-1]


async def test_sessions_created_in_the_same_instant_are_ordered_by_id(api, app_clock):
    ids = [(await api.new_session())["id"] for _ in range(5)]  # the clock does not move
    got = [s["id"] for p in await pages(api, "/interview-sessions?limit=2") for s in p]
    assert sorted(got) == sorted(ids) and len(got) == 5
    assert got == sorted(ids, reverse=True)


async def test_without_limit_the_first_page_is_up_to_1000(api):
    for _ in range(3):
        await api.new_session()
    r = await api.request("GET", "/interview-sessions")
    assert len(r.json()) == 3 and "link" not in r.headers
    assert_error(
        await api.request("GET", "/interview-sessions?limit=1001"),
        400,
        "limit: must be an integer between 1 and 1000",
    )


async def test_filters_combine_and_carry_into_the_next_link(api, app_clock):
    app_clock.set(app_clock.now.replace(day=1))
    a = await api.new_session(jobContext={"title": "Backend Engineer", "company": "Acme"})
    app_clock.advance(days=1)
    b = await api.new_session(
        jobContext={"title": "Data", "company": "ACME Labs", "interviewType": "behavioral"}
    )
    app_clock.advance(days=1)
    c = await api.new_session(
        jobContext={"title": "Ops", "company": "Initech", "description": "ACME clients"}
    )
    await api.set_status(c["id"], "pause")
    await api.set_status(a["id"], "complete")

    async def ids(query: str) -> list[str]:
        return [s["id"] for p in await pages(api, f"/interview-sessions?{query}") for s in p]

    assert await ids("q=acme") == [c["id"], b["id"], a["id"]]  # title, company or description
    assert await ids("q=acme&limit=1") == [c["id"], b["id"], a["id"]]  # the filter follows
    assert await ids("status=paused,completed") == [c["id"], a["id"]]
    assert await ids("status=paused&status=active") == [c["id"], b["id"]]
    assert await ids("interviewType=behavioral") == [b["id"]]
    assert await ids("createdFrom=2024-01-02&createdTo=2024-01-02") == [b["id"]]
    assert await ids("createdFrom=2024-01-02&q=engineer") == []
    assert_error(
        await api.request("GET", "/interview-sessions?createdFrom=2024-01-03&createdTo=2024-01-01"),
        400,
        "createdFrom must not be after createdTo",
    )
    assert_error(
        await api.request("GET", "/interview-sessions?status=done"),
        400,
        "status: must be one of active, paused, completed",
    )


async def test_search_wildcards_are_literal(api):
    plain = await api.new_session(jobContext={"title": "Senior engineer", "company": "C"})
    percent = await api.new_session(jobContext={"title": "100% remote", "company": "C"})
    r = await api.request("GET", "/interview-sessions", params={"q": "%"})
    assert [s["id"] for s in r.json()] == [percent["id"]]
    r = await api.request("GET", "/interview-sessions", params={"q": "_"})
    assert r.json() == []
    r = await api.request("GET", "/interview-sessions", params={"q": "  SENIOR  "})
    assert [s["id"] for s in r.json()] == [plain["id"]]


async def test_search_finds_terms_anywhere_in_long_descriptions(api, app_clock):
    """Texts longer than the indexed copy (1,200 bytes) are searched in full:
    a term at the very end, or straddling the 1,200th byte, is found; one only
    in a short session's text is not found in the long ones."""
    filler = "é" * 599  # 1,198 bytes
    descriptions = {
        "tail": "x" * 3000 + " needle",
        "straddle": filler + "needle" + "y" * 50,
        "head": "needle " + "z" * 5000,
        "none": "w" * 4000,
        "short": "a short needle",
    }
    made = {}
    for name, text in descriptions.items():
        app_clock.advance(minutes=1)
        made[name] = (
            await api.new_session(jobContext={"title": name, "company": "C", "description": text})
        )["id"]
    await api.set_status(made["straddle"], "pause")

    async def ids(query: str) -> list[str]:
        return [s["id"] for p in await pages(api, f"/interview-sessions?{query}") for s in p]

    want = [made[n] for n in ("short", "head", "straddle", "tail")]
    assert await ids("q=needle") == want
    assert await ids("q=needle&limit=1") == want  # page by page
    assert await ids("q=needle&status=paused") == [made["straddle"]]
    assert await ids("q=%C3%A9needle") == [made["straddle"]]
    assert await ids("q=wwww") == [made["none"]]


async def test_a_tampered_or_foreign_cursor_is_400(client, new_user, app_clock):
    alice, bob = Api(client, new_user()), Api(client, new_user())
    for _ in range(3):
        app_clock.advance(minutes=1)
        await alice.new_session()
        await bob.new_session()
    r = await alice.request("GET", "/interview-sessions?limit=1")
    cursor = LINK.match(r.headers["link"])["url"].split("cursor=")[1]  # type: ignore[index]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[5] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for who, value in ((alice, tampered), (bob, cursor), (alice, "not-a-cursor"), (alice, "")):
        r = await who.request("GET", "/interview-sessions", params={"cursor": value})
        assert_error(r, 400, "Invalid cursor: it is not one this list gave you")


async def test_unknown_query_parameters_are_400_on_every_route(api):
    s = await api.new_session()
    assert_error(
        await api.request("GET", "/interview-sessions?offset=5"),
        400,
        "offset: unknown query parameter",
    )
    for path in (
        f"/interview-sessions/{s['id']}",
        f"/interview-sessions/{s['id']}/details",
        "/interview-sessions/active",
        "/interview-sessions/analytics",
    ):
        r = await api.request("GET", f"{path}?page=2&sort=asc")
        assert_error(r, 400, ["page: unknown query parameter", "sort: unknown query parameter"])
