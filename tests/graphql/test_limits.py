"""GraphQL document limits: refused before execution, the server fine after."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query

from tests.api import Api
from tests.graphql.gql import errors_of


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


def nested_introspection(levels: int) -> str:
    inner = "name"
    for _ in range(levels):
        inner = f"ofType {{ {inner} }}"
    return f"{{ __schema {{ types {{ fields {{ type {{ {inner} }} }} }} }} }}"


async def assert_still_serving(api: Api) -> None:
    body = await api.graphql("{ sessions { id } }")
    assert body == {"data": {"sessions": []}}


async def test_standard_introspection_query_passes(client):
    for options in (
        {},
        {
            "descriptions": True,
            "specified_by_url": True,
            "directive_is_repeatable": True,
            "schema_description": True,
            "input_value_deprecation": True,
        },
    ):
        r = await client.post("/graphql", json={"query": get_introspection_query(**options)})
        body = r.json()
        assert "errors" not in body, body.get("errors")
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_default_depth_allows_the_deepest_real_query(api):
    deep = (
        "{ sessions { jobContext { title } interactions { generatedResponses { id } "
        "questionClassification { type } } } }"
    )
    assert "errors" not in await api.graphql(deep)


@pytest.mark.parametrize("settings_overrides", [{"graphql_max_depth": 2}])
async def test_depth_over_the_configured_limit_is_refused(api, settings_overrides):
    three = "{ sessions { interactions { generatedResponses { id } } } }"
    [(code, message)] = errors_of(await api.graphql(three))
    assert code == "BAD_REQUEST" and "exceeds maximum operation depth of 2" in message
    via_fragments = (
        "{ sessions { ...S } } fragment S on InterviewSession { interactions { ...I } } "
        "fragment I on Interaction { generatedResponses { id } }"
    )
    assert errors_of(await api.graphql(via_fragments))[0][0] == "BAD_REQUEST"
    assert "errors" not in await api.graphql("{ sessions { interactions { id } } }")
    await assert_still_serving(api)


async def test_deep_introspection_is_refused(client, api):
    for doc in (
        nested_introspection(30),
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
    ):
        r = await client.post("/graphql", json={"query": doc})
        body = r.json()
        assert body.get("data") is None
        assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_REQUEST"}
    await assert_still_serving(api)


async def test_alias_flood_is_refused(api):
    ok = "{ " + " ".join(f"a{i}: sessions {{ id }}" for i in range(15)) + " }"
    assert "errors" not in await api.graphql(ok)
    flood = "{ " + " ".join(f"a{i}: sessions {{ id }}" for i in range(16)) + " }"
    [(code, message)] = errors_of(await api.graphql(flood))
    assert code == "BAD_REQUEST" and "aliases" in message
    await assert_still_serving(api)


async def test_aliases_hidden_in_fragments_are_counted(api):
    fields = " ".join(f"x{i}: id" for i in range(10))
    doc = (
        "{ a: sessions { ...F } b: sessions { ...G } }"
        f" fragment F on InterviewSession {{ {fields} }}"
        f" fragment G on InterviewSession {{ {fields.replace('x', 'y')} }}"
    )
    [(code, message)] = errors_of(await api.graphql(doc))
    assert code == "BAD_REQUEST" and "aliases" in message


async def test_oversized_documents_are_refused(api):
    doc = "{ sessions { " + " ".join(["id"] * 2100) + " } }"
    [(code, message)] = errors_of(await api.graphql(doc))
    assert code == "BAD_REQUEST" and "token" in message.lower()
    await assert_still_serving(api)


async def test_malformed_variables(api):
    r = await api.request(
        "POST",
        "/graphql",
        json={"query": "query($l: Int) { sessions(limit: $l) { id } }", "variables": "oops"},
    )
    assert r.status_code == 400  # not a GraphQL request: GraphQL over HTTP says 4xx
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    r = await api.request(
        "POST",
        "/graphql",
        json={
            "query": "query($i: CreateSessionInput!) { __typename }",
            "variables": {"i": {"jobContext": []}},
        },
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    await assert_still_serving(api)


@pytest.mark.parametrize("settings_overrides", [{"graphql_introspection": False}])
async def test_introspection_off_hides_schema_and_suggestions(api, settings_overrides):
    body = await api.graphql("{ __schema { queryType { name } } }")
    assert errors_of(body)[0][0] == "BAD_REQUEST"
    body = await api.graphql("{ sessions { statu } }")
    [(code, message)] = errors_of(body)
    assert code == "BAD_REQUEST" and "Did you mean" not in message
    await assert_still_serving(api)


async def test_suggestions_stay_on_with_introspection(api):
    [(_, message)] = errors_of(await api.graphql("{ sessions { statu } }"))
    assert "Did you mean 'status'?" in message


async def test_batched_queries_are_refused(api):
    r = await api.request("POST", "/graphql", json=[{"query": "{ sessions { id } }"}] * 2)
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def doubling_fragments(levels: int) -> str:
    doc = "query { sessions { ...F0 } }"
    for i in range(levels):
        doc += f" fragment F{i} on InterviewSession {{ ...F{i + 1} ...F{i + 1} }}"
    return doc + f" fragment F{levels} on InterviewSession {{ id }}"


async def test_fragment_bombs_are_refused_before_validation(client, api):
    # 2^40 expanded fields in a few hundred tokens: refused at once, not computed.
    for headers in ({}, api.headers):
        r = await client.post("/graphql", json={"query": doubling_fragments(40)}, headers=headers)
        assert r.status_code == 200
        [(code, message)] = errors_of(r.json())
        assert code == "BAD_REQUEST"
        assert "too large once fragments are expanded" in message
    await assert_still_serving(api)


async def test_fragment_cycles_are_refused(api):
    doc = (
        "{ sessions { ...A } } fragment A on InterviewSession { id ...B } "
        "fragment B on InterviewSession { status ...A }"
    )
    [(code, _message)] = errors_of(await api.graphql(doc))
    assert code == "BAD_REQUEST"
    await assert_still_serving(api)


async def test_padded_query_text_is_refused(client, api):
    padded = "#" + "x" * 40_000 + "\n{ __typename }"
    r = await client.post("/graphql", json={"query": padded}, headers=api.headers)
    [(code, message)] = errors_of(r.json())
    assert code == "BAD_REQUEST"
    assert "too long" in message
    await assert_still_serving(api)
