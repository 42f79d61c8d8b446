"""Concurrent requests through the ASGI app: nothing lost, no impossible state, caps hold."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any

import pytest

from tests.api import Api, error

CONFLICT = "Session was modified concurrently"
ACTIONS = {"start": "active", "pause": "paused", "complete": "completed"}


async def test_fifty_concurrent_interactions_are_all_stored(client, new_user, service):
    api = Api(client, new_user())
    s = await api.new_session()
    responses = await asyncio.gather(
        *(api.add_interaction(s["id"], question=f"Question {n}") for n in range(50))
    )
    assert [r.status_code for r in responses] == [201] * 50, [
        r.text for r in responses if r.status_code != 201
    ]
    created = {r.json()["id"] for r in responses}
    assert len(created) == 50

    listed = (await api.interactions(s["id"])).json()
    assert {i["id"] for i in listed} == created
    assert sorted(i["question"] for i in listed) == sorted(f"Question {n}" for n in range(50))
    timestamps = [parse_ts(i["timestamp"]) for i in listed]
    assert timestamps == sorted(timestamps)  # still oldest first


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_race_answer(action: str, r: Any) -> str | None:
    """What is wrong with one answer of a race, or None."""
    body = r.json()
    if r.status_code == 200:
        return None if body["status"] == ACTIONS[action] else f"{action} answered {body}"
    if r.status_code == 400:
        expected = error(400, f"Invalid status transition from 'completed' to '{ACTIONS[action]}'")
        return None if body == expected else f"{action}: {body}"
    if r.status_code == 409:
        return None if body == error(409, CONFLICT) else f"{action}: {body}"
    return f"{action}: unexpected {r.status_code} {body}"


@pytest.mark.parametrize("seed", [1, 2])
async def test_racing_status_changes_end_consistently(client, new_user, seed):
    api = Api(client, new_user())
    rng = random.Random(seed)
    sessions = [await api.new_session() for _ in range(3)]
    for s in sessions:
        actions = [rng.choice(list(ACTIONS)) for _ in range(24)]
        responses = await asyncio.gather(*(api.status(s["id"], a) for a in actions))
        problems = [
            p for a, r in zip(actions, responses, strict=True) if (p := check_race_answer(a, r))
        ]
        assert problems == []

        final = (await api.get(s["id"])).json()
        assert final["status"] in ACTIONS.values()
        assert (final["endedAt"] is not None) == (final["status"] == "completed")
        completions = [
            r.json()
            for a, r in zip(actions, responses, strict=True)
            if a == "complete" and r.status_code == 200
        ]
        if completions:
            # Once completed it stays completed, and endedAt was set exactly once.
            assert final["status"] == "completed"
            assert {c["endedAt"] for c in completions} == {final["endedAt"]}
        refused = [r for r in responses if r.status_code == 400]
        if refused:
            assert final["status"] == "completed"
        # jobContext, settings and timestamps are untouched by the race.
        for key in ("jobContext", "settings", "startedAt", "createdAt", "userId"):
            assert final[key] == s[key]


async def test_racing_complete_and_interactions_leave_nothing_after_completion(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    calls = [api.add_interaction(s["id"], question=f"Q{n}") for n in range(20)]
    calls.insert(10, api.status(s["id"], "complete"))
    responses = await asyncio.gather(*calls)
    completed = responses.pop(10)
    assert completed.status_code == 200, completed.text
    for r in responses:
        assert (r.status_code, r.json() if r.status_code != 201 else None) in (
            (201, None),
            (400, error(400, "Cannot add interactions to a completed session")),
        )
    stored = (await api.interactions(s["id"])).json()
    assert len(stored) == sum(r.status_code == 201 for r in responses)
    ended = parse_ts(completed.json()["endedAt"])
    assert all(parse_ts(i["timestamp"]) <= ended for i in stored)


class TestRacingTheActiveCap:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"max_active_sessions": 3}

    async def test_racing_creations_cannot_exceed_the_cap(self, client, new_user):
        api = Api(client, new_user())
        responses = await asyncio.gather(*(api.create_session() for _ in range(12)))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] * 3 + [409] * 9, [r.text for r in responses]
        created = {r.json()["id"] for r in responses if r.status_code == 201}
        active = (await api.active()).json()
        assert {s["id"] for s in active} == created
        assert len((await api.list_sessions()).json()) == 3

    async def test_racing_resumes_cannot_exceed_the_cap(self, client, new_user):
        api = Api(client, new_user())
        paused = []
        for _ in range(3):
            s = await api.new_session()
            paused.append(await api.set_status(s["id"], "pause"))
        for _ in range(3):
            s = await api.new_session()
            paused.append(await api.set_status(s["id"], "pause"))
        await api.new_session()  # one slot taken: two left

        responses = await asyncio.gather(
            *(api.status(p["id"], "start") for p in paused),
            *(api.create_session() for _ in range(3)),
        )
        assert sum(r.status_code in (200, 201) for r in responses) == 2, [r.text for r in responses]
        for r in responses:
            assert r.status_code in (200, 201, 409), r.text
        assert len((await api.active()).json()) == 3
