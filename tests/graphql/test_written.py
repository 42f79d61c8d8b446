"""Lists the storage writes as JSON (app/queries: projection.py, sql.py, written.py).

A compiled plan whose ``interactions``/``metrics`` selection only copies
stored fields has the storage write each session's list: PostgreSQL builds it
in the query, SQLite (and the in-memory fakes) write it from the records with
the compiled Python writers of app.queries.projection. Either way
the answer must be byte for byte the standard executor's, on awkward values
too: whole and long floats, timestamps on a whole second, nulls, quotes and
non-ASCII text, enums, stored documents missing a key (the field's default),
aliases, repeated keys and fragments.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.models import interactions_table as it
from app.db.models import metrics_table as mt
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    Interaction,
    JobContext,
    Metric,
)
from app.queries.projection import Children, Projection
from app.queries.written import written_lists
from app.resolvers.endpoint import same_json
from tests.api import Api
from tests.conftest import as_principal, bearer, make_token
from tests.graphql.test_compiled import DETAILS

AWKWARD = 'He said "hi" \\ naïve — 日本 \u0001 </script>'


async def seed(client, user: str) -> tuple[str, str]:
    api = Api(client, user)
    a = await api.new_session(jobContext={"title": "A", "company": "C"})
    empty = await api.new_session(jobContext={"title": "E", "company": "C"})
    first = await api.new_interaction(
        a["id"],
        question=AWKWARD,
        questionClassification={"type": "situational", "category": AWKWARD, "difficulty": "senior"},
        generatedResponses=[
            {
                "id": "r1",
                "content": AWKWARD,
                "structure": "direct",
                "estimatedDuration": 0,
                "confidence": 1,
                "tags": ["a", "ü"],
            },
            {"id": "r2", "content": "c", "structure": "STAR", "confidence": 0.30000000000000004},
        ],
    )
    r = await api.update_interaction(first["id"], {"selectedResponse": AWKWARD, "userFeedback": 5})
    assert r.status_code == 200, r.text
    await api.new_interaction(a["id"], question="no classification")
    await api.new_metric(a["id"], transcriptionAccuracy=1, totalLatencyMs=0)
    await api.new_metric(a["id"], transcriptionAccuracy=0.30000000000000004, userSatisfaction=1)
    await api.new_metric(a["id"], transcriptionAccuracy=0.0001)
    await api.new_metric(a["id"])
    return a["id"], empty["id"] + "|" + first["id"]


async def damage(db_url: str, interaction_id: str) -> None:
    """What the API itself never writes but a stored row may hold: a document
    missing keys (written by an older version), timestamps on a whole second."""
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(it)
                .where(it.c.id == uuid.UUID(interaction_id))
                .values(
                    question_classification={"type": "technical"},
                    generated_responses=[{"id": "old", "content": "c", "structure": "STAR"}],
                )
            )
            for table, column in ((it, it.c.timestamp), (mt, mt.c.created_at)):
                for rid, at in (await conn.execute(select(table.c.id, column).limit(1))).all():
                    await conn.execute(
                        update(table)
                        .where(table.c.id == rid)
                        .values({column.name: at.replace(microsecond=0)})
                    )
    finally:
        await engine.dispose()


LISTS = DETAILS  # every stored field of both lists
WRITTEN = [
    "{ sessions { id " + LISTS + " } }",
    "query($id: ID!) { session(id: $id) { " + LISTS + " } }",
    # Aliases, a key asked twice, a fragment, a nested subset in another order.
    "{ sessions { m: metrics { c: createdAt id createdAt } interactions { ...I } } } "
    "fragment I on Interaction { generatedResponses { tags id } q: question "
    "questionClassification { requiresSTAR type } }",
    # The same list twice under two keys, and one list alone.
    "{ sessions { a: interactions { id } b: interactions { question } } }",
]


async def same_answers(two_apps, user: str, query: str, variables: dict | None) -> dict:
    (fast_app, fast), (_slow_app, slow) = two_apps
    body = {"query": query, "variables": variables}
    headers = bearer(make_token(user))
    before = fast_app.graphql.plans.answered
    a = await fast.post("/graphql", json=body, headers=headers)
    b = await slow.post("/graphql", json=body, headers=headers)
    assert a.status_code == b.status_code == 200
    assert "errors" not in b.json(), b.json()
    assert a.content == b.content  # byte for byte
    assert fast_app.graphql.plans.answered == before + 1
    return a.json()["data"]


@pytest.mark.parametrize("query", WRITTEN)
async def test_written_lists_are_byte_for_byte_the_standard_answer(
    two_apps, db_url, new_user, query
):
    (_fast_app, fast), _ = two_apps
    user = new_user()
    sid, rest = await seed(fast, user)
    await damage(db_url, rest.split("|")[1])
    data = await same_answers(two_apps, user, query, {"id": sid} if "$id" in query else None)
    assert data  # and the plan wrote it: see the plan test below


async def test_a_tiny_float_is_the_same_number(two_apps, new_user):
    """Outside 1e-4..1e15 PostgreSQL writes a float in exponent notation its own
    way (1e-07, where Python writes 1e-7): the same number, parsed."""
    (_fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    api = Api(fast, user)
    s = await api.new_session(jobContext={"title": "A", "company": "C"})
    await api.new_metric(s["id"], transcriptionAccuracy=1e-07)
    await api.new_interaction(
        s["id"],
        generatedResponses=[{"id": "r", "content": "c", "structure": "STAR", "confidence": 1e-07}],
    )
    query = {"query": "{ sessions { " + LISTS + " } }"}
    headers = bearer(make_token(user))
    a = await fast.post("/graphql", json=query, headers=headers)
    b = await slow.post("/graphql", json=query, headers=headers)
    assert same_json(a.content, b.content)
    [session] = a.json()["data"]["sessions"]
    assert session["metrics"][0]["transcriptionAccuracy"] == 1e-07
    assert session["interactions"][0]["generatedResponses"][0]["confidence"] == 1e-07


async def test_the_plan_has_the_storage_write_only_plain_selections(two_apps, backend):
    (fast_app, _), _ = two_apps
    plans = fast_app.graphql.plans
    from graphql import parse

    def source(query: str) -> str:
        doc = parse(query)
        return plans.explain(doc, doc.definitions[0])

    # Under a root the storage cannot write whole (active sessions), each list
    # is written when the selection only copies stored fields ...
    assert "run.written(P" in source("{ activeSessions { " + LISTS + " } }")
    # ... sessions and session: the whole answer, lists included; not
    # without lists (the plan's builders write the rows), nor with a field
    # the storage does not hold.
    for root in ("{ sessions { id " + LISTS + " } }", '{ session(id: "x") { id metrics { id } } }'):
        assert "written whole by the storage" in source(root)
        assert "Children(kind='metrics'" in source(root)
    assert "written whole" not in source("{ sessions { id status jobContext { title } } }")
    # ... and a list they cannot write (a field with a resolver inside, such as
    # __typename) is not compiled: the standard executor answers it.
    typename = "{ activeSessions { interactions { id __typename } } }"
    assert source(typename).startswith("not compiled")


async def test_written_answers_hold_only_the_callers_sessions(service, new_user):
    """The service's written reads keep its rules: only the caller's sessions."""
    alice, bob = new_user(), new_user()
    mine = await service.sessions.create(
        as_principal(alice), CreateSession(job_context=JobContext(title="T", company="C"))
    )
    await service.interactions.create(
        as_principal(alice), CreateInteraction(session_id=str(mine.id), question="Q")
    )
    questions = Projection((("id", "id", None), ("question", "question", None)))
    ids = Projection((("id", "id", None),))
    parts = (Children("interactions", Interaction, questions), Children("metrics", Metric, ids))
    missing = uuid.uuid4()

    db = service.db

    async def lists_of(user: str) -> dict:
        return await written_lists(db, db.dialect, user, [mine.id, missing], parts)

    as_alice = await lists_of(alice)
    written = json.loads(as_alice[mine.id][0])
    assert [i["question"] for i in written] == ["Q"] and list(written[0]) == ["id", "question"]
    assert as_alice[mine.id][1] == "[]" and as_alice[missing] == ("[]", "[]")
    as_bob = await lists_of(bob)
    assert as_bob == {mine.id: ("[]", "[]"), missing: ("[]", "[]")}
