"""Safe retries with ``Idempotency-Key`` (app/idempotency.py), on both databases.

What a client relies on: a retried write returns the first answer byte for byte
and changes nothing more; a key reused for another request is 422; a key whose
request is running is 409; keys of different users never meet; the key
survives a restart; GraphQL mutations behave the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from app.context import Claim, claim_var
from app.db.models import events_table, idempotency_table, sessions_table
from app.domain.records import CreateSession, JobContext, KeyedAnswer, Principal
from app.errors import Conflict
from tests.api import JOB, Api
from tests.conftest import StatementCounter, bearer, make_token
from tests.server import running_server


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def count(app: Any, table: Any, user: str) -> int:
    async with app.database.engine.connect() as conn:
        stmt = select(func.count()).select_from(table).where(table.c.user_id == user)
        return int((await conn.execute(stmt)).scalar_one())


async def test_a_retried_create_returns_the_same_answer_and_one_row(api, app):
    key = f"create-{uuid.uuid4()}"
    first = await api.request(
        "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
    )
    again = await api.request(
        "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
    )
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # byte for byte
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert await count(app, sessions_table, api.user) == 1
    assert await count(app, events_table, api.user) == 1  # no second event either
    # Without a key, the same body is a new session.
    assert (await api.create_session()).status_code == 201
    assert await count(app, sessions_table, api.user) == 2


async def test_a_key_reused_for_another_request_is_422(api, app):
    key = f"reuse-{uuid.uuid4()}"
    s = await api.request(
        "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
    )
    other_body = {"jobContext": {**JOB, "title": "Other"}}
    r = await api.request("POST", "/interview-sessions", json=other_body, headers=keyed(key))
    assert r.status_code == 422
    assert r.json()["error"] == "Unprocessable Entity"
    assert "Idempotency-Key was already used for a different request" in r.json()["message"]
    sid = s.json()["id"]
    r = await api.request("PUT", f"/interview-sessions/{sid}/pause", headers=keyed(key))
    assert r.status_code == 422  # another path
    assert await count(app, sessions_table, api.user) == 1
    assert (await api.get(sid)).json()["status"] == "active"


async def test_keys_of_different_users_never_collide(client, new_user, app):
    alice, bob = Api(client, new_user()), Api(client, new_user())
    key = "shared-key"
    a = await alice.request(
        "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
    )
    b = await bob.request(
        "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"] and "idempotent-replayed" not in b.headers
    assert b.json()["userId"] == bob.user


async def test_twenty_at_once_make_one_row(api, app):
    key = f"race-{uuid.uuid4()}"
    answers = await asyncio.gather(
        *(
            api.request("POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key))
            for _ in range(20)
        )
    )
    created = [r for r in answers if r.status_code == 201]
    assert created and all(r.status_code in (201, 409) for r in answers)
    assert len({r.content for r in created}) == 1  # the first answer, or its replay
    for r in answers:
        if r.status_code == 409:
            assert (
                r.json()["message"] == "A request with this Idempotency-Key is already in progress"
            )
    assert await count(app, sessions_table, api.user) == 1


async def test_error_answers_are_stored_and_replayed(api, app):
    s = await api.new_session()
    await api.request("PUT", f"/interview-sessions/{s['id']}/complete")
    key = f"err-{uuid.uuid4()}"
    body = {"sessionId": s["id"], "question": "Why?"}
    first = await api.request(
        "POST", "/interview-sessions/interactions", json=body, headers=keyed(key)
    )
    again = await api.request(
        "POST", "/interview-sessions/interactions", json=body, headers=keyed(key)
    )
    assert first.status_code == again.status_code == 400
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    missing = f"/interview-sessions/{uuid.uuid4()}"
    first = await api.request("DELETE", missing, headers=keyed(f"del-{key}"))
    again = await api.request("DELETE", missing, headers=keyed(f"del-{key}"))
    assert first.status_code == again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_retried_delete_replays_its_204(api, app):
    s = await api.new_session()
    key = f"delete-{uuid.uuid4()}"
    first = await api.request("DELETE", f"/interview-sessions/{s['id']}", headers=keyed(key))
    again = await api.request("DELETE", f"/interview-sessions/{s['id']}", headers=keyed(key))
    assert first.status_code == again.status_code == 204
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(app, events_table, api.user) == 2  # created, deleted: once


@pytest.mark.parametrize("bad", ["", "x" * 256, "caf\u00e9", "has space", "tab\there"])
async def test_a_malformed_key_is_400(api, bad):
    r = await api.request(
        "POST",
        "/interview-sessions",
        json={"jobContext": JOB},
        headers={"Idempotency-Key": bad.encode("utf-8")},
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Idempotency-Key must be 1 to 255 visible ASCII characters"


# ---------------------------------------------------------------- GraphQL

CREATE = 'mutation { createSession(input: {jobContext: {title: "T", company: "C"}}) { id } }'


async def test_a_key_on_a_method_the_route_lacks_is_still_405(api):
    # PUT /interview-sessions/metrics is the POST-only /metrics route (a fixed
    # segment wins over /{id}), so the key is not looked at: 405, twice.
    body = {"sessionId": str(uuid.uuid4()), "totalLatencyMs": 1}
    for method, path in [
        ("PUT", "/interview-sessions/metrics"),
        ("DELETE", "/interview-sessions/interactions"),
    ]:
        for _ in range(2):
            r = await api.request(method, path, json=body, headers=keyed("same-key-0001"))
            assert r.status_code == 405, r.text
            assert "idempotent-replayed" not in r.headers


async def test_graphql_mutations_with_a_key_in_the_header_or_the_extensions(api, app):
    key = f"gql-{uuid.uuid4()}"
    first = await api.request("POST", "/graphql", json={"query": CREATE}, headers=keyed(key))
    again = await api.request("POST", "/graphql", json={"query": CREATE}, headers=keyed(key))
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    body = {"query": CREATE, "extensions": {"idempotencyKey": f"ext-{key}"}}
    first = await api.request("POST", "/graphql", json=body)
    again = await api.request("POST", "/graphql", json=body)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert await count(app, sessions_table, api.user) == 2
    other = {"query": CREATE.replace('"T"', '"U"'), "extensions": {"idempotencyKey": f"ext-{key}"}}
    assert (await api.request("POST", "/graphql", json=other)).status_code == 422


async def test_several_mutations_in_one_request_are_one_unit(api, app):
    two = (
        'mutation { a: createSession(input: {jobContext: {title: "A", company: "C"}}) { id } '
        'b: createSession(input: {jobContext: {title: "B", company: "C"}}) { id } }'
    )
    key = f"two-{uuid.uuid4()}"
    first = await api.request("POST", "/graphql", json={"query": two}, headers=keyed(key))
    again = await api.request("POST", "/graphql", json={"query": two}, headers=keyed(key))
    assert set(first.json()["data"]) == {"a", "b"}
    assert again.content == first.content
    assert await count(app, sessions_table, api.user) == 2


async def test_the_key_and_its_answer_commit_in_the_change_s_own_transaction(api, app, backend):
    """One statement on the key, in the change's transaction, carrying the answer:
    no second write after the change (on PostgreSQL a part of the change's last
    statement, with its event). A request that uses the database again after
    its write (two mutations) commits the key with the first change and stores
    the answer after the second."""
    seen = StatementCounter()
    app.database.add_statement_listener(seen)
    try:
        key = f"one-{uuid.uuid4()}"
        r = await api.request(
            "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
        )
        single = _on_keys(seen)
        combined = [q for q in seen.statements if "idempotency_keys" in q and "session_events" in q]
        seen.statements.clear()
        two = (
            'mutation { a: createSession(input: {jobContext: {title: "A", company: "C"}}) { id } '
            'b: createSession(input: {jobContext: {title: "B", company: "C"}}) { id } }'
        )
        both = await api.request(
            "POST", "/graphql", json={"query": two}, headers=keyed(f"two-{key}")
        )
        double = _on_keys(seen)
    finally:
        app.database.remove_statement_listener(seen)
    assert r.status_code == 201 and single == ["INSERT"]
    assert len(combined) == (1 if backend == "postgres" else 0)
    assert both.status_code == 200 and double == ["INSERT", "UPDATE"]
    async with app.database.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    idempotency_table.c.key, idempotency_table.c.status, idempotency_table.c.body
                )
                .where(idempotency_table.c.user_id == api.user)
                .order_by(idempotency_table.c.key)
            )
        ).all()
    assert [(k, s, bytes(b)) for k, s, b in rows] == [
        (key, 201, r.content),
        (f"two-{key}", 200, both.content),
    ]


def _on_keys(seen: StatementCounter) -> list[str]:
    """What each statement does to the keys (on PostgreSQL the key's insert is
    a part of the write's last statement, with its event)."""
    verbs = []
    for s in seen.statements:
        if "INSERT INTO idempotency_keys" in s:
            verbs.append("INSERT")
        elif "UPDATE idempotency_keys" in s:
            verbs.append("UPDATE")
        elif "idempotency_keys" in s and not s.lstrip().upper().startswith("SELECT"):
            verbs.append(s.split(None, 1)[0].upper())
    return verbs


async def test_a_change_whose_key_another_request_committed_is_rolled_back(app, new_user):
    """The key is the change's last statement: a change that finds the key
    taken when it commits (another process won the race) is rolled back, and
    the request learns so at its next use of the database (409) or when its
    answer is stored (app/idempotency.py replays the winner's answer)."""
    service, user = app.service, Principal(new_user())
    now = datetime.now(UTC)

    def claim() -> Claim:
        keyed = KeyedAnswer(
            user_id=user.user_id,
            key="race",
            method="POST",
            path="/interview-sessions",
            fingerprint="f",
            created_at=now,
        )
        return Claim(keyed, now - timedelta(hours=1))

    winner, loser = claim(), claim()
    token = claim_var.set(winner)
    try:
        await service.sessions.create(
            user, CreateSession(job_context=JobContext(title="W", company="C"))
        )
        assert winner.pending is not None and not winner.held
        won = msgspec.structs.replace(winner.answer, status=201, headers=[], body=b"won")
        await winner.pending.settle(won)
        assert winner.held and winner.pending is None
        claim_var.set(loser)
        await service.sessions.create(
            user, CreateSession(job_context=JobContext(title="L", company="C"))
        )
        assert loser.pending is not None
        with pytest.raises(Conflict):  # its next unit of work commits first: the key is taken
            await service.sessions.list_sessions(user, limit=10)
        assert loser.taken and not loser.held and loser.pending is None
        abandoned = claim()
        claim_var.set(abandoned)
        await service.sessions.create(
            user, CreateSession(job_context=JobContext(title="A", company="C"))
        )
        assert abandoned.pending is not None
        await abandoned.pending.abandon()  # the request died before its answer
        assert abandoned.pending is None and not abandoned.held
    finally:
        claim_var.reset(token)
    titles = [s.job_context.title for s in await service.sessions.list_sessions(user, limit=10)]
    assert titles == ["W"]
    async with app.database.engine.connect() as conn:
        stored = (await conn.execute(select(idempotency_table.c.body))).scalars().all()
    assert [bytes(b) for b in stored if bytes(b) == b"won"] == [b"won"]


async def test_graphql_queries_with_a_key_are_not_stored(api, app):
    key = f"query-{uuid.uuid4()}"
    await api.request("POST", "/graphql", json={"query": "{ sessions { id } }"}, headers=keyed(key))
    await api.new_session()
    r = await api.request(
        "POST", "/graphql", json={"query": "{ sessions { id } }"}, headers=keyed(key)
    )
    assert len(r.json()["data"]["sessions"]) == 1 and "idempotent-replayed" not in r.headers
    assert await count(app, idempotency_table, api.user) == 0


# ---------------------------------------------------------------- expiry and pruning


@pytest.mark.parametrize("settings_overrides", [{"idempotency_ttl": timedelta(seconds=1)}])
async def test_an_expired_key_runs_again_and_is_pruned(api, app, settings_overrides):
    key = f"ttl-{uuid.uuid4()}"
    body = {"jobContext": JOB}
    await api.request("POST", "/interview-sessions", json=body, headers=keyed(key))
    await asyncio.sleep(1.2)
    r = await api.request("POST", "/interview-sessions", json=body, headers=keyed(key))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await count(app, sessions_table, api.user) == 2
    await asyncio.sleep(1.2)
    done = await app.live.pruner.run_once()
    assert done["idempotency keys"] >= 1
    assert await count(app, idempotency_table, api.user) == 0


async def test_the_openapi_document_describes_the_header(client):
    doc = (await client.get("/schema/openapi.json")).json()
    for path, method in (
        ("/interview-sessions", "post"),
        ("/interview-sessions/{session_id}", "put"),
        ("/interview-sessions/{session_id}", "delete"),
        ("/interview-sessions/{session_id}/complete", "put"),
        ("/interview-sessions/interactions/{interaction_id}", "put"),
        ("/interview-sessions/interactions", "post"),
        ("/interview-sessions/metrics", "post"),
    ):
        op = doc["paths"][path][method]
        names = [p.get("name") or p.get("$ref", "").rsplit("/", 1)[-1] for p in op["parameters"]]
        assert "Idempotency-Key" in names, (path, method, names)
        assert {"409", "422"} <= set(op["responses"]), (path, method)
    assert "Idempotent-Replayed" in doc["components"]["headers"]


# ---------------------------------------------------------------- real processes


def _post(base: str, token: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{base}/interview-sessions",
        json={"jobContext": JOB},
        headers={**bearer(token), "Idempotency-Key": key},
        timeout=30,
    )


def test_a_replay_survives_a_restart_and_two_processes_share_keys(db_url, tmp_path):
    env = {"DATABASE_URL": db_url, "RATE_LIMITS": "1000000/second"}
    user = f"proc-{uuid.uuid4()}"
    token = make_token(user)
    with running_server(env) as base:
        first = _post(base, token, "restart")
    with running_server(env) as a, running_server(env) as b:
        again = _post(b, token, "restart")
        assert again.status_code == 201 and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda i: _post(a if i % 2 else b, token, "both"), range(20)))
        created = [r for r in answers if r.status_code == 201]
        assert created and all(r.status_code in (201, 409) for r in answers), [
            (r.status_code, r.text) for r in answers
        ]
        assert len({r.content for r in created}) == 1
        listed = httpx.get(f"{a}/interview-sessions", headers=bearer(token), timeout=10).json()
        assert len(listed) == 2  # "restart" once, "both" once
