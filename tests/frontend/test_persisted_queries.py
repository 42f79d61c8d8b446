"""Persisted queries: Apollo Client's own link against the running server, and
the protocol's edges spoken directly (hash mismatches, trusted documents)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.api import Api
from tests.conftest import make_token
from tests.frontend.conftest import run_node

QUERY = "query Mine { sessions(limit: 3) { id status } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("method", ["post", "get"])
def test_apollo_clients_persisted_query_link_works(node, live, method):
    result = run_node(node, "apq.mjs", f"{live}/graphql", make_token("apq-user"), QUERY, method)
    first, second = result["results"]
    assert first == second == {"sessions": []}
    requests = result["requests"]
    # 1: the hash alone, unknown -> PersistedQueryNotFound; 2: hash and query -> data;
    # 3: a new client, the hash alone -> data (the server kept it).
    assert [(r["hash"], r["hasQuery"], r["status"]) for r in requests] == [
        (True, False, 200),
        (True, True, 200),
        (True, False, 200),
    ], requests
    assert "PERSISTED_QUERY_NOT_FOUND" in requests[0]["answer"]
    assert '"data"' in requests[2]["answer"]
    if method == "get":
        assert [r["method"] for r in requests] == ["GET", "POST", "GET"]


def persisted(h: str, query: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": h}}}
    if query is not None:
        body["query"] = query
    return {**body, **extra}


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


async def test_the_protocol_spoken_directly(api):
    r = await api.request("POST", "/graphql", json=persisted(sha(QUERY)))
    assert r.status_code == 200
    [error] = r.json()["errors"]
    assert (error["message"], error["extensions"]["code"]) == (
        "PersistedQueryNotFound",
        "PERSISTED_QUERY_NOT_FOUND",
    )
    r = await api.request("POST", "/graphql", json=persisted(sha("{ other }"), QUERY))
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    r = await api.request("POST", "/graphql", json=persisted(sha(QUERY), QUERY))
    assert r.json() == {"data": {"sessions": []}}
    r = await api.request(
        "GET",
        "/graphql",
        params={"extensions": json.dumps(persisted(sha(QUERY))["extensions"])},
    )
    assert r.json() == {"data": {"sessions": []}}
    r = await api.request("POST", "/graphql", json=persisted("not-a-hash"))
    assert r.status_code == 400


async def test_persisted_queries_spend_the_rate_limit_like_any_request(api):
    await api.request("POST", "/graphql", json=persisted(sha(QUERY), QUERY))
    a = await api.request("POST", "/graphql", json=persisted(sha(QUERY)))
    b = await api.request("POST", "/graphql", json=persisted(sha(QUERY)))
    assert int(b.headers["ratelimit-remaining"]) == int(a.headers["ratelimit-remaining"]) - 1


class TestTrustedDocuments:
    ALLOWED = "query Mine { sessions(limit: 3) { id } }"

    @pytest.fixture
    def settings_overrides(self, tmp_path):
        manifest = tmp_path / "manifest.json"
        manifest.write_text(json.dumps({sha(self.ALLOWED): self.ALLOWED}))
        return {"graphql_trusted_documents": str(manifest)}

    async def test_only_the_manifest_runs(self, api):
        r = await api.request("POST", "/graphql", json=persisted(sha(self.ALLOWED)))
        assert r.json() == {"data": {"sessions": []}}
        r = await api.request("POST", "/graphql", json={"query": self.ALLOWED})
        assert r.json() == {"data": {"sessions": []}}  # the identical text is trusted too
        for body in (
            {"query": "{ sessions { id } }"},
            persisted(sha("{ sessions { id } }"), "{ sessions { id } }"),
            persisted(sha("{ activeSessions { id } }")),
        ):
            r = await api.request("POST", "/graphql", json=body)
            [error] = r.json()["errors"]
            assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED", body
            assert "data" not in r.json()
        r = await api.request(
            "POST",
            "/graphql",
            json={"query": "{ sessions { id } }"},
            headers={"accept": "application/graphql-response+json"},
        )
        assert r.status_code == 400

    async def test_introspection_follows_its_setting(self, api):
        r = await api.request(
            "POST", "/graphql", json={"query": "{ __schema { queryType { name } } }"}
        )
        assert r.json()["data"]["__schema"]["queryType"]["name"] == "Query"


def test_a_manifest_with_a_wrong_hash_refuses_to_start(tmp_path):
    from app.resolvers.persisted import load_manifest

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0" * 64: "{ sessions { id } }"}))
    with pytest.raises(ValueError, match="not the SHA-256"):
        load_manifest(str(path))
