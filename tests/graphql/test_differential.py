"""Plans and the standard executor give the same bytes for generated queries.

Queries are generated from ``schema.graphql`` by hypothesis-graphql (every
root field, nested selections, arguments of every type, nulls), then sent to
two apps on the same database: one with compiled plans, one without. Status,
headers (but the per-request ones) and body must be equal; a minimum share of
the queries must have been answered by plans, so the test cannot pass by
plans refusing everything.
"""

from __future__ import annotations

import datetime as dt
import gc
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries

from app.resolvers.schema import export_sdl
from tests.api import Api
from tests.conftest import bearer, make_token

EXAMPLES = 200
MIN_SHARE_BY_PLANS = 0.25
VOLATILE = {"date", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


def _string(value: str) -> graphql.StringValueNode:
    return graphql.StringValueNode(value=value)


SCALARS = {
    "Date": st.dates(dt.date(2023, 1, 1), dt.date(2026, 12, 31)).map(
        lambda d: _string(d.isoformat())
    ),
    "DateTime": st.datetimes(dt.datetime(2023, 1, 1), dt.datetime(2026, 12, 31)).map(
        lambda d: _string(d.isoformat() + "Z")
    ),
}


def generated(n: int) -> list[str]:
    """``n`` query documents drawn by hypothesis-graphql (collected, then sent)."""
    docs: list[str] = []
    sdl = export_sdl()

    def of(*fields: str) -> st.SearchStrategy[Any]:
        return queries(sdl, fields=fields or None, custom_scalars=SCALARS, allow_x00=False)

    # Every root field together, and each alone (a document whose every root
    # field fails, such as session(id:) with a generated id, proves less).
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(of(), of("sessions"), of("activeSessions"), of("analytics"), of("session")))
    def collect(doc: Any) -> None:
        docs.append(str(doc))

    collect()
    return docs


async def seed(client: httpx.AsyncClient, user: str) -> None:
    api = Api(client, user)
    a = await api.new_session(
        jobContext={"title": "A", "company": "C", "interviewType": "technical"}
    )
    b = await api.new_session()
    for q in ("one", "two"):
        await api.new_interaction(
            a["id"],
            question=q,
            questionClassification={"type": "behavioral", "requiresSTAR": True},
            generatedResponses=[{"id": "r", "content": "c", "structure": "STAR"}],
        )
    await api.new_metric(a["id"], totalLatencyMs=1200, transcriptionAccuracy=0.9)
    await api.new_metric(b["id"], userSatisfaction=4)
    await api.status(b["id"], "complete")


# Pre-existing, in the libraries: on some error paths of the standard
# strategy (a generated document with an error next to an async field) a
# resolver coroutine Strawberry created is never awaited; its "never awaited"
# warning surfaces whenever the collector finalizes it, in this test or the
# next (reproduced at 85b2ef9 with --hypothesis-seed=3). Answers still match;
# that is what this test checks, so the warning is collected here and ignored.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_generated_queries_get_identical_answers_from_both_strategies(two_apps, new_user):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    await seed(fast, user)
    headers = bearer(make_token(user))
    plans = fast_app.graphql.plans
    before = plans.answered
    docs = generated(EXAMPLES)
    assert len(docs) >= EXAMPLES * 0.9
    for doc in docs:
        a = await fast.post("/graphql", json={"query": doc}, headers=headers)
        b = await slow.post("/graphql", json={"query": doc}, headers=headers)
        assert a.status_code == b.status_code, doc
        assert a.content == b.content, doc
        assert _stable(a.headers) == _stable(b.headers), doc
    gc.collect()  # finalize any abandoned coroutine here, not in another test
    share = (plans.answered - before) / len(docs)
    assert share >= MIN_SHARE_BY_PLANS, f"plans answered only {share:.0%} of {len(docs)}"
    assert plans.failed == 0


def _stable(headers: httpx.Headers) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k not in VOLATILE)
