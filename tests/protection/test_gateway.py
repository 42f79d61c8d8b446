"""The gateway's own faults still answer in the contract's format."""

from __future__ import annotations

import httpx
import pytest

from app.auth import Authenticator
from app.config import Settings
from tests.api import Api


async def test_a_failing_rate_limit_store_lets_requests_through(
    app, client, new_user, monkeypatch, caplog
):
    async def broken(key):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(app.limiter, "hit", broken)
    api = Api(client, new_user())
    r = await api.request("GET", "/interview-sessions")
    assert r.status_code == 200
    assert "X-Request-ID" in r.headers
    assert "RateLimit-Limit" not in r.headers
    assert any("rate limit storage failed" in rec.message for rec in caplog.records)


async def test_an_unexpected_gateway_error_is_a_contract_500(app, client, new_user, monkeypatch):
    def broken(header):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.authenticator, "credentials", broken)
    r = await Api(client, new_user()).request("GET", "/interview-sessions")
    assert r.status_code == 500
    assert r.json() == {
        "statusCode": 500,
        "message": "Internal server error",
        "error": "Internal Server Error",
    }
    assert "X-Request-ID" in r.headers


async def test_doubled_slashes_do_not_skip_the_401(client):
    url = httpx.URL("http://testserver//interview-sessions")
    assert url.path == "//interview-sessions"
    r = await client.post(url, content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 401  # Litestar would route it, and answer 400 about the body


def test_a_key_that_cannot_verify_tokens_is_refused_at_start():
    settings = Settings(jwt_algorithms=("ES256",), jwt_public_key="not a PEM key")
    with pytest.raises(ValueError, match="ES256"):
        Authenticator(settings)
