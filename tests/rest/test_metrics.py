"""Metrics over REST: record (absent values null, floats exact), list oldest first."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.db.models import metrics_table
from tests.api import METRIC_FIELDS, SESSION_NOT_FOUND, Api, assert_error, is_uuid, random_id

DOCUMENTED = {
    "transcriptionLatencyMs": 1200,
    "responseGenerationMs": 800,
    "totalLatencyMs": 2000,
    "transcriptionAccuracy": 0.96,
    "userSatisfaction": 5,
}


async def test_record_echoes_the_documented_body_field_by_field(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    app_clock.advance(minutes=5)
    r = await api.record_metrics(s["id"], **DOCUMENTED)
    assert r.status_code == 201, r.text
    m = r.json()
    assert set(m) == METRIC_FIELDS
    assert is_uuid(m["id"])
    assert m == {
        "id": m["id"],
        "sessionId": s["id"],
        **DOCUMENTED,
        "createdAt": "2024-01-01T10:05:00Z",
    }
    # 0.96 exactly, not 0.9599999904632568 (a single-precision round trip).
    assert m["transcriptionAccuracy"] == 0.96
    assert (await api.metrics(s["id"])).json() == [m]


async def test_accuracy_is_stored_as_double_precision(client, new_user, service):
    api = Api(client, new_user())
    s = await api.new_session()
    m = await api.new_metric(s["id"], transcriptionAccuracy=0.96)
    async with service.db.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(metrics_table.c.transcription_accuracy).where(
                    metrics_table.c.id == uuid.UUID(m["id"])
                )
            )
        ).scalar_one()
    assert stored == 0.96


async def test_absent_values_are_null(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.record_metrics(s["id"], transcriptionLatencyMs=1200, userSatisfaction=5)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "id": r.json()["id"],
        "sessionId": s["id"],
        "transcriptionLatencyMs": 1200,
        "responseGenerationMs": None,
        "totalLatencyMs": None,
        "transcriptionAccuracy": None,
        "userSatisfaction": 5,
        "createdAt": r.json()["createdAt"],
    }
    r = await api.record_metrics(s["id"])
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in DOCUMENTED} == dict.fromkeys(DOCUMENTED)


async def test_explicit_nulls_are_accepted(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    m = await api.new_metric(s["id"], **dict.fromkeys(DOCUMENTED))
    assert {k: m[k] for k in DOCUMENTED} == dict.fromkeys(DOCUMENTED)


async def test_values_at_the_limits_are_accepted(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    low = {
        "transcriptionLatencyMs": 0,
        "responseGenerationMs": 0,
        "totalLatencyMs": 0,
        "transcriptionAccuracy": 0,
        "userSatisfaction": 1,
    }
    high = {
        "transcriptionLatencyMs": 3_600_000,
        "responseGenerationMs": 3_600_000,
        "totalLatencyMs": 3_600_000,
        "transcriptionAccuracy": 1,
        "userSatisfaction": 5,
    }
    for values in (low, high):
        m = await api.new_metric(s["id"], **values)
        assert {k: m[k] for k in values} == values


async def test_list_is_oldest_first_and_only_this_sessions(client, new_user, app_clock):
    api = Api(client, new_user())
    s = await api.new_session()
    other = await api.new_session()
    recorded = []
    for n in range(3):
        app_clock.advance(seconds=30)
        recorded.append(await api.new_metric(s["id"], totalLatencyMs=100 * n))
        await api.new_metric(other["id"], totalLatencyMs=7)
    r = await api.metrics(s["id"])
    assert r.status_code == 200
    assert r.json() == recorded
    assert [m["createdAt"] for m in recorded] == [
        "2024-01-01T10:00:30Z",
        "2024-01-01T10:01:00Z",
        "2024-01-01T10:01:30Z",
    ]


async def test_metrics_are_allowed_in_every_status(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    a = await api.new_metric(s["id"], userSatisfaction=1)
    await api.set_status(s["id"], "pause")
    b = await api.new_metric(s["id"], userSatisfaction=2)
    await api.set_status(s["id"], "complete")
    c = await api.new_metric(s["id"], userSatisfaction=3)
    assert (await api.metrics(s["id"])).json() == [a, b, c]


async def test_list_of_a_session_without_metrics_is_empty(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.metrics(s["id"])
    assert (r.status_code, r.json()) == (200, [])


async def test_unknown_session_is_404(client, new_user):
    api = Api(client, new_user())
    assert_error(await api.record_metrics(random_id(), totalLatencyMs=1), 404, SESSION_NOT_FOUND)
    assert_error(await api.metrics(random_id()), 404, SESSION_NOT_FOUND)
