"""Persisted queries: Apollo Client's own link against the running server, and
the protocol's edges spoken directly (hash mismatches, trusted documents)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import httpx
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


# ---------------------------------------------------------------- documents by id, every transport

SUBSCRIPTION = "subscription Live { myEvents { type session { id } } }"


async def test_document_ids_over_post_and_get_from_the_apq_store(api):
    """GraphQL over HTTP's persisted documents: ``documentId`` (``sha256:<hex>``
    or the bare hex) runs a document the server holds."""
    r = await api.request("POST", "/graphql", json={"documentId": f"sha256:{sha(QUERY)}"})
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    await api.request("POST", "/graphql", json=persisted(sha(QUERY), QUERY))  # now it is held
    for body in ({"documentId": f"sha256:{sha(QUERY)}"}, {"documentId": sha(QUERY)}):
        r = await api.request("POST", "/graphql", json=body)
        assert (r.status_code, r.json()) == (200, {"data": {"sessions": []}}), body
    r = await api.request("GET", "/graphql", params={"documentId": f"sha256:{sha(QUERY)}"})
    assert (r.status_code, r.json()) == (200, {"data": {"sessions": []}})
    for body in (
        {"documentId": "sha256:nothex"},
        {"documentId": f"sha1:{sha(QUERY)}"},  # a sha256 named sha1
        {"documentId": sha(QUERY), "query": QUERY},
        {"documentId": 5},
    ):
        r = await api.request("POST", "/graphql", json=body)
        assert r.status_code == 400, body
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert "data" not in r.json()


class TestTrustedDocumentsOnEveryTransport:
    QUERY = "query Mine { sessions(limit: 3) { id } }"

    @pytest.fixture
    def manifest(self, tmp_path):
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps({sha(self.QUERY): self.QUERY, sha(SUBSCRIPTION): SUBSCRIPTION}))
        return path

    @pytest.fixture
    def settings_overrides(self, manifest):
        return {"graphql_trusted_documents": str(manifest)}

    async def test_http_by_document_id(self, api):
        for body in ({"documentId": f"sha256:{sha(self.QUERY)}"}, {"documentId": sha(self.QUERY)}):
            r = await api.request("POST", "/graphql", json=body)
            assert r.json() == {"data": {"sessions": []}}, body
        r = await api.request("GET", "/graphql", params={"documentId": sha(self.QUERY)})
        assert r.json() == {"data": {"sessions": []}}
        r = await api.request("POST", "/graphql", json={"documentId": sha("{ sessions { id } }")})
        assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"

    async def test_the_websocket_runs_only_trusted_documents(self, db_url, manifest, tmp_path):
        from tests.live.client import Socket, socket
        from tests.server import running_server

        env = {
            "DATABASE_URL": db_url,
            "RATE_LIMITS": "100000/minute",
            "GRAPHQL_TRUSTED_DOCUMENTS": str(manifest),
        }
        user = f"trusted-{uuid.uuid4()}"
        token = make_token(user)
        mutation = (
            'mutation { createSession(input: {jobContext: {title: "T", company: "C"}}) { id } }'
        )
        with running_server(env, log=tmp_path / "server.log") as base:
            async with socket(base) as ws:
                s = Socket(ws)
                assert (await s.init(token)) == {"type": "connection_ack"}
                refused = {
                    "m": {"query": mutation},
                    "q": {"query": "{ sessions { id } }"},
                    "s": {"query": "subscription { myEvents { type } }"},
                    "h": {"documentId": sha(mutation)},
                    "p": {
                        "extensions": {
                            "persistedQuery": {"version": 1, "sha256Hash": sha(mutation)}
                        }
                    },
                }
                for op_id, payload in refused.items():
                    await s.send({"id": op_id, "type": "subscribe", "payload": payload})
                    answer = await s.recv()
                    assert (answer["id"], answer["type"]) == (op_id, "error"), answer
                    assert answer["payload"][0]["extensions"]["code"] == (
                        "PERSISTED_QUERY_NOT_ALLOWED"
                    ), answer
                trusted = {
                    "text": {"query": SUBSCRIPTION},
                    "id": {"documentId": f"sha256:{sha(SUBSCRIPTION)}"},
                    "apq": {
                        "extensions": {
                            "persistedQuery": {"version": 1, "sha256Hash": sha(SUBSCRIPTION)}
                        }
                    },
                }
                for op_id, payload in trusted.items():
                    await s.send({"id": op_id, "type": "subscribe", "payload": payload})
                await s.send(
                    {"id": "list", "type": "subscribe", "payload": {"documentId": sha(self.QUERY)}}
                )
                # The untrusted mutation never ran: no session, no event.
                answer = await s.recv()
                assert answer == {
                    "id": "list",
                    "type": "next",
                    "payload": {"data": {"sessions": []}},
                }
                assert (await s.recv()) == {"id": "list", "type": "complete"}
                async with httpx.AsyncClient(base_url=base) as http:
                    r = await http.post(
                        "/interview-sessions",
                        json={"jobContext": {"title": "T", "company": "C"}},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert r.status_code == 201
                seen = {}
                while len(seen) < 3:
                    message = await s.recv()
                    if message["type"] == "next":
                        seen[message["id"]] = message["payload"]["data"]["myEvents"]
                assert set(seen) == set(trusted)
                assert all(e["type"] == "SESSION_CREATED" for e in seen.values())


async def test_a_hash_only_subscribe_works_where_http_s_does(db_url, tmp_path):
    """APQ over the socket: an unknown hash is PERSISTED_QUERY_NOT_FOUND; once
    HTTP has stored the document, the hash alone (or its documentId) subscribes."""
    from tests.live.client import Socket, socket
    from tests.server import running_server

    env = {"DATABASE_URL": db_url, "RATE_LIMITS": "100000/minute"}
    token = make_token(f"apq-{uuid.uuid4()}")
    apq = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(SUBSCRIPTION)}}}
    with running_server(env, log=tmp_path / "server.log") as base:
        async with socket(base) as ws:
            s = Socket(ws)
            await s.init(token)
            await s.send({"id": "1", "type": "subscribe", "payload": apq})
            answer = await s.recv()
            assert answer["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
            async with httpx.AsyncClient(base_url=base) as http:
                # HTTP stores it (a subscription over HTTP is refused, after the store).
                await http.post(
                    "/graphql",
                    json={**apq, "query": SUBSCRIPTION},
                    headers={"Authorization": f"Bearer {token}"},
                )
                await s.send({"id": "2", "type": "subscribe", "payload": apq})
                await s.send(
                    {"id": "3", "type": "subscribe", "payload": {"documentId": sha(SUBSCRIPTION)}}
                )
                await asyncio.sleep(0.3)
                r = await http.post(
                    "/interview-sessions",
                    json={"jobContext": {"title": "T", "company": "C"}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 201
            ids = set()
            while ids != {"2", "3"}:
                message = await s.recv()
                assert message["type"] == "next", message
                ids.add(message["id"])
