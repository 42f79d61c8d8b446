"""Every change through either face writes exactly one event, in its own
transaction: the right type, the state it left, nothing for a no-op or a
refused change."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.records import SessionEventType as T
from tests.api import Api


@pytest.fixture
def settings_overrides():
    return {"max_active_sessions": 2}


async def events_of(service, user: str) -> list[Any]:
    async def work(uow):
        return await uow.events.after(user, 0, None, 1000)

    return await service.db.read(work)


async def test_rest_changes_write_one_event_each(client, service, new_user):
    user = new_user()
    api = Api(client, user)
    s = await api.new_session()
    i = await api.new_interaction(s["id"])
    await api.update_interaction(i["id"], {"userFeedback": 4})
    await api.update_interaction(i["id"], {"userFeedback": 4})  # no-op
    await api.new_metric(s["id"], totalLatencyMs=10)
    await api.update(s["id"], {"settings": {"preferredLanguage": "de"}})
    await api.update(s["id"], {})  # no-op
    await api.update(s["id"], {"settings": {"preferredLanguage": "de"}})  # no-op: same values
    await api.set_status(s["id"], "pause")
    await api.set_status(s["id"], "pause")  # no-op
    await api.update(s["id"], {"status": "active", "jobContext": {"title": "X", "company": "Y"}})
    await api.set_status(s["id"], "complete")
    r = await api.add_interaction(s["id"])  # refused: completed
    assert r.status_code == 400
    await api.delete(s["id"])

    events = await events_of(service, user)
    assert [e.type for e in events] == [
        T.SESSION_CREATED,
        T.INTERACTION_CREATED,
        T.INTERACTION_UPDATED,
        T.METRICS_RECORDED,
        T.SESSION_UPDATED,
        T.STATUS_CHANGED,
        T.STATUS_CHANGED,
        T.STATUS_CHANGED,
        T.SESSION_DELETED,
    ]
    assert [e.seq for e in events] == list(range(1, 10))
    assert {str(e.session_id) for e in events} == {s["id"]}
    created, interaction, updated = events[0], events[1], events[2]
    assert str(created.session.id) == s["id"] and created.session.status.value == "active"
    assert interaction.interaction.question == i["question"]
    assert updated.interaction.user_feedback == 4
    assert events[3].metric.total_latency_ms == 10
    assert events[4].session.settings.preferred_language == "de"
    assert events[5].session.status.value == "paused"
    assert events[6].session.job_context.title == "X"  # a status change with other fields
    assert events[8].session is None
    assert all(e.at is not None for e in events)


async def test_graphql_changes_write_the_same_events(client, service, new_user):
    user = new_user()
    api = Api(client, user)
    body = await api.graphql(
        'mutation { createSession(input: {jobContext: {title: "a", company: "b"}}) { id } }'
    )
    sid = body["data"]["createSession"]["id"]
    body = await api.graphql(
        'mutation($s: ID!) { createInteraction(input: {sessionId: $s, question: "q"}) { id } '
        "recordMetrics(input: {sessionId: $s, userSatisfaction: 5}) { id } "
        "pauseSession(id: $s) { status } }",
        {"s": sid},
    )
    assert "errors" not in body
    await api.graphql("mutation($s: ID!) { deleteSession(id: $s) }", {"s": sid})
    assert [e.type for e in await events_of(service, user)] == [
        T.SESSION_CREATED,
        T.INTERACTION_CREATED,
        T.METRICS_RECORDED,
        T.STATUS_CHANGED,
        T.SESSION_DELETED,
    ]


async def test_a_refused_change_writes_no_event(client, service, new_user):
    user = new_user()
    api = Api(client, user)
    await api.new_session()
    await api.new_session()
    r = await api.create_session()  # over the active cap of 2: 409, rolled back
    assert r.status_code == 409
    other = Api(client, new_user())
    s = await other.new_session()
    assert (await api.add_interaction(s["id"])).status_code == 403
    assert [e.type for e in await events_of(service, user)] == [T.SESSION_CREATED] * 2


async def test_each_user_has_their_own_sequence(client, service, new_user):
    a, b = new_user(), new_user()
    for user in (a, b):
        s = await Api(client, user).new_session()
        await Api(client, user).set_status(s["id"], "pause")
        await Api(client, user).new_session()
    assert [e.seq for e in await events_of(service, a)] == [1, 2, 3]
    assert [e.seq for e in await events_of(service, b)] == [1, 2, 3]


class TestRetention:
    @pytest.fixture
    def settings_overrides(self):
        from datetime import timedelta

        return {"event_retention": timedelta(seconds=1)}

    async def test_a_cursor_older_than_the_retention_is_refused(
        self, app, client, service, new_user
    ):
        import asyncio

        from app.domain.records import Principal
        from app.errors import BadRequest

        user = new_user()
        api = Api(client, user)
        s = await api.new_session()
        await api.set_status(s["id"], "pause")
        old = await events_of(service, user)
        cursor = service.live.cursor(old[0])
        assert await service.live.subscribe(Principal(user), None, cursor)  # still kept
        await asyncio.sleep(1.2)
        await api.set_status(s["id"], "start")
        assert (await app.live.pruner.run_once())["events"] == 2
        with pytest.raises(BadRequest) as info:
            await service.live.subscribe(Principal(user), None, cursor)
        assert "older than the events kept (EVENT_RETENTION, 1 seconds)" in str(info.value.message)
        # The newest cursor is still good: nothing after it was pruned.
        newest = service.live.cursor((await events_of(service, user))[-1])
        assert await service.live.subscribe(Principal(user), None, newest)


async def test_a_deleted_session_s_stream_resumes_only_for_its_owner(client, service, new_user):
    from app.domain.records import Principal
    from app.errors import NotFound

    alice, bob = Principal(new_user()), Principal(new_user())
    a, b = Api(client, alice.user_id), Api(client, bob.user_id)
    s = await a.new_session()
    await b.new_session()
    [alice_start] = await events_of(service, alice.user_id)
    [bob_start] = await events_of(service, bob.user_id)
    await a.new_metric(s["id"])
    assert (await a.delete(s["id"])).status_code == 204
    live = service.live
    stream = await live.subscribe(alice, s["id"], live.cursor(alice_start))
    assert [e.type async for e in stream] == [T.METRICS_RECORDED, T.SESSION_DELETED]
    with pytest.raises(NotFound):  # Bob's own cursor proves nothing about Alice's session
        await live.subscribe(bob, s["id"], live.cursor(bob_start))
