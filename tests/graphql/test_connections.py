"""Relay connections: sessionsConnection and InterviewSession.interactionsConnection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import Api
from tests.graphql.gql import errors_of

PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $filter: SessionFilter) {
  sessionsConnection(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id status jobContext { title } } }
  }
}
"""


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


async def connection(api: Api, **variables: Any) -> dict[str, Any]:
    body = await api.graphql(PAGE, variables)
    assert "errors" not in body, body
    return body["data"]["sessionsConnection"]


async def made(api: Api, clock, n: int, **job: Any) -> list[str]:
    ids = []
    for i in range(n):
        clock.advance(minutes=1)
        s = await api.new_session(jobContext={"title": f"T{i}", "company": "C", **job})
        ids.append(s["id"])
    return ids


async def test_forward_and_backward_paging_cover_the_list_once(api, app_clock):
    ids = (await made(api, app_clock, 5))[::-1]  # newest first
    page = await connection(api, first=2)
    seen = [e["node"]["id"] for e in page["edges"]]
    assert page["pageInfo"]["hasNextPage"] and not page["pageInfo"]["hasPreviousPage"]
    assert page["totalCount"] == 5
    while page["pageInfo"]["hasNextPage"]:
        page = await connection(api, first=2, after=page["pageInfo"]["endCursor"])
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"]
    assert seen == ids
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]

    back = await connection(api, last=2)
    assert [e["node"]["id"] for e in back["edges"]] == ids[-2:]
    assert back["pageInfo"]["hasPreviousPage"] and not back["pageInfo"]["hasNextPage"]
    back = await connection(api, last=2, before=back["pageInfo"]["startCursor"])
    assert [e["node"]["id"] for e in back["edges"]] == ids[1:3]
    assert back["pageInfo"]["hasNextPage"]


async def test_filters_and_total_count(api, app_clock):
    app_clock.set(app_clock.now.replace(day=3))
    a = (await made(api, app_clock, 2, description="Python backend"))[0]
    b = (await made(api, app_clock, 1, interviewType="cultural"))[0]
    await api.set_status(a, "pause")
    page = await connection(api, filter={"status": ["PAUSED", "COMPLETED"]})
    assert [e["node"]["id"] for e in page["edges"]] == [a] and page["totalCount"] == 1
    page = await connection(api, filter={"search": "PYTHON"})
    assert page["totalCount"] == 2
    page = await connection(api, filter={"interviewType": "CULTURAL"})
    assert [e["node"]["id"] for e in page["edges"]] == [b]
    page = await connection(api, filter={"createdFrom": "2024-01-04"})
    assert page["totalCount"] == 0 and page["edges"] == []
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 2, "last": 2}, "Use first (with after) or last (with before), not both"),
        ({"first": 101}, "first: must be an integer between 1 and 100"),
        ({"last": 0}, "last: must be an integer between 1 and 100"),
        ({"after": "bogus"}, "Invalid cursor: it is not one this list gave you"),
        (
            {"filter": {"createdFrom": "2024-02-01", "createdTo": "2024-01-01"}},
            "createdFrom must not be after createdTo",
        ),
    ],
)
async def test_bad_page_requests_are_bad_request(api, variables, message):
    body = await api.graphql(PAGE, variables)
    assert errors_of(body) == [("BAD_REQUEST", message)]


async def test_a_cursor_of_another_user_or_list_is_refused(client, new_user, app_clock):
    alice, bob = Api(client, new_user()), Api(client, new_user())
    await made(alice, app_clock, 2)
    s = (await made(bob, app_clock, 1))[0]
    await bob.new_interaction(s)
    cursor = (await connection(alice, first=1))["pageInfo"]["endCursor"]
    assert errors_of(await bob.graphql(PAGE, {"after": cursor}))[0][0] == "BAD_REQUEST"
    interaction_cursor = (
        await bob.graphql(
            "query($id: ID!) { session(id: $id) { interactionsConnection { edges { cursor } } } }",
            {"id": s},
        )
    )["data"]["session"]["interactionsConnection"]["edges"][0]["cursor"]
    assert errors_of(await bob.graphql(PAGE, {"after": interaction_cursor}))[0][0] == "BAD_REQUEST"


INTERACTIONS = """
query($first: Int, $after: String) {
  sessionsConnection(first: 50) {
    edges { node { id interactionsConnection(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { question } } } } }
  }
}
"""


@pytest.fixture
def settings_overrides():
    # Statement counts of one strategy; more sessions than the default active cap.
    return {"graphql_verify_plans": False, "max_active_sessions": 100}


async def test_interaction_pages_are_batched_over_sessions(api, app_clock, count_statements):
    sessions = await made(api, app_clock, 12)
    for sid in sessions:
        for q in range(3):
            app_clock.advance(seconds=1)
            await api.new_interaction(sid, question=f"{sid[:4]}-{q}")
    count_statements.statements.clear()
    body = await api.graphql(INTERACTIONS, {"first": 2})
    edges = body["data"]["sessionsConnection"]["edges"]
    assert len(edges) == 12
    for edge in edges:
        conn = edge["node"]["interactionsConnection"]
        prefix = edge["node"]["id"][:4]
        assert [e["node"]["question"] for e in conn["edges"]] == [f"{prefix}-0", f"{prefix}-1"]
        assert conn["totalCount"] == 3 and conn["pageInfo"]["hasNextPage"]
    # sessions page + one windowed statement for every first page + one grouped count
    assert len(count_statements.queries) == 3, count_statements.queries

    first = edges[0]["node"]
    body = await api.graphql(
        """query($id: ID!, $after: String) { session(id: $id) {
             interactionsConnection(first: 2, after: $after) {
               pageInfo { hasNextPage hasPreviousPage } edges { node { question } } } } }""",
        {"id": first["id"], "after": first["interactionsConnection"]["pageInfo"]["endCursor"]},
    )
    conn = body["data"]["session"]["interactionsConnection"]
    assert [e["node"]["question"] for e in conn["edges"]] == [f"{first['id'][:4]}-2"]
    assert conn["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True}
