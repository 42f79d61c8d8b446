"""Safe retries with ``Idempotency-Key`` (app/idempotency.py), on both databases.

What a client relies on: a retried write returns the first answer byte for byte
and changes nothing more; a key reused for another request is 422; a key whose
request is running is 409; keys of different users never meet; the key
survives a restart; GraphQL mutations behave the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from app.db.models import events_table, idempotency_table, sessions_table
from app.domain.records import CreateSession, JobContext, KeyedAnswer, Principal
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


async def test_a_keyed_request_is_one_transaction_with_its_key_and_answer(api, app, backend):
    """Every change of a keyed request and its key with the answer are one
    transaction: one INSERT of the key, carrying the answer, as its last
    statement (on PostgreSQL a part of the last statement, after the event),
    then one COMMIT; two mutations of one request, the same."""
    seen = StatementCounter()
    app.database.add_statement_listener(seen)
    try:
        key = f"one-{uuid.uuid4()}"
        r = await api.request(
            "POST", "/interview-sessions", json={"jobContext": JOB}, headers=keyed(key)
        )
        single = list(seen.statements)
        seen.statements.clear()
        two = (
            'mutation { a: createSession(input: {jobContext: {title: "A", company: "C"}}) { id } '
            'b: createSession(input: {jobContext: {title: "B", company: "C"}}) { id } }'
        )
        both = await api.request(
            "POST", "/graphql", json={"query": two}, headers=keyed(f"two-{key}")
        )
        double = list(seen.statements)
    finally:
        app.database.remove_statement_listener(seen)
    for statements in (single, double):
        verbs = [q.split(None, 1)[0].upper().rstrip(";") for q in statements]
        assert verbs.count("BEGIN") == 1, verbs  # one transaction for the whole request
        on_keys = [q for q in statements if "idempotency_keys" in q]
        assert len(on_keys) == 1 and "INSERT INTO idempotency_keys" in on_keys[0], on_keys
        # The key is the last write (only the COMMIT, where reported, comes after).
        after = statements[statements.index(on_keys[0]) + 1 :]
        assert all(v == "COMMIT" for v in verbs[len(statements) - len(after) :]), after
    if backend == "postgres":
        assert "session_events" in next(q for q in single if "idempotency_keys" in q)
    assert r.status_code == 201 and both.status_code == 200
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


async def test_a_transaction_whose_key_another_request_committed_is_rolled_back(app, new_user):
    """The key is the transaction's last row: a request that finds its key
    taken when it commits (another process won the race) commits nothing;
    one that never commits (it died, or closed) leaves nothing either."""
    service, user = app.service, Principal(new_user())
    now = datetime.now(UTC)
    record = KeyedAnswer(
        user_id=user.user_id,
        key="race",
        method="POST",
        path="/interview-sessions",
        fingerprint="f",
        created_at=now,
        status=201,
        headers=[],
        body=b"won",
    )
    expired_before = now - timedelta(hours=1)
    winner, loser, abandoned = (app.database.transaction() for _ in range(3))
    try:
        await service.within(winner).sessions.create(
            user, CreateSession(job_context=JobContext(title="W", company="C"))
        )
        assert await winner.commit(record, expired_before=expired_before)
        # The loser ran the same request meanwhile (another process): its key is taken.
        await service.within(loser).sessions.create(
            user, CreateSession(job_context=JobContext(title="L", company="C"))
        )
        lost = msgspec.structs.replace(record, body=b"lost")
        assert not await loser.commit(lost, expired_before=expired_before)
        await service.within(abandoned).sessions.create(
            user, CreateSession(job_context=JobContext(title="A", company="C"))
        )
    finally:
        for tx in (winner, loser, abandoned):
            await tx.close()  # the abandoned one: rolled back
    titles = [s.job_context.title for s in await service.sessions.list_sessions(user, limit=10)]
    assert titles == ["W"]
    async with app.database.engine.connect() as conn:
        stored = (await conn.execute(select(idempotency_table.c.body))).scalars().all()
    assert [bytes(b) for b in stored if bytes(b) in (b"won", b"lost")] == [b"won"]


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


def test_a_server_killed_mid_request_leaves_each_key_all_or_nothing(db_url, tmp_path):
    """SIGKILL at random moments while keyed GraphQL requests of two mutations
    run: afterwards each request's two sessions exist both or neither, and
    the retry of every key either replays the stored answer (both exist) or
    runs afresh (neither existed): never a half-applied request, never a 409."""
    import random
    import signal

    env = {
        "DATABASE_URL": db_url,
        "RATE_LIMITS": "1000000/second",
        "MAX_ACTIVE_SESSIONS": "1000000",
    }
    user = f"kill-{uuid.uuid4()}"
    token = make_token(user)
    rng = random.Random(20261207)
    sent: list[str] = []

    def body(key: str) -> dict[str, Any]:
        return {
            "query": "mutation($a: String!, $b: String!) { "
            'a: createSession(input: {jobContext: {title: $a, company: "C"}}) { id } '
            'b: createSession(input: {jobContext: {title: $b, company: "C"}}) { id } }',
            "variables": {"a": f"A {key}", "b": f"B {key}"},
        }

    async def fire(base: str, keys: list[str]) -> None:
        async with httpx.AsyncClient(base_url=base, headers=bearer(token), timeout=10) as c:

            async def one(key: str) -> None:
                with contextlib.suppress(httpx.HTTPError):
                    await c.post("/graphql", json=body(key), headers=keyed(key))

            await asyncio.gather(*(one(k) for k in keys))

    def titles(base: str) -> list[str]:
        r = httpx.get(f"{base}/interview-sessions", headers=bearer(token), timeout=10)
        return [s["jobContext"]["title"] for s in r.json()]

    for round_ in range(6):
        keys = [f"k{round_}-{n}" for n in range(12)]
        sent += keys
        with running_server(env, log=tmp_path / f"kill{round_}.log") as base:
            loop = asyncio.new_event_loop()
            try:
                task = loop.create_task(fire(base, keys))
                loop.run_until_complete(asyncio.sleep(rng.uniform(0.0, 0.15)))
                base.proc.send_signal(signal.SIGKILL)
                base.proc.wait(10)
                loop.run_until_complete(task)
            finally:
                loop.close()
    with running_server(env, log=tmp_path / "after.log") as base:
        stored = titles(base)
        for key in sent:
            a, b = stored.count(f"A {key}"), stored.count(f"B {key}")
            assert (a, b) in ((0, 0), (1, 1)), (key, a, b)  # all or nothing
        answered = 0
        for key in sent:
            before = stored.count(f"A {key}")
            r = httpx.post(
                f"{base}/graphql", json=body(key), headers={**bearer(token), **keyed(key)}
            )
            assert r.status_code == 200 and "errors" not in r.json(), r.text  # never a 409
            assert (r.headers.get("idempotent-replayed") == "true") == (before == 1), key
            answered += before
        after = titles(base)
        for key in sent:
            assert (after.count(f"A {key}"), after.count(f"B {key}")) == (1, 1), key
    # The kills fell at different moments: some requests had committed, some not.
    assert 0 < answered < len(sent), answered
