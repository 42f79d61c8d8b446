"""Bearer JWT authentication: every refused token is 401 in the error format, before anything else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api import UNAUTHORIZED, Api, random_id
from tests.conftest import TEST_SECRET, bearer, make_token
from tests.rest.routes import all_routes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims(sub: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + 3600, **extra}


def unsigned_token(payload: dict[str, Any]) -> str:
    """``alg: none``: a header, a payload and an empty signature."""
    return f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(payload)}."


def hs256_token_with_key(payload: dict[str, Any], key: bytes) -> str:
    """HS256 signed by hand (PyJWT refuses PEM keys as HMAC secrets)."""
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT'})}.{b64json(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


async def test_every_route_needs_a_token(client, new_user):
    owner = Api(client, new_user())
    s = await owner.new_session()
    i = await owner.new_interaction(s["id"])
    answers = {}
    for route in all_routes(s["id"], i["id"]):
        r = await client.request(route.method, route.path, json=route.body)
        answers[route.name] = (r.status_code, r.json())
    assert {name: a for name, a in answers.items() if a != (401, UNAUTHORIZED)} == {}
    assert len(answers) == 16
    # Nothing was changed by the anonymous requests.
    details = (await owner.details(s["id"])).json()
    assert details["status"] == "active"
    assert [x["id"] for x in details["interactions"]] == [i["id"]]
    assert details["interactions"][0]["selectedResponse"] is None
    assert details["metrics"] == []
    assert [x["id"] for x in (await owner.list_sessions()).json()] == [s["id"]]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_refused_tokens_are_401_and_create_nothing(client, new_user):
    user = new_user()
    now = int(time.time())
    refused = {
        "no header": {},
        "empty header": {"Authorization": ""},
        "scheme only": {"Authorization": "Bearer"},
        "scheme and blank": {"Authorization": "Bearer   "},
        "wrong scheme": {"Authorization": f"Basic {make_token(user)}"},
        "token without scheme": {"Authorization": make_token(user)},
        "not a jwt": {"Authorization": "Bearer not-a-jwt"},
        "garbage segments": {"Authorization": "Bearer a.b.c"},
        "forged (wrong secret)": bearer(make_token(user, secret="x" * 48)),
        "expired": bearer(make_token(user, ttl=-120)),
        "alg none": bearer(unsigned_token(claims(user))),
        "alg none, signature of the real token": bearer(
            unsigned_token(claims(user)) + make_token(user).rsplit(".", 1)[1]
        ),
        "missing sub": bearer(make_token(None)),
        "missing exp": bearer(jwt.encode({"sub": user, "iat": now}, TEST_SECRET, "HS256")),
        "empty sub": bearer(make_token("")),
        "sub longer than 255": bearer(make_token("u" * 256)),
        "non-string sub": bearer(
            jwt.encode({"sub": 42, "exp": now + 3600}, TEST_SECRET, algorithm="HS256")
        ),
        "algorithm not configured (HS512)": bearer(make_token(user, algorithm="HS512")),
        "tampered payload": bearer(
            ".".join(
                (
                    make_token(user).split(".")[0],
                    b64json(claims("someone-else")),
                    make_token(user).split(".")[2],
                )
            )
        ),
    }
    answers = {}
    for name, headers in refused.items():
        r = await client.post(
            "/interview-sessions",
            headers=headers,
            json={"jobContext": {"title": "T", "company": "C"}},
        )
        answers[name] = (r.status_code, r.json())
    assert {name: a for name, a in answers.items() if a != (401, UNAUTHORIZED)} == {}

    assert (await Api(client, user).list_sessions()).json() == []
    assert (await Api(client, "someone-else").list_sessions()).json() == []


async def test_a_valid_token_identifies_the_user_by_sub(client):
    sub = "u" * 255  # any string up to 255 characters
    api = Api(client, sub)
    s = await api.new_session()
    assert s["userId"] == sub
    r = await client.get(
        "/interview-sessions", headers={"Authorization": f"bearer {make_token(sub)}"}
    )
    assert (r.status_code, [x["id"] for x in r.json()]) == (200, [s["id"]])


async def test_expiry_has_thirty_seconds_of_leeway(client, new_user):
    user = new_user()
    r = await client.get("/interview-sessions", headers=bearer(make_token(user, ttl=-5)))
    assert (r.status_code, r.json()) == (200, [])
    r = await client.get("/interview-sessions", headers=bearer(make_token(user, ttl=-90)))
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


async def test_authentication_comes_before_any_validation(client):
    """An anonymous client learns nothing about bodies, ids or parameters: always 401."""
    requests = [
        ("POST", "/interview-sessions", {"content": b"{not json"}),
        ("POST", "/interview-sessions", {"json": {"jobContext": {"title": ""}}}),
        ("POST", "/interview-sessions", {"json": [1, 2]}),
        ("GET", "/interview-sessions?limit=abc", {}),
        ("GET", "/interview-sessions?limit=0", {}),
        ("GET", "/interview-sessions/analytics?startDate=yesterday", {}),
        ("GET", "/interview-sessions/not-a-uuid", {}),
        ("PUT", f"/interview-sessions/{random_id()}", {"json": {"bogus": 1}}),
        ("POST", "/interview-sessions/interactions", {"json": {"sessionId": "nope"}}),
        ("POST", "/interview-sessions/metrics", {"content": b""}),
    ]
    answers = {}
    for method, path, kw in requests:
        r = await client.request(method, path, headers={"Content-Type": "application/json"}, **kw)
        answers[f"{method} {path} {kw}"] = (r.status_code, r.json())
    assert {k: a for k, a in answers.items() if a != (401, UNAUTHORIZED)} == {}


class TestAudienceAndIssuer:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"jwt_audience": "interview-api", "jwt_issuer": "https://auth.example"}

    async def test_aud_and_iss_are_checked_when_configured(self, client, new_user):
        user = new_user()
        good = {"aud": "interview-api", "iss": "https://auth.example"}
        r = await client.get("/interview-sessions", headers=bearer(make_token(user, **good)))
        assert (r.status_code, r.json()) == (200, [])
        for bad in (
            {},
            {"aud": "interview-api"},
            {"iss": "https://auth.example"},
            {**good, "aud": "another-api"},
            {**good, "iss": "https://evil.example"},
        ):
            r = await client.get("/interview-sessions", headers=bearer(make_token(user, **bad)))
            assert (r.status_code, r.json()) == (401, UNAUTHORIZED), bad


_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PRIVATE_PEM = _RSA_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
_PUBLIC_PEM = (
    _RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


class TestPublicKeyTokens:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"jwt_algorithms": ("RS256",), "jwt_public_key": _PUBLIC_PEM, "jwt_secret": None}

    async def test_rs256_is_accepted_and_algorithm_confusion_is_refused(self, client, new_user):
        user = new_user()
        good = jwt.encode(claims(user), _PRIVATE_PEM, algorithm="RS256")
        r = await client.get("/interview-sessions", headers=bearer(good))
        assert (r.status_code, r.json()) == (200, [])

        # The public key used as an HMAC secret: the classic algorithm-confusion forgery.
        forged = hs256_token_with_key(claims(user), _PUBLIC_PEM.encode())
        # A token signed with the test secret is of no use either.
        for token in (forged, make_token(user), unsigned_token(claims(user))):
            r = await client.get("/interview-sessions", headers=bearer(token))
            assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
