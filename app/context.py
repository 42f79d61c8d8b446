"""Request context, framework-free: the request id, the caller, the error body.

The pipeline (:mod:`app.pipeline`) fills these in once per request; both
faces and the log formatter read them from here. Nothing in this module knows
Litestar or Strawberry: an ASGI scope is a plain dict.
"""

from __future__ import annotations

import contextvars
from datetime import datetime
from http import HTTPStatus
from typing import Any, Protocol

import msgspec

from app.domain.records import KeyedAnswer, Principal

Scope = dict[str, Any]

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class Outage:
    """Set when a request finds the database unavailable: its later units of
    work (a GraphQL plan's standard-executor fallback, the next resolver) fail
    at once instead of each waiting for its own timeout."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False


class PendingChange(Protocol):
    """A keyed request's write transaction, run but not committed yet (app/db/engine.py)."""

    async def settle(self, answer: KeyedAnswer | None) -> None:
        """Insert the key (with ``answer`` when given) as the transaction's last
        statement and commit; the claim is then ``held``, or ``taken`` when
        another request holds the key (the change is rolled back)."""

    async def abandon(self) -> None:
        """Roll back: the request never produced an answer."""


class Claim:
    """A keyed write request's claim on its ``Idempotency-Key`` (app/idempotency.py).

    The request's first write transaction runs its change and stays open
    (``pending``): when that write is the request's last use of the database
    (the common case) the key is inserted with the answer itself in that
    transaction, one statement before COMMIT; any later unit of work of the
    request first commits it with the key alone (the answer is then stored
    after). Either way the key and the change commit together or not at all."""

    __slots__ = ("answer", "expired_before", "held", "optimistic", "pending", "taken")

    def __init__(
        self, answer: KeyedAnswer, expired_before: datetime, *, optimistic: bool = True
    ) -> None:
        self.answer = answer
        self.expired_before = expired_before
        self.held = False  # committed with a change
        self.taken = False  # another request holds the key
        self.pending: PendingChange | None = None  # a change run, not committed yet
        # Whether a guarded write may leave its one statement (and the key with
        # the answer in it) until the answer is made; see Rerun.
        self.optimistic = optimistic


class Rerun(Exception):
    """A keyed request's guarded change, held back until its answer was made,
    found the rows it read changed when it was written: nothing was written
    and that answer is void. The request is run again with a claim that is
    not ``optimistic`` (its writes are transactions), and that answer counts."""


claim_var: contextvars.ContextVar[Claim | None] = contextvars.ContextVar("claim", default=None)

# One per HTTP request (set by the pipeline); None outside a request.
outage_var: contextvars.ContextVar[Outage | None] = contextvars.ContextVar("outage", default=None)


def principal_of(scope: Scope) -> Principal | None:
    """The verified caller of this request, or None (anonymous or a bad token)."""
    state = scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else None


def request_id_of(scope: Scope) -> str:
    return str((scope.get("state") or {}).get("request_id", "-"))


class ErrorBody(msgspec.Struct):
    """The error format of every non-2xx answer: ``{statusCode, message, error}``."""

    statusCode: int
    message: str | list[str]
    error: str


def reason(status: int) -> str:
    """The HTTP reason phrase (``Not Found``) of a status code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(status: int, message: str | list[str]) -> ErrorBody:
    return ErrorBody(statusCode=status, message=message, error=reason(status))


def error_bytes(status: int, message: str | list[str]) -> bytes:
    return msgspec.json.encode(error_body(status, message))


class BodyTooLarge(Exception):
    """The request body grew past the cap while it was read."""


class ClientGone(Exception):
    """The client disconnected before its request body had arrived."""


async def read_body(receive: Any, limit: int) -> bytes:
    """The whole request body of an ASGI HTTP request, at most ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app a body read already, then the real one
    (which tells of a disconnect)."""
    sent = False

    async def replaying() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replaying
