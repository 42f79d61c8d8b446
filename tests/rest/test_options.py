"""OPTIONS and 405 answers name every method a path supports."""

from tests.api import Api


def methods(header: str) -> set[str]:
    return {m.strip() for m in header.split(",")}


async def test_options_lists_every_method_of_a_path(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.request("OPTIONS", f"/interview-sessions/{s['id']}")
    assert r.status_code == 204
    assert methods(r.headers["Allow"]) == {"DELETE", "GET", "OPTIONS", "PUT"}
    r = await api.request("OPTIONS", "/interview-sessions")
    assert methods(r.headers["Allow"]) == {"GET", "OPTIONS", "POST"}


async def test_405_says_what_is_allowed(client, new_user):
    api = Api(client, new_user())
    r = await api.request("PATCH", "/interview-sessions")
    assert r.status_code == 405
    assert r.json() == {
        "statusCode": 405,
        "message": "Method PATCH is not allowed here",
        "error": "Method Not Allowed",
    }
    assert methods(r.headers["Allow"]) == {"GET", "OPTIONS", "POST"}
