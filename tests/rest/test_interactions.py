"""Interactions over REST: create, list oldest first, update feedback and selection."""

from __future__ import annotations

from tests.api import (
    CLASSIFICATION,
    INTERACTION_FIELDS,
    INTERACTION_NOT_FOUND,
    RESPONSE,
    SESSION_NOT_FOUND,
    Api,
    assert_error,
    is_uuid,
    random_id,
)


async def test_create_echoes_the_documented_body_field_by_field(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    app_clock.advance(minutes=5)
    r = await api.add_interaction(
        s["id"],
        question="What is your experience with React?",
        questionClassification=CLASSIFICATION,
        generatedResponses=[RESPONSE],
    )
    assert r.status_code == 201, r.text
    i = r.json()
    assert set(i) == INTERACTION_FIELDS
    assert is_uuid(i["id"])
    assert i == {
        "id": i["id"],
        "sessionId": s["id"],
        "question": "What is your experience with React?",
        "questionClassification": CLASSIFICATION,
        "generatedResponses": [RESPONSE],
        "selectedResponse": None,
        "userFeedback": None,
        "timestamp": "2024-01-01T10:05:00Z",
    }


async def test_create_minimal_fills_defaults(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.add_interaction(s["id"], question="Tell me about yourself")
    assert r.status_code == 201, r.text
    i = r.json()
    assert i == {
        "id": i["id"],
        "sessionId": s["id"],
        "question": "Tell me about yourself",
        "questionClassification": None,
        "generatedResponses": [],
        "selectedResponse": None,
        "userFeedback": None,
        "timestamp": "2024-01-01T10:00:00Z",
    }


async def test_nested_defaults_are_filled(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(
        s["id"],
        questionClassification={"type": "situational"},
        generatedResponses=[{"id": "r1", "content": "Answer", "structure": "STAR"}],
    )
    assert i["questionClassification"] == {
        "type": "situational",
        "category": None,
        "difficulty": None,
        "requiresSTAR": False,
    }
    assert i["generatedResponses"] == [
        {
            "id": "r1",
            "content": "Answer",
            "structure": "STAR",
            "estimatedDuration": None,
            "confidence": None,
            "tags": [],
        }
    ]


async def test_create_accepts_values_at_the_limits(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    responses = [
        {
            "id": f"r{n}",
            "content": "c" * 20_000 if n == 0 else "short",
            "structure": ["STAR", "direct", "technical"][n % 3],
            "estimatedDuration": 0,
            "confidence": n % 2,
        }
        for n in range(10)
    ]
    i = await api.new_interaction(
        s["id"],
        question="q" * 5_000,
        questionClassification={**CLASSIFICATION, "requiresSTAR": True},
        generatedResponses=responses,
    )
    assert i["question"] == "q" * 5_000
    assert [g["content"] for g in i["generatedResponses"]] == [r["content"] for r in responses]
    assert i["questionClassification"]["requiresSTAR"] is True
    assert (await api.interactions(s["id"])).json() == [i]


async def test_list_is_oldest_first_and_only_this_sessions(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    other = await api.new_session()
    created = []
    for n in range(3):
        app_clock.advance(minutes=1)
        created.append(await api.new_interaction(s["id"], question=f"Q{n}"))
        await api.new_interaction(other["id"], question=f"other {n}")
    r = await api.interactions(s["id"])
    assert r.status_code == 200
    assert r.json() == created
    assert [i["timestamp"] for i in created] == [
        "2024-01-01T10:01:00Z",
        "2024-01-01T10:02:00Z",
        "2024-01-01T10:03:00Z",
    ]


async def test_list_of_a_session_without_interactions_is_empty(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.interactions(s["id"])
    assert (r.status_code, r.json()) == (200, [])


async def test_update_sets_clears_and_leaves_fields(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(s["id"], generatedResponses=[RESPONSE])

    r = await api.update_interaction(
        i["id"], {"selectedResponse": RESPONSE["content"], "userFeedback": 5}
    )
    assert r.status_code == 200, r.text
    both = {**i, "selectedResponse": RESPONSE["content"], "userFeedback": 5}
    assert r.json() == both

    # A field not given is left alone.
    r = await api.update_interaction(i["id"], {"userFeedback": 1})
    assert (r.status_code, r.json()) == (200, {**both, "userFeedback": 1})
    r = await api.update_interaction(i["id"], {"selectedResponse": "mine"})
    assert (r.status_code, r.json()) == (
        200,
        {**both, "userFeedback": 1, "selectedResponse": "mine"},
    )

    # null clears.
    r = await api.update_interaction(i["id"], {"userFeedback": None})
    cleared = {**both, "userFeedback": None, "selectedResponse": "mine"}
    assert (r.status_code, r.json()) == (200, cleared)

    # {} changes nothing.
    r = await api.update_interaction(i["id"], {})
    assert (r.status_code, r.json()) == (200, cleared)

    # Stored, as seen by the list.
    assert (await api.interactions(s["id"])).json() == [cleared]


async def test_update_accepts_the_limits(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(s["id"])
    for feedback in (1, 5):
        r = await api.update_interaction(i["id"], {"userFeedback": feedback})
        assert r.json()["userFeedback"] == feedback
    r = await api.update_interaction(i["id"], {"selectedResponse": "x" * 20_000})
    assert r.status_code == 200
    assert r.json()["selectedResponse"] == "x" * 20_000


async def test_unknown_session_or_interaction_is_404(client, new_user):
    api = Api(client, new_user())
    assert_error(await api.add_interaction(random_id()), 404, SESSION_NOT_FOUND)
    assert_error(await api.interactions(random_id()), 404, SESSION_NOT_FOUND)
    r = await api.update_interaction(random_id(), {"userFeedback": 3})
    assert_error(r, 404, INTERACTION_NOT_FOUND)
