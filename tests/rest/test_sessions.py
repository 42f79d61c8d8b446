"""Sessions over REST: create, list, active, get, details, update, delete, the active cap."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import (
    CLASSIFICATION,
    DEFAULT_SETTINGS,
    FULL_JOB,
    FULL_SETTINGS,
    INTERACTION_FIELDS,
    JOB,
    JOB_WITH_DEFAULTS,
    METRIC_FIELDS,
    RESPONSE,
    SESSION_FIELDS,
    SESSION_NOT_FOUND,
    Api,
    assert_error,
    is_timestamp,
    is_uuid,
    stored_rows,
)


def assert_session_shape(s: dict[str, Any]) -> None:
    assert set(s) == SESSION_FIELDS, s
    assert is_uuid(s["id"])
    assert is_timestamp(s["startedAt"]) and is_timestamp(s["createdAt"])
    assert s["endedAt"] is None or is_timestamp(s["endedAt"])


# ---------------------------------------------------------------- create


async def test_create_echoes_the_documented_body_field_by_field(client, new_user, app_clock):
    user = new_user()
    api = Api(client, user)
    r = await api.create_session(jobContext=FULL_JOB, settings=FULL_SETTINGS)
    assert r.status_code == 201, r.text
    s = r.json()
    assert_session_shape(s)
    assert s == {
        "id": s["id"],
        "userId": user,
        "jobContext": FULL_JOB,
        "status": "active",
        "settings": FULL_SETTINGS,
        "startedAt": "2024-01-01T10:00:00Z",
        "endedAt": None,
        "createdAt": "2024-01-01T10:00:00Z",
    }


async def test_create_minimal_fills_every_default_and_omits_nothing(client, new_user):
    user = new_user()
    api = Api(client, user)
    r = await api.create_session(jobContext=JOB)
    assert r.status_code == 201, r.text
    s = r.json()
    assert_session_shape(s)
    assert s["userId"] == user
    assert s["status"] == "active"
    assert s["jobContext"] == JOB_WITH_DEFAULTS
    assert s["settings"] == DEFAULT_SETTINGS
    assert s["endedAt"] is None
    assert s["startedAt"] == s["createdAt"]
    # What the server answered is what it stored.
    assert (await api.get(s["id"])).json() == s


async def test_create_with_partial_settings_takes_defaults_for_the_rest(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session(settings={"confidenceThreshold": 0.5, "preferredLanguage": "fr"})
    assert s["settings"] == {
        **DEFAULT_SETTINGS,
        "confidenceThreshold": 0.5,
        "preferredLanguage": "fr",
    }


async def test_create_accepts_values_at_the_limits(client, new_user):
    api = Api(client, new_user())
    job = {
        "title": "t" * 200,
        "company": "c" * 200,
        "description": "d" * 10_000,
        "requirements": [f"req-{i}" for i in range(100)],
        "interviewType": "cultural",
        "seniority": "senior",
    }
    s = await api.new_session(jobContext=job, settings={"confidenceThreshold": 0})
    assert s["jobContext"] == job
    assert s["settings"]["confidenceThreshold"] == 0
    s = await api.new_session(settings={"confidenceThreshold": 1})
    assert s["settings"]["confidenceThreshold"] == 1


# ---------------------------------------------------------------- get, list, active


async def test_get_returns_the_stored_session(client, new_user):
    api = Api(client, new_user())
    created = await api.new_session(jobContext=FULL_JOB, settings=FULL_SETTINGS)
    r = await api.get(created["id"])
    assert r.status_code == 200
    assert r.json() == created


async def test_list_is_newest_first_with_limit_and_only_the_users_own(client, new_user, app_clock):
    api = Api(client, new_user())
    other = Api(client, new_user())
    created = []
    for i in range(4):
        app_clock.advance(minutes=1)
        created.append(await api.new_session(jobContext={**JOB, "title": f"Role {i}"}))
        await other.new_session()
    newest_first = list(reversed(created))

    r = await api.list_sessions()
    assert r.status_code == 200
    assert r.json() == newest_first

    r = await api.list_sessions(limit=2)
    assert r.status_code == 200
    assert r.json() == newest_first[:2]

    assert (await api.list_sessions(limit=1)).json() == newest_first[:1]
    assert (await api.list_sessions(limit=1000)).json() == newest_first


async def test_list_of_a_user_without_sessions_is_empty(client, new_user):
    api = Api(client, new_user())
    await Api(client, new_user()).new_session()
    for r in (await api.list_sessions(), await api.active()):
        assert r.status_code == 200
        assert r.json() == []


async def test_active_lists_only_active_sessions_newest_first(client, new_user, app_clock):
    api = Api(client, new_user())
    sessions = []
    for _ in range(4):
        app_clock.advance(minutes=1)
        sessions.append(await api.new_session())
    await api.set_status(sessions[1]["id"], "pause")
    await api.set_status(sessions[2]["id"], "complete")
    await Api(client, new_user()).new_session()  # someone else's active session

    r = await api.active()
    assert r.status_code == 200
    assert r.json() == [sessions[3], sessions[0]]


# ---------------------------------------------------------------- details


async def test_details_of_a_new_session_has_empty_lists(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.details(s["id"])
    assert r.status_code == 200
    assert r.json() == {**s, "interactions": [], "metrics": []}


async def test_details_includes_interactions_and_metrics_oldest_first(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    other = await api.new_session()
    app_clock.advance(minutes=5)
    first = await api.new_interaction(
        s["id"],
        question="Tell me about yourself",
        questionClassification={
            "type": "behavioral",
            "category": "introduction",
            "difficulty": "junior",
            "requiresSTAR": False,
        },
    )
    r = await api.update_interaction(
        first["id"],
        {"selectedResponse": "I am a passionate software developer...", "userFeedback": 4},
    )
    first = r.json()
    m1 = await api.new_metric(
        s["id"],
        transcriptionLatencyMs=1200,
        responseGenerationMs=800,
        totalLatencyMs=2000,
        transcriptionAccuracy=0.96,
        userSatisfaction=5,
    )
    app_clock.advance(minutes=1)
    second = await api.new_interaction(
        s["id"], question="Q2", questionClassification=CLASSIFICATION, generatedResponses=[RESPONSE]
    )
    m2 = await api.new_metric(s["id"], totalLatencyMs=900)
    await api.new_interaction(other["id"])  # must not leak into s
    await api.new_metric(other["id"], totalLatencyMs=1)

    r = await api.details(s["id"])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == SESSION_FIELDS | {"interactions", "metrics"}
    assert {k: body[k] for k in SESSION_FIELDS} == s
    assert body["interactions"] == [first, second]
    assert body["metrics"] == [m1, m2]
    assert all(set(i) == INTERACTION_FIELDS for i in body["interactions"])
    assert all(set(m) == METRIC_FIELDS for m in body["metrics"])
    assert first["selectedResponse"] == "I am a passionate software developer..."
    assert first["userFeedback"] == 4
    assert first["timestamp"] == "2024-01-01T10:05:00Z"
    assert m1["transcriptionAccuracy"] == 0.96


# ---------------------------------------------------------------- update


async def test_update_replaces_given_top_level_fields_and_leaves_the_rest(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session(jobContext=FULL_JOB, settings=FULL_SETTINGS)

    # jobContext is replaced as a whole: fields not given fall back to their defaults.
    new_job = {"title": "Staff Engineer", "company": "Other Corp", "seniority": "senior"}
    r = await api.update(s["id"], {"jobContext": new_job})
    assert r.status_code == 200, r.text
    after_job = r.json()
    assert after_job == {
        **s,
        "jobContext": {
            "title": "Staff Engineer",
            "company": "Other Corp",
            "description": None,
            "requirements": [],
            "interviewType": None,
            "seniority": "senior",
        },
    }
    assert (await api.get(s["id"])).json() == after_job

    # settings: the missing fields take the defaults, not the previous values.
    r = await api.update(s["id"], {"settings": {"preferredLanguage": "es"}})
    assert r.status_code == 200, r.text
    after_settings = r.json()
    assert after_settings == {
        **after_job,
        "settings": {**DEFAULT_SETTINGS, "preferredLanguage": "es"},
    }
    assert (await api.get(s["id"])).json() == after_settings

    # Status through PUT, jobContext and settings untouched.
    r = await api.update(s["id"], {"status": "paused"})
    assert r.status_code == 200, r.text
    assert r.json() == {**after_settings, "status": "paused"}


async def test_update_with_all_fields_at_once(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.update(
        s["id"], {"status": "paused", "jobContext": FULL_JOB, "settings": FULL_SETTINGS}
    )
    assert r.status_code == 200, r.text
    expected = {**s, "status": "paused", "jobContext": FULL_JOB, "settings": FULL_SETTINGS}
    assert r.json() == expected
    assert (await api.get(s["id"])).json() == expected


async def test_update_with_empty_body_changes_nothing(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session(jobContext=FULL_JOB)
    r = await api.update(s["id"], {})
    assert r.status_code == 200, r.text
    assert r.json() == s
    assert (await api.get(s["id"])).json() == s


# ---------------------------------------------------------------- delete


async def test_delete_answers_204_and_removes_everything(client, new_user, service):
    api = Api(client, new_user())
    s = await api.new_session()
    keep = await api.new_session()
    for session in (s, keep):
        await api.new_interaction(session["id"])
        await api.new_interaction(session["id"])
        await api.new_metric(session["id"], totalLatencyMs=10)
    engine = service.db.engine
    assert await stored_rows(engine, s["id"]) == {"sessions": 1, "interactions": 2, "metrics": 1}

    r = await api.delete(s["id"])
    assert r.status_code == 204
    assert r.content == b""

    assert await stored_rows(engine, s["id"]) == {"sessions": 0, "interactions": 0, "metrics": 0}
    assert await stored_rows(engine, keep["id"]) == {
        "sessions": 1,
        "interactions": 2,
        "metrics": 1,
    }
    for r in (await api.get(s["id"]), await api.details(s["id"]), await api.delete(s["id"])):
        assert_error(r, 404, SESSION_NOT_FOUND)
    assert (await api.list_sessions()).json() == [keep]


# ---------------------------------------------------------------- the active-session cap


class TestActiveCap:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"max_active_sessions": 2}

    @staticmethod
    def assert_cap_conflict(r) -> None:  # type: ignore[no-untyped-def]
        assert r.status_code == 409, r.text
        body = r.json()
        assert set(body) == {"statusCode", "message", "error"}
        assert body["statusCode"] == 409
        assert body["error"] == "Conflict"
        assert "active" in body["message"].lower()
        assert "2" in body["message"]

    async def test_creating_one_more_than_the_cap_is_409_and_stores_nothing(self, client, new_user):
        api = Api(client, new_user())
        a = await api.new_session()
        b = await api.new_session()
        before = (await api.list_sessions()).json()

        self.assert_cap_conflict(await api.create_session())
        assert (await api.list_sessions()).json() == before
        assert sorted(x["id"] for x in before) == sorted([a["id"], b["id"]])

        # Other users have their own budget.
        await Api(client, new_user()).new_session()

    async def test_paused_and_completed_sessions_do_not_count(self, client, new_user):
        api = Api(client, new_user())
        a = await api.new_session()
        b = await api.new_session()
        await api.set_status(a["id"], "pause")
        c = await api.new_session()
        await api.set_status(b["id"], "complete")
        d = await api.new_session()
        active = (await api.active()).json()
        assert sorted(x["id"] for x in active) == sorted([c["id"], d["id"]])

    async def test_resuming_beyond_the_cap_is_409_and_changes_nothing(self, client, new_user):
        api = Api(client, new_user())
        paused = await api.new_session()
        paused = await api.set_status(paused["id"], "pause")
        await api.new_session()
        await api.new_session()
        before = (await api.list_sessions()).json()

        self.assert_cap_conflict(await api.status(paused["id"], "start"))
        self.assert_cap_conflict(await api.update(paused["id"], {"status": "active"}))
        r = await api.update(paused["id"], {"status": "active", "jobContext": FULL_JOB})
        self.assert_cap_conflict(r)
        assert (await api.list_sessions()).json() == before
        assert (await api.get(paused["id"])).json() == paused

    async def test_an_already_active_session_can_be_started_at_the_cap(self, client, new_user):
        api = Api(client, new_user())
        a = await api.new_session()
        await api.new_session()
        r = await api.status(a["id"], "start")
        assert r.status_code == 200, r.text
        assert r.json() == a
