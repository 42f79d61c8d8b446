"""Concurrent updates of one interaction keep every field each of them set."""

import asyncio

from tests.api import Api


async def test_concurrent_updates_of_different_fields_both_land(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    for round_ in range(10):
        i = (await api.add_interaction(s["id"], question=f"Q{round_}")).json()
        path = f"/interview-sessions/interactions/{i['id']}"
        a, b = await asyncio.gather(
            api.request("PUT", path, json={"selectedResponse": f"S{round_}"}),
            api.request("PUT", path, json={"userFeedback": 5}),
        )
        assert (a.status_code, b.status_code) == (200, 200)
        stored = (await api.request("GET", f"/interview-sessions/{s['id']}/interactions")).json()
        mine = next(x for x in stored if x["id"] == i["id"])
        assert (mine["selectedResponse"], mine["userFeedback"]) == (f"S{round_}", 5)
