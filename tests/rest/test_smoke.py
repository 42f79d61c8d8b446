from tests.api import Api


async def test_create_and_get(client, new_user):
    api = Api(client, new_user())
    s = await api.new_session()
    r = await api.request("GET", f"/interview-sessions/{s['id']}")
    assert r.status_code == 200
    assert r.json() == s
