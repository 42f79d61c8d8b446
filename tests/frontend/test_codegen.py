"""Trusted documents as a frontend built with GraphQL Code Generator makes them.

The real ``@graphql-codegen/cli`` with its client preset (pinned in
tests/node/package.json) turns the operations in tests/node/codegen/documents
into typed document nodes and ``persisted-documents.json`` from this project's
schema.graphql: once with the preset's default hash (SHA-256, ``sha256:<hex>``
ids since client preset 6), once with ``hashAlgorithm: 'sha1'`` (bare hex, the
default before 6) and ``__typename`` added everywhere (the document transform
normalized caches want). The server runs with that manifest as
GRAPHQL_TRUSTED_DOCUMENTS, and a client (tests/node/codegen/client.mjs) sends
each generated document's ``__meta__.hash`` instead of the document: a query
(POST and GET), a mutation, a subscription over graphql-ws; Apollo Client's
persisted-query link sends a sha256 id's hex. See docs/trusted-documents.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_token
from tests.frontend.conftest import NODE_DIR, REQUIRE_NODE, _missing, run_node
from tests.server import running_server

CONFIGS = {
    # config file -> (id pattern, hash of the document the id names)
    "codegen/codegen.ts": (re.compile(r"^sha256:([0-9a-f]{64})$"), hashlib.sha256),
    "codegen/codegen.sha1.ts": (re.compile(r"^([0-9a-f]{40})$"), hashlib.sha1),
}
TYPENAMES = {"codegen/codegen.ts": False, "codegen/codegen.sha1.ts": True}
OPERATIONS = {"SessionsWithInteractions", "CreateSession", "MyEvents"}


@pytest.fixture(scope="session")
def generated(node: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """config -> the folder ``npx graphql-codegen --config <config>`` wrote."""
    npx = shutil.which("npx")
    if not npx:
        _missing("npx not found: the GraphQL Code Generator test needs it", REQUIRE_NODE)
    out: dict[str, Path] = {}
    for config in CONFIGS:
        target = tmp_path_factory.mktemp("codegen") / Path(config).stem
        proc = subprocess.run(
            # --no: only the pinned, installed generator (never a download)
            [str(npx), "--no", "--", "graphql-codegen", "--config", config, "--silent"],
            cwd=NODE_DIR,
            env={**os.environ, "CODEGEN_OUT": f"{target}/"},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert proc.returncode == 0, f"graphql-codegen {config}:\n{proc.stdout}\n{proc.stderr}"
        out[config] = target
    return out


def manifest_of(folder: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((folder / "persisted-documents.json").read_text())
    return data


def without_typenames(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_typenames(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [without_typenames(v) for v in value]
    return value


def operation_name(document: str) -> str:
    match = re.search(r"\b(?:query|mutation|subscription) (\w+)", document)
    assert match, document
    return match.group(1)


@pytest.mark.parametrize("config", CONFIGS)
def test_codegen_writes_a_manifest_the_server_loads(generated, config):
    """The ids are the configured hash of their document, each generated
    document node carries its id, and the server's loader takes the file."""
    from app.resolvers.persisted import document_key, load_manifest

    pattern, digest = CONFIGS[config]
    manifest = manifest_of(generated[config])
    assert {operation_name(doc) for doc in manifest.values()} == OPERATIONS
    for document_id, document in manifest.items():
        match = pattern.match(document_id)
        assert match, f"{config}: {document_id!r} is not {pattern.pattern}"
        assert digest(document.encode()).hexdigest() == match.group(1)
        assert "fragment SessionCard" in document  # fragments travel with the operation
        assert ("__typename" in document) is TYPENAMES[config]
    # graphql.ts: `export const XDocument = {"__meta__":{"hash": <id>}, ...}`
    source = (generated[config] / "graphql.ts").read_text()
    hashes = dict(
        re.findall(r'export const (\w+)Document = \{"__meta__":\{"hash":"([^"]+)"', source)
    )
    assert hashes.keys() == OPERATIONS
    assert set(hashes.values()) == set(manifest)
    loaded = load_manifest(str(generated[config] / "persisted-documents.json"))
    assert loaded == {document_key(k): v for k, v in manifest.items()}


