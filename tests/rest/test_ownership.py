"""Another user's session is 403 on every route and stays untouched; a missing one is 404."""

from __future__ import annotations

from tests.api import (
    ACCESS_DENIED,
    INTERACTION_NOT_FOUND,
    SESSION_NOT_FOUND,
    Api,
    error,
    random_id,
    stored_rows,
)
from tests.rest.routes import session_routes


async def test_every_route_refuses_another_users_session_and_changes_nothing(
    client, new_user, service
):
    owner = Api(client, new_user())
    intruder = Api(client, new_user())
    s = await owner.new_session()
    i = await owner.new_interaction(s["id"], generatedResponses=[])
    await owner.new_metric(s["id"], totalLatencyMs=1000, userSatisfaction=4)
    paused = await owner.new_session()
    await owner.set_status(paused["id"], "pause")
    await intruder.new_session()  # the intruder has data of their own, too

    before_details = (await owner.details(s["id"])).json()
    before_list = (await owner.list_sessions()).json()
    before_rows = await stored_rows(service.db.engine, s["id"])

    answers = {}
    for route in session_routes(s["id"], i["id"]):
        r = await intruder.request(route.method, route.path, json=route.body)
        answers[route.name] = (r.status_code, r.json())
    # start on a paused session of the owner must be refused too (not just a no-op).
    r = await intruder.status(paused["id"], "start")
    answers["start paused"] = (r.status_code, r.json())

    expected = (403, error(403, ACCESS_DENIED))
    assert {name: a for name, a in answers.items() if a != expected} == {}
    assert len(answers) == 13

    assert (await owner.details(s["id"])).json() == before_details
    assert (await owner.list_sessions()).json() == before_list
    assert await stored_rows(service.db.engine, s["id"]) == before_rows
    assert len((await intruder.list_sessions()).json()) == 1


async def test_other_users_sessions_are_invisible_in_lists_and_analytics(client, new_user):
    owner = Api(client, new_user())
    other = Api(client, new_user())
    s = await owner.new_session()
    await owner.new_interaction(s["id"], questionClassification={"type": "technical"})
    await owner.new_metric(s["id"], totalLatencyMs=1000)

    assert (await other.list_sessions()).json() == []
    assert (await other.active()).json() == []
    r = await other.analytics()
    assert r.json() == {
        "totalSessions": 0,
        "averageSessionDuration": None,
        "averageLatency": None,
        "averageAccuracy": None,
        "averageSatisfaction": None,
        "mostCommonQuestionTypes": [],
        "performanceTrends": [],
    }


async def test_every_route_answers_404_for_a_missing_session(client, new_user):
    api = Api(client, new_user())
    await api.new_session()
    answers = {}
    for route in session_routes(random_id(), random_id()):
        r = await api.request(route.method, route.path, json=route.body)
        answers[route.name] = (r.status_code, r.json())
    assert answers.pop("update interaction") == (404, error(404, INTERACTION_NOT_FOUND))
    expected = (404, error(404, SESSION_NOT_FOUND))
    assert {name: a for name, a in answers.items() if a != expected} == {}
    assert len(answers) == 11


async def test_a_deleted_sessions_interaction_is_not_found(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(s["id"])
    assert (await api.delete(s["id"])).status_code == 204
    r = await api.update_interaction(i["id"], {"userFeedback": 3})
    assert (r.status_code, r.json()) == (404, error(404, INTERACTION_NOT_FOUND))
