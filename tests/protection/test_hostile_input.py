"""Input no database can store, or meant to hurt: a clear 400, nothing stored."""

from __future__ import annotations

import pytest

from tests.api import Api
from tests.conftest import bearer, make_token
from tests.graphql.gql import errors_of


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"jobContext": {"title": "a\\u0000b", "company": "C"}}', "jobContext.title"),
        (
            b'{"jobContext": {"title": "T", "company": "C", "requirements": ["ok", "\\u0000"]}}',
            "jobContext.requirements[1]",
        ),
    ],
    ids=["nul", "nul-in-list"],
)
async def test_unstorable_text_is_refused(api, body, field):
    r = await api.request(
        "POST", "/interview-sessions", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == f"{field}: text must be valid UTF-8 without NUL characters"
    assert (await api.request("GET", "/interview-sessions")).json() == []


async def test_lone_surrogates_are_refused(api):
    r = await api.request(
        "POST",
        "/interview-sessions",
        content=b'{"jobContext": {"title": "T", "company": "\\ud800"}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    raw = (
        b'{"query": "mutation($t: String!) { createSession(input: {jobContext: '
        b'{title: $t, company: \\"C\\"}}) { id } }", "variables": {"t": "\\ud800"}}'
    )
    r = await api.request(
        "POST", "/graphql", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400  # the body is not valid JSON text: a request error
    assert errors_of(r.json())[0][0] == "BAD_REQUEST"
    assert (await api.request("GET", "/interview-sessions")).json() == []


async def test_unstorable_text_through_graphql(api):
    body = await api.graphql(
        'mutation($t: String!) { createSession(input: {jobContext: {title: $t, company: "C"}}) { id } }',
        {"t": "a\u0000b"},
    )
    assert errors_of(body) == [
        ("BAD_REQUEST", "jobContext.title: text must be valid UTF-8 without NUL characters")
    ]


async def test_integral_floats_count_as_integers(api):
    s = await api.new_session()
    r = await api.record_metrics(s["id"], totalLatencyMs=1200.0, userSatisfaction=5.0)
    assert r.status_code == 201
    assert (r.json()["totalLatencyMs"], r.json()["userSatisfaction"]) == (1200, 5)
    r = await api.record_metrics(s["id"], userSatisfaction=4.5)
    assert r.status_code == 400
    r = await api.record_metrics(s["id"], totalLatencyMs="1200")
    assert r.status_code == 400
    r = await api.record_metrics(s["id"], totalLatencyMs=1e300)
    assert r.status_code == 400


async def test_deeply_nested_json_is_refused_cleanly(api):
    nested = "[" * 5000 + "]" * 5000
    r = await api.request(
        "POST",
        "/interview-sessions",
        content=f'{{"jobContext": {nested}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["statusCode"] == 400


async def test_a_token_with_an_unstorable_sub_is_refused(client):
    r = await client.get("/interview-sessions", headers=bearer(make_token("bad\u0000sub")))
    assert r.status_code == 401


async def test_deeply_nested_graphql_variables_are_refused_cleanly(api):
    nested = "[" * 5000 + "]" * 5000
    raw = (
        '{"query": "query($l: Int) { sessions(limit: $l) { id } }", "variables": {"l": '
        + nested
        + "}}"
    ).encode()
    r = await api.request(
        "POST", "/graphql", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert errors_of(r.json())[0][0] == "BAD_REQUEST"
    assert (await api.graphql("{ sessions { id } }")) == {"data": {"sessions": []}}
