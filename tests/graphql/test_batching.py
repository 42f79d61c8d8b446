"""Batched reads: a constant number of SQL statements, however many sessions."""

from __future__ import annotations

import asyncio

import pytest

from app.domain.records import CreateInteraction, CreateSession, JobContext, RecordMetrics
from tests.api import Api
from tests.conftest import as_principal

DETAILS = "{ sessions(limit: 50) { id interactions { id } metrics { id } } }"
PAGE = (
    "{ sessionsConnection(first: 50) { edges { node { id interactions { id } metrics { id } } } } }"
)


@pytest.fixture
def settings_overrides():
    # Counting what one strategy sends: no replay through the other one.
    return {"graphql_verify_plans": False}


async def seed(service, user: str, n: int) -> list[str]:
    principal = as_principal(user)
    ids = []
    for _ in range(n):
        s = await service.sessions.create(
            principal, CreateSession(job_context=JobContext(title="T", company="C"))
        )
        await service.sessions.set_status(principal, s.id, s.status.PAUSED)
        for k in range(2):
            await service.interactions.create(
                principal, CreateInteraction(session_id=str(s.id), question=f"Q{k}")
            )
        await service.metrics.record(
            principal, RecordMetrics(session_id=str(s.id), total_latency_ms=10)
        )
        ids.append(str(s.id))
    return ids


def _sessions(data: dict) -> list[dict]:
    if "sessions" in data:
        return data["sessions"]
    return [e["node"] for e in data["sessionsConnection"]["edges"]]


# Statements per document, on PostgreSQL and SQLite. PostgreSQL writes a
# plain ``sessions`` answer whole (one statement: the sessions with their lists
# as JSON); under a root it cannot write (a connection), the page is one
# statement and both lists one more. SQLite reads the sessions, then each list
# in one statement, and the answer is written in Python (faster than SQLite's
# JSON functions): three statements either way.
COUNTS = [(DETAILS, 1, 3), (PAGE, 2, 3)]


@pytest.mark.parametrize(("document", "on_postgres", "elsewhere"), COUNTS)
async def test_statement_count_is_constant(
    client, service, count_statements, new_user, backend, document, on_postgres, elsewhere
):
    small, big = new_user(), new_user()
    await seed(service, small, 1)
    await seed(service, big, 50)

    count_statements.statements.clear()
    body = await Api(client, small).graphql(document)
    assert len(_sessions(body["data"])) == 1
    one = list(count_statements.queries)

    count_statements.statements.clear()
    body = await Api(client, big).graphql(document)
    sessions = _sessions(body["data"])
    assert len(sessions) == 50
    assert all(len(s["interactions"]) == 2 and len(s["metrics"]) == 1 for s in sessions)
    fifty = list(count_statements.queries)

    expected = on_postgres if backend == "postgres" else elsewhere
    assert len(one) == len(fifty) == expected, fifty


async def test_loaders_only_return_the_callers_data(client, service, new_user):
    alice, bob = new_user(), new_user()
    await seed(service, alice, 3)
    await seed(service, bob, 2)
    a, b = Api(client, alice), Api(client, bob)
    ra, rb = await asyncio.gather(a.graphql(DETAILS), b.graphql(DETAILS))
    a_sessions = {s["id"] for s in ra["data"]["sessions"]}
    b_sessions = {s["id"] for s in rb["data"]["sessions"]}
    assert len(a_sessions) == 3 and len(b_sessions) == 2 and not a_sessions & b_sessions
    for body, mine in ((ra, alice), (rb, bob)):
        for s in body["data"]["sessions"]:
            rest = (
                await Api(client, mine).request("GET", f"/interview-sessions/{s['id']}/details")
            ).json()
            assert [i["id"] for i in rest["interactions"]] == [i["id"] for i in s["interactions"]]
            assert [m["id"] for m in rest["metrics"]] == [m["id"] for m in s["metrics"]]
