"""The differential tests of the GraphQL fast paths, on data whose every field
is set (tests/full_samples.py: the round-trip samples, and every value at the
bounds the command structs declare), not only on their hand-picked seeds.

* compiled plans against the standard executor: the documents of
  test_compiled.py, the lists the storage writes (test_written.py) and
  queries generated from the schema (test_differential.py), byte for byte;
* compiled mutation plans: every mutation with a full input, every field
  selected, answers as the standard executor's.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from msgspec import inspect as mi

from app.domain import records as r
from tests.api import Api
from tests.conftest import bearer, make_token
from tests.full_samples import VARIANTS, details_of_every_field, seed_every_field
from tests.graphql.test_compiled import COMPILED, stable
from tests.graphql.test_differential import MIN_SHARE_BY_PLANS, generated
from tests.graphql.test_written import WRITTEN
from tests.test_round_trip import as_graphql_input, full, selection

GENERATED = 100  # documents drawn from the schema (test_differential.py draws 200)


async def seeded(two_apps: Any, new_user: Any) -> tuple[str, list[str]]:
    (_fast_app, fast), _ = two_apps
    user = new_user()
    api = Api(fast, user)
    ids = await seed_every_field(api)
    await details_of_every_field(api, ids)
    return user, ids


async def test_compiled_documents_answer_as_the_standard_executor(two_apps, new_user):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user, ids = await seeded(two_apps, new_user)
    headers = bearer(make_token(user))
    plans = fast_app.graphql.plans
    runs = [
        (query, {"id": sid} if variables == "SESSION" else variables, operation)
        for query, variables, operation in COMPILED
        for sid in (ids if variables == "SESSION" else ids[:1])
    ] + [(query, {"id": sid} if "$id" in query else None, None) for query in WRITTEN for sid in ids]
    for query, variables, operation in runs:
        body = {"query": query, "variables": variables, "operationName": operation}
        before = plans.answered
        a = await fast.post("/graphql", json=body, headers=headers)
        b = await slow.post("/graphql", json=body, headers=headers)
        assert a.status_code == 200 and "errors" not in b.json(), b.json()
        assert stable(a) == stable(b), query
        assert plans.answered == before + 1, f"the compiled plan should have answered {query}"
        params = {"query": query, "variables": json.dumps(variables)}
        if operation:
            params["operationName"] = operation
        a = await fast.get("/graphql", params=params, headers=headers)
        b = await slow.get("/graphql", params=params, headers=headers)
        assert stable(a) == stable(b), query
    assert plans.failed == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_generated_queries_answer_as_the_standard_executor(two_apps, new_user):
    # (The warnings: see test_differential.py.)
    (fast_app, fast), (_slow_app, slow) = two_apps
    user, _ids = await seeded(two_apps, new_user)
    headers = bearer(make_token(user))
    plans = fast_app.graphql.plans
    before = plans.answered
    docs = generated(GENERATED)
    assert len(docs) >= GENERATED * 0.9
    for doc in docs:
        a = await fast.post("/graphql", json={"query": doc}, headers=headers)
        b = await slow.post("/graphql", json={"query": doc}, headers=headers)
        assert stable(a) == stable(b), doc
    gc.collect()
    share = (plans.answered - before) / len(docs)
    assert share >= MIN_SHARE_BY_PLANS, f"plans answered only {share:.0%} of {len(docs)}"
    assert plans.failed == 0


# What differs between two runs of a mutation: the ids and times the service makes.
MADE = ("id", "sessionId", "userId", "timestamp", "createdAt", "startedAt")


def masked(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with the record's made fields masked (the generated responses'
    ``id`` is the client's, and stays)."""
    [(name, record)] = answer["data"].items()
    return {name: {k: "-" if k in MADE else v for k, v in record.items()}}


def _mutations(sid: str, iid: str, variant: str) -> list[tuple[str, dict[str, Any]]]:
    """Every mutation with an input, each field of its input set, every field selected."""
    make = VARIANTS[variant]

    def given(command: type, **extra: Any) -> dict[str, Any]:
        return {**as_graphql_input(make(command, 5), mi.type_info(command)), **extra}

    update = given(r.UpdateSession, status="PAUSED")  # (the state machine allows it)
    return [
        (
            f"mutation($i: CreateSessionInput!) {{ createSession(input: $i) "
            f"{{ {selection(r.Session)} interactions {{ id }} metrics {{ id }} }} }}",
            {"i": given(r.CreateSession)},
        ),
        (
            f"mutation($id: ID!, $i: UpdateSessionInput!) {{ updateSession(id: $id, input: $i) "
            f"{{ {selection(r.Session)} }} }}",
            {"id": sid, "i": update},
        ),
        (
            f"mutation($i: CreateInteractionInput!) {{ createInteraction(input: $i) "
            f"{{ {selection(r.Interaction)} }} }}",
            {"i": given(r.CreateInteraction, sessionId=sid)},
        ),
        (
            f"mutation($id: ID!, $i: UpdateInteractionInput!) "
            f"{{ updateInteraction(id: $id, input: $i) {{ {selection(r.Interaction)} }} }}",
            {"id": iid, "i": given(r.UpdateInteraction)},
        ),
        (
            f"mutation($i: RecordMetricsInput!) {{ recordMetrics(input: $i) "
            f"{{ {selection(r.Metric)} }} }}",
            {"i": given(r.RecordMetrics, sessionId=sid)},
        ),
    ]


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_mutation_plans_with_every_field_answer_as_the_standard_executor(
    two_apps, new_user, variant
):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    headers = bearer(make_token(user))
    plans = fast_app.graphql.plans
    answers: list[list[Any]] = []
    for client in (fast, slow):
        api = Api(client, user)
        sid = (await api.new_session(**full(r.CreateSession, 1)))["id"]
        iid = (await api.new_interaction(sid, **full(r.CreateInteraction, 2)))["id"]
        answers.append([])
        for query, variables in _mutations(sid, iid, variant):
            before = plans.answered
            res = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            assert res.status_code == 200 and "errors" not in res.json(), res.json()
            if client is fast:
                assert plans.answered == before + 1, f"the plan should have answered {query}"
            answers[-1].append(masked(res.json()))
    assert answers[0] == answers[1]
    assert plans.failed == 0
