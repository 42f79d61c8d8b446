"""The session state machine over REST: every transition, the no-ops, nothing out of completed."""

from __future__ import annotations

import pytest

from tests.api import FULL_JOB, FULL_SETTINGS, Api, assert_error

COMPLETED_TO_ACTIVE = "Invalid status transition from 'completed' to 'active'"
COMPLETED_TO_PAUSED = "Invalid status transition from 'completed' to 'paused'"
T0 = "2024-01-01T10:00:00Z"


@pytest.mark.parametrize("via", ["action", "put"])
async def test_every_allowed_transition(client, new_user, app_clock, via):
    """active→paused→active→completed and active→paused→completed, by action or PUT status."""
    api = Api(client, new_user())

    async def move(session_id: str, action: str, status: str) -> dict:
        if via == "action":
            r = await api.status(session_id, action)
        else:
            r = await api.update(session_id, {"status": status})
        assert r.status_code == 200, r.text
        return r.json()

    s = await api.new_session()
    app_clock.advance(minutes=10)
    paused = await move(s["id"], "pause", "paused")
    assert paused == {**s, "status": "paused"}

    app_clock.advance(minutes=10)
    resumed = await move(s["id"], "start", "active")
    assert resumed == {**s, "status": "active"}  # startedAt is the first start, unchanged

    app_clock.advance(minutes=10)
    done = await move(s["id"], "complete", "completed")
    assert done == {**s, "status": "completed", "endedAt": "2024-01-01T10:30:00Z"}
    assert (await api.get(s["id"])).json() == done

    t = await api.new_session()
    app_clock.advance(minutes=5)
    await move(t["id"], "pause", "paused")
    app_clock.advance(minutes=5)
    done = await move(t["id"], "complete", "completed")
    assert done == {**t, "status": "completed", "endedAt": "2024-01-01T10:40:00Z"}
    assert (await api.get(t["id"])).json() == done


async def test_asking_for_the_current_state_is_a_no_op(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    app_clock.advance(minutes=1)
    for _ in range(2):
        assert await api.set_status(s["id"], "start") == s
        r = await api.update(s["id"], {"status": "active"})
        assert (r.status_code, r.json()) == (200, s)

    paused = await api.set_status(s["id"], "pause")
    app_clock.advance(minutes=1)
    assert await api.set_status(s["id"], "pause") == paused
    r = await api.update(s["id"], {"status": "paused"})
    assert (r.status_code, r.json()) == (200, paused)

    app_clock.advance(minutes=1)
    done = await api.set_status(s["id"], "complete")
    assert done["endedAt"] == "2024-01-01T10:03:00Z"
    app_clock.advance(hours=5)
    # Completing again: 200, and endedAt keeps its first value.
    assert await api.set_status(s["id"], "complete") == done
    r = await api.update(s["id"], {"status": "completed"})
    assert (r.status_code, r.json()) == (200, done)
    assert (await api.get(s["id"])).json() == done


async def test_nothing_leaves_completed(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    done = await api.set_status(s["id"], "complete")

    assert_error(await api.status(s["id"], "start"), 400, COMPLETED_TO_ACTIVE)
    assert_error(await api.status(s["id"], "pause"), 400, COMPLETED_TO_PAUSED)
    assert_error(await api.update(s["id"], {"status": "active"}), 400, COMPLETED_TO_ACTIVE)
    assert_error(await api.update(s["id"], {"status": "paused"}), 400, COMPLETED_TO_PAUSED)
    assert (await api.get(s["id"])).json() == done


async def test_a_paused_then_completed_session_cannot_be_paused_or_resumed(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    await api.set_status(s["id"], "pause")
    done = await api.set_status(s["id"], "complete")
    assert_error(await api.status(s["id"], "pause"), 400, COMPLETED_TO_PAUSED)
    assert_error(await api.status(s["id"], "start"), 400, COMPLETED_TO_ACTIVE)
    assert (await api.get(s["id"])).json() == done


async def test_a_completed_sessions_job_context_and_settings_can_still_be_corrected(
    client, new_user, app_clock
):
    api = Api(client, new_user())
    s = await api.new_session()
    app_clock.advance(minutes=30)
    done = await api.set_status(s["id"], "complete")
    app_clock.advance(minutes=30)

    r = await api.update(s["id"], {"jobContext": FULL_JOB, "settings": FULL_SETTINGS})
    assert r.status_code == 200, r.text
    corrected = {**done, "jobContext": FULL_JOB, "settings": FULL_SETTINGS}
    assert r.json() == corrected
    assert corrected["status"] == "completed"
    assert corrected["endedAt"] == "2024-01-01T10:30:00Z"

    # Naming the status it already has is allowed alongside a correction.
    r = await api.update(s["id"], {"status": "completed", "jobContext": {**FULL_JOB, "title": "X"}})
    assert r.status_code == 200, r.text
    corrected = {**corrected, "jobContext": {**FULL_JOB, "title": "X"}}
    assert r.json() == corrected
    assert (await api.get(s["id"])).json() == corrected


async def test_put_asking_a_completed_session_to_become_active_changes_nothing(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    done = await api.set_status(s["id"], "complete")
    r = await api.update(
        s["id"], {"status": "active", "jobContext": FULL_JOB, "settings": FULL_SETTINGS}
    )
    assert_error(r, 400, COMPLETED_TO_ACTIVE)
    assert (await api.get(s["id"])).json() == done


async def test_interactions_are_refused_on_completed_sessions_metrics_are_not(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    paused = await api.new_session()
    await api.set_status(paused["id"], "pause")
    await api.new_interaction(paused["id"])  # paused still takes interactions
    await api.new_metric(paused["id"], totalLatencyMs=1)

    first = await api.new_interaction(s["id"])
    await api.set_status(s["id"], "complete")
    r = await api.add_interaction(s["id"], question="Too late?")
    assert_error(r, 400, "Cannot add interactions to a completed session")
    assert (await api.interactions(s["id"])).json() == [first]

    m = await api.new_metric(s["id"], totalLatencyMs=5, userSatisfaction=3)
    assert (await api.metrics(s["id"])).json() == [m]

    # An existing interaction of a completed session can still get feedback.
    r = await api.update_interaction(first["id"], {"userFeedback": 2})
    assert r.status_code == 200, r.text
    assert r.json() == {**first, "userFeedback": 2}
