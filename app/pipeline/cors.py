"""CORS for every answer: preflights, and the headers a browser needs to read one.

Origins come from ``CORS_ORIGINS`` (exact origins, or ``*``); unset, production
has no CORS at all and development (``make run``) allows ``http://localhost``
and ``http://127.0.0.1`` on any port. A preflight never needs a token and
never spends rate-limit budget; an origin that is not allowed gets no
``Access-Control-Allow-Origin`` on any answer. Credentials are never allowed:
auth is a bearer header, not a cookie.

Why here and not Litestar's ``cors_config``: Litestar applies it inside the
app, so answers the pipeline gives itself (401, 413, 429, a preflight that
must not reach the rate limiter) would not carry it; and its own preflight
refusal is a plain-text 400, not the contract's error body.
"""

from __future__ import annotations

import re

ALLOW_METHODS = b"GET, HEAD, POST, PUT, DELETE, OPTIONS"
# Headers a page may read from an answer (besides the CORS-safelisted ones).
EXPOSE_HEADERS = (
    b"X-Request-ID, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, "
    b"Link, Idempotent-Replayed, Allow"
)
MAX_AGE = b"3600"
ALWAYS_ALLOWED_HEADERS = ("authorization", "content-type")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
DEV_LOCAL = re.compile(r"^http://(localhost|127\.0\.0\.1)(:\d{1,5})?$")


class Cors:
    """Which origins may read answers, and the headers that say so."""

    def __init__(self, origins: tuple[str, ...] | None, *, development: bool) -> None:
        self.any = origins == ("*",)
        self.exact = frozenset(origins or ())
        # Unset: none in production; local pages of any port in development.
        self.local = origins is None and development
        self.enabled = self.any or bool(self.exact) or self.local

    def allowed(self, origin: str) -> bool:
        if not self.enabled:
            return False
        if self.any or origin in self.exact:
            return True
        return self.local and DEV_LOCAL.match(origin) is not None

    def answer_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Headers for an actual (not preflight) answer to a request from ``origin``."""
        if not self.enabled:
            return []
        vary = [] if self.any else [(b"vary", b"Origin")]
        if origin is None or not self.allowed(origin):
            return vary
        allow = b"*" if self.any else origin.encode("latin-1")
        return [
            (b"access-control-allow-origin", allow),
            (b"access-control-expose-headers", EXPOSE_HEADERS),
            *vary,
        ]

    def preflight_headers(self, origin: str, requested: str | None) -> list[tuple[bytes, bytes]]:
        """The answer to a preflight from ``origin``; only ``Vary`` when it is not allowed."""
        if not self.allowed(origin):
            return [(b"vary", b"Origin")] if self.enabled else []
        names = [h.strip().lower() for h in (requested or "").split(",") if h.strip()]
        accepted = list(dict.fromkeys([*ALWAYS_ALLOWED_HEADERS, *filter(_TOKEN.match, names)]))
        headers = [
            (b"access-control-allow-origin", b"*" if self.any else origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ", ".join(accepted).encode()),
            (b"access-control-max-age", MAX_AGE),
        ]
        if not self.any:
            headers.append((b"vary", b"Origin, Access-Control-Request-Headers"))
        return headers
