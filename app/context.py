"""Request context, framework-free: the request id, the caller, the error body.

The pipeline (:mod:`app.pipeline`) fills these in once per request; both
faces and the log formatter read them from here. Nothing in this module knows
Litestar or Strawberry: an ASGI scope is a plain dict.
"""

from __future__ import annotations

import contextvars
from http import HTTPStatus
from typing import Any

import msgspec

from app.domain.records import Principal

Scope = dict[str, Any]

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


# A request's own database transaction, when it has one (a write with an
# Idempotency-Key: app/idempotency.py opens it and puts it here); each face
# runs the request's units of work in it (``Service.within``).
REQUEST_DATABASE = "database"


def request_database(scope: Scope) -> Any:
    """The request's own transaction (a ``Database``), or None."""
    return (scope.get("state") or {}).get(REQUEST_DATABASE)


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
    message: str  # one string, always (several problems are joined with "; ")
    error: str


def reason(status: int) -> str:
    """The HTTP reason phrase (``Not Found``) of a status code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(status: int, message: str | list[str]) -> ErrorBody:
    if not isinstance(message, str):
        message = "; ".join(message)
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
