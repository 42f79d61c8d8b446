"""Bearer JWT -> Principal. Nothing else in the project knows PyJWT."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import jwt

from app.config import Settings
from app.domain.records import Principal
from app.domain.validation import storable_text
from app.errors import Unauthorized

MAX_SUB_LENGTH = 255
LEEWAY_SECONDS = 30
_CACHE_SIZE = 4096


class Authenticator:
    """Verifies bearer tokens against the configured key and algorithms only.

    Verified tokens are remembered (bounded LRU) until their ``exp`` so a client
    sending the same token on every request is not re-verified each time; the
    expiry is still checked on every use.
    """

    def __init__(self, settings: Settings) -> None:
        self.algorithms = list(settings.jwt_algorithms)
        key = settings.jwt_secret if settings.uses_hmac else settings.jwt_public_key
        if not key:
            raise ValueError("no JWT verification key configured")
        self.key: str = key
        for algorithm in self.algorithms:
            try:
                jwt.get_algorithm_by_name(algorithm).prepare_key(key)
            except Exception as exc:
                raise ValueError(f"the JWT key does not suit {algorithm}: {exc}") from None
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def principal_from_header(self, authorization: str | None) -> Principal:
        return self.credentials(authorization)[0]

    def credentials(self, authorization: str | None) -> tuple[Principal, float]:
        """The caller of a ``Bearer`` header and when their token expires (epoch
        seconds, leeway included): a socket is closed at that moment."""
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        return self.verify_with_expiry(token.strip())

    def verify(self, token: str) -> Principal:
        return self.verify_with_expiry(token)[0]

    def verify_with_expiry(self, token: str) -> tuple[Principal, float]:
        cached = self._cache.get(token)
        if cached is not None:
            principal, exp = cached
            if time.time() <= exp + LEEWAY_SECONDS:
                self._cache.move_to_end(token)
                return principal, exp + LEEWAY_SECONDS
            del self._cache[token]
            raise Unauthorized()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self.audience is not None,
                    "verify_iss": self.issuer is not None,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            # PyJWTError covers bad tokens; the others, tokens the key library chokes on.
            raise Unauthorized() from None
        exp_claim = claims["exp"]
        if isinstance(exp_claim, bool) or not isinstance(exp_claim, int | float):
            raise Unauthorized()  # RFC 7519: a NumericDate is a JSON number, not a string
        sub = claims["sub"]
        if (
            not isinstance(sub, str)
            or not sub
            or len(sub) > MAX_SUB_LENGTH
            or not storable_text(sub)
        ):
            raise Unauthorized()
        principal = Principal(user_id=sub)
        exp = float(claims["exp"])
        self._cache[token] = (principal, exp)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal, exp + LEEWAY_SECONDS


def issue_token(
    settings: Settings,
    sub: str,
    ttl_seconds: int = 3600,
    private_key: str | None = None,
) -> str:
    """A token the running server accepts (the `interview-api token` command)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_seconds}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    algorithm = settings.jwt_algorithms[0]
    key: str
    if settings.uses_hmac:
        if not settings.jwt_secret:
            raise ValueError("JWT_SECRET is not set")
        key = settings.jwt_secret
    else:
        if not private_key:
            raise ValueError(f"{algorithm} tokens need a private key (--private-key FILE)")
        key = private_key
    return jwt.encode(claims, key, algorithm=algorithm)
