"""Every failure answers ``{statusCode, message, error}``: bodies, ids, routing, crashes."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from tests.api import INVALID_UUID, Api, assert_error, error
from tests.rest.routes import session_routes

BODY_ROUTES = [
    ("POST", "/interview-sessions"),
    ("PUT", "/interview-sessions/{sid}"),
    ("POST", "/interview-sessions/interactions"),
    ("PUT", "/interview-sessions/interactions/{iid}"),
    ("POST", "/interview-sessions/metrics"),
]


def assert_error_body(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"statusCode", "message", "error"}, body
    assert body["statusCode"] == status
    assert body["error"] == error(status, "")["error"]
    assert isinstance(body["message"], str) and body["message"]
    message: str = body["message"]
    return message


async def test_malformed_empty_and_non_object_bodies_are_400(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(s["id"])
    before = (await api.details(s["id"])).json()
    answers: dict[str, Any] = {}
    for method, template in BODY_ROUTES:
        path = template.format(sid=s["id"], iid=i["id"])
        for name, raw in {
            "malformed": b'{"jobContext": ',
            "trailing garbage": b"{} x",
            "single quotes": b"{'question': 'q'}",
            "empty": b"",
            "array": b"[]",
            "string": b'"hello"',
            "number": b"42",
            "null": b"null",
        }.items():
            r = await api.request(
                method, path, content=raw, headers={"Content-Type": "application/json"}
            )
            try:
                message = assert_error_body(r, 400)
                if name == "empty":
                    assert "body" in message.lower(), message
                if name in {"array", "string", "number", "null"}:
                    assert "object" in message, message
            except AssertionError as exc:
                answers[f"{method} {template} {name}"] = f"{r.status_code} {r.text} {exc}"
    assert answers == {}
    # Nothing was created or changed.
    assert (await api.details(s["id"])).json() == before
    assert len((await api.list_sessions()).json()) == 1


async def test_ids_that_are_not_uuids_are_400_on_every_route(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    i = await api.new_interaction(s["id"])
    answers = {}
    for bad in ("not-a-uuid", "123", s["id"][:-1] + "g", f"{s['id']}x"):
        for route in session_routes(bad, bad):
            r = await api.request(route.method, route.path, json=route.body)
            answers[f"{route.name} {bad}"] = (r.status_code, r.json())
    expected = (400, error(400, INVALID_UUID))
    assert {k: a for k, a in answers.items() if a != expected} == {}
    # Only the interaction id is bad: the session id in the same request is fine.
    r = await api.update_interaction("nope", {"userFeedback": 3})
    assert_error(r, 400, INVALID_UUID)
    assert (await api.interactions(s["id"])).json() == [i]


async def test_unknown_routes_are_404_in_the_error_format(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    for path in (
        "/nope",
        "/interview-session",
        f"/interview-sessions/{s['id']}/unknown",
        f"/interview-sessions/{s['id']}/details/more",
        "/interview-sessions/interactions/a/b",
    ):
        r = await api.request("GET", path)
        message = assert_error_body(r, 404)
        assert path in message
    # Routing answers are the same without a token.
    assert_error_body(await client.get("/nope"), 404)


async def test_wrong_methods_are_405_in_the_error_format(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    for method, path in (
        ("DELETE", "/interview-sessions"),
        ("PATCH", f"/interview-sessions/{s['id']}"),
        ("POST", f"/interview-sessions/{s['id']}"),
        ("GET", f"/interview-sessions/{s['id']}/start"),
        ("DELETE", f"/interview-sessions/{s['id']}/complete"),
        ("PUT", "/interview-sessions/active"),
        ("GET", "/interview-sessions/metrics"),
        ("POST", "/interview-sessions/analytics"),
    ):
        r = await api.request(method, path)
        message = assert_error_body(r, 405)
        assert method in message
    assert (await api.get(s["id"])).json() == s


async def test_an_unexpected_crash_is_a_masked_500(client, new_user, service, monkeypatch, caplog):
    api = Api(client, new_user())
    s = await api.new_session()

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SELECT password FROM users -- KeyError in app.db.repositories")

    monkeypatch.setattr(service.sessions, "get", crash)
    with caplog.at_level(logging.ERROR):
        r = await api.get(s["id"])
    assert_error(r, 500, "Internal server error")
    for leak in ("SELECT", "password", "RuntimeError", "KeyError", "Traceback", "app."):
        assert leak not in r.text
    assert "x-request-id" in r.headers
    # The crash is logged, with the details the client does not see.
    assert any("RuntimeError" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)
