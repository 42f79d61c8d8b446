"""Bodies are JSON, and are validated wherever they are sent."""

from __future__ import annotations

import pytest

from tests.api import Api, assert_error


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        None,
        "application/json; charset=latin-1",
    ],
)
async def test_a_body_that_is_not_json_is_415(api, content_type):
    headers = {"content-type": content_type} if content_type else {}
    s = await api.new_session()
    for method, path in (
        ("POST", "/interview-sessions"),
        ("PUT", f"/interview-sessions/{s['id']}"),
        ("PUT", f"/interview-sessions/{s['id']}/pause"),
        ("POST", "/interview-sessions/interactions"),
        ("POST", "/interview-sessions/metrics"),
    ):
        r = await api.request(method, path, content=b'{"jobContext": {}}', headers=headers)
        assert r.status_code == 415, (method, path, r.text)
        assert r.json() == {
            "statusCode": 415,
            "message": "Content-Type must be application/json",
            "error": "Unsupported Media Type",
        }
    assert (await api.get(s["id"])).json()["status"] == "active"  # nothing changed


async def test_json_with_a_suffix_and_utf8_charset_is_json(api):
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        r = await api.request(
            "POST",
            "/interview-sessions",
            content=b'{"jobContext": {"title": "T", "company": "C"}}',
            headers={"content-type": content_type},
        )
        assert r.status_code == 201, content_type


@pytest.mark.parametrize("action", ["start", "pause", "complete"])
async def test_state_routes_take_nothing_or_an_empty_object(api, action):
    s = await api.new_session()
    path = f"/interview-sessions/{s['id']}/{action}"
    r = await api.request(
        "PUT",
        path,
        content=b'{"status": "completed"}',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 400, "status: unknown field")
    r = await api.request(
        "PUT", path, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    r = await api.request("PUT", path, content=b'""', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert (await api.get(s["id"])).json()["status"] == "active"  # none of that changed it
    r = await api.request("PUT", path, content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 200
    r = await api.request("PUT", path)
    assert r.status_code == 200
