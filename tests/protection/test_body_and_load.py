"""Request body cap, and many concurrent writers with nothing lost."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from app.db.models import interactions_table, metrics_table
from tests.api import Api


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 2048}])
async def test_bodies_over_the_cap_get_413(client, new_user, settings_overrides):
    api = Api(client, new_user())
    big = {"jobContext": {"title": "T", "company": "C", "description": "x" * 3000}}
    r = await api.request("POST", "/interview-sessions", json=big)
    assert r.status_code == 413
    assert r.json() == {
        "statusCode": 413,
        "message": "Request Entity Too Large",
        "error": "Request Entity Too Large",
    }
    r = await api.request(
        "POST", "/graphql", json={"query": "{ sessions { id } }", "variables": {"pad": "x" * 3000}}
    )
    assert r.status_code == 413 and r.json()["statusCode"] == 413
    assert (await api.request("GET", "/interview-sessions")).json() == []
    assert (await api.create_session()).status_code == 201


async def test_200_concurrent_writes_across_two_users(client, service, new_user):
    alice, bob = Api(client, new_user()), Api(client, new_user())
    sa, sb = await alice.new_session(), await bob.new_session()

    async def write(api: Api, sid: str, n: int):
        if n % 2:
            return await api.add_interaction(sid, question=f"Q{n}")
        return await api.record_metrics(sid, totalLatencyMs=n)

    results = await asyncio.gather(
        *(write(alice, sa["id"], n) for n in range(100)),
        *(write(bob, sb["id"], n) for n in range(100)),
    )
    assert [r.status_code for r in results] == [201] * 200
    for api, sid in ((alice, sa["id"]), (bob, sb["id"])):
        details = (await api.request("GET", f"/interview-sessions/{sid}/details")).json()
        assert sorted(i["question"] for i in details["interactions"]) == sorted(
            f"Q{n}" for n in range(1, 100, 2)
        )
        assert sorted(m["totalLatencyMs"] for m in details["metrics"]) == list(range(0, 100, 2))

    async with service.db.engine.connect() as conn:
        n_int = (await conn.execute(select(func.count()).select_from(interactions_table))).scalar()
        n_met = (await conn.execute(select(func.count()).select_from(metrics_table))).scalar()
    assert (n_int, n_met) == (100, 100)