@pytest.mark.parametrize("config", CONFIGS)
def test_a_client_runs_the_generated_documents_by_hash(node, generated, config, db_url, tmp_path):
    folder = generated[config]
    env = {
        "DATABASE_URL": db_url,
        "RATE_LIMITS": "100000/minute",
        "GRAPHQL_TRUSTED_DOCUMENTS": str(folder / "persisted-documents.json"),
    }
    token = make_token(f"codegen-{uuid.uuid4()}")
    manifest = manifest_of(folder)
    [(query_id, query)] = [
        (k, v) for k, v in manifest.items() if operation_name(v) == "SessionsWithInteractions"
    ]
    with running_server(env, log=tmp_path / "server.log") as base:
        result = run_node(node, "codegen/client.mjs", base, token, str(folder))
        # The id in the other spellings the server takes, and the manifest's own text.
        digest = query_id.removeprefix("sha256:")
        prefix = "sha256" if query_id.startswith("sha256:") else "sha1"
        bodies = [{"documentId": digest}, {"documentId": f"{prefix}:{digest}"}, {"query": query}]
        headers = {"Authorization": f"Bearer {token}"}
        for body in bodies:
            r = httpx.post(f"{base}/graphql", json=body, headers=headers)
            assert r.json()["data"]["sessions"][0]["interactions"] == [], (body, r.text)
    ids = set(manifest)
    assert set(result["documents"].values()) - {None} == ids
    assert ('"__typename"' in json.dumps(result["created"])) is TYPENAMES[config]
    result = without_typenames(result)

    # Anything not in the manifest is refused, and did not run.
    for name, answer in result["untrusted"].items():
        assert answer["status"] == 200, (name, answer)
        assert "data" not in answer["body"], (name, answer)
        [error] = answer["body"]["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED", (name, answer)

    created = result["created"]
    assert created["documentId"] in ids and created["status"] == 200, created
    session = created["body"]["data"]["createSession"]
    assert session["status"] == "ACTIVE"
    assert session["jobContext"] == {
        "title": "Frontend",
        "company": "Codegen",
        "interviewType": "TECHNICAL",
    }
    assert session["settings"] == {"preferredLanguage": "en"}

    for key in ("listed", "listedByGet"):
        answer = result[key]
        assert answer["documentId"] in ids and answer["status"] == 200, answer
        [listed] = answer["body"]["data"]["sessions"]  # only the one made by hash
        assert listed["id"] == session["id"] and listed["interactions"] == []
    assert result["listedByGet"]["method"] == "GET"

    # The subscription, by its id over graphql-ws, saw the mutation's event.
    assert result["subscriptionErrors"] == []
    [event] = result["events"]
    assert (event["type"], event["sessionId"], event["session"]["id"]) == (
        "SESSION_CREATED",
        session["id"],
        session["id"],
    )

    apollo: dict[str, Any] | None = result["apolloBareHex"]
    if config == "codegen/codegen.ts":
        # Apollo Client's persisted-query link, fed the sha256 id's hex.
        assert apollo is not None and "error" not in apollo, apollo
        assert apollo["data"]["sessions"][0]["id"] == session["id"]
        [request] = apollo["requests"]
        assert "query" not in request["body"], request
        assert request["body"]["extensions"]["persistedQuery"]["sha256Hash"] in {
            i.removeprefix("sha256:") for i in ids
        }


REFUSED = "persistedQuery.sha256Hash must be a SHA-256 in hex"


@pytest.mark.parametrize("config", CONFIGS)
def test_the_hash_sent_as_codegens_docs_show(node, generated, config, sqlite_template, tmp_path):
    """GraphQL Code Generator's docs send ``__meta__.hash`` as
    ``extensions.persistedQuery.sha256Hash`` (a plain fetch; urql's
    persistedExchange and Apollo's persisted-query link with ``generateHash``).
    With trusted documents the server looks that field up as the manifest
    names it (``sha256:<hex>`` or a sha1), like a ``documentId``."""
    folder = generated[config]
    shutil.copyfile(sqlite_template, tmp_path / "recipe.db")
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'recipe.db'}",
        "RATE_LIMITS": "100000/minute",
        "GRAPHQL_TRUSTED_DOCUMENTS": str(folder / "persisted-documents.json"),
    }
    with running_server(env, log=tmp_path / "server.log") as base:
        result = run_node(
            node, "codegen/client.mjs", base, make_token("recipe"), str(folder), "recipe"
        )
    result = without_typenames(result)
    fetched, apollo = result["fetched"], result["apolloAsDocumented"]
    assert fetched == {"status": 200, "body": {"data": {"sessions": []}}}, result
    assert apollo.get("data") == {"sessions": []}, result
