"""The domain errors: one table, mapped once per face (REST body, GraphQL extensions).

Framework-free on purpose: the same exception travels to a Litestar handler or a
Strawberry resolver unchanged.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A request broke a rule. ``message`` is shown to the client word for word."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    reason: ClassVar[str] = "Bad Request"

    def __init__(self, message: str | list[str]) -> None:
        super().__init__(message if isinstance(message, str) else "; ".join(message))
        self.message: str | list[str] = message


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    status_code = 401
    code = "UNAUTHENTICATED"
    reason = "Unauthorized"

    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message)


class Forbidden(DomainError):
    status_code = 403
    code = "FORBIDDEN"
    reason = "Forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "NOT_FOUND"
    reason = "Not Found"


class Conflict(DomainError):
    status_code = 409
    code = "CONFLICT"
    reason = "Conflict"


class TooManyRequests(DomainError):
    status_code = 429
    code = "RATE_LIMITED"
    reason = "Too Many Requests"

    def __init__(self, message: str = "Too many requests", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """The database (or another dependency) cannot be reached right now."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    reason = "Service Unavailable"

    def __init__(self, message: str = "Service temporarily unavailable") -> None:
        super().__init__(message)


# The contract's messages, written once.
SESSION_NOT_FOUND = "Interview session not found"
INTERACTION_NOT_FOUND = "Interaction not found"
ACCESS_DENIED = "Access denied to this session"
INVALID_UUID = "Validation failed (uuid is expected)"
COMPLETED_NO_INTERACTIONS = "Cannot add interactions to a completed session"
MODIFIED_CONCURRENTLY = "Session was modified concurrently"
INTERNAL_ERROR = "Internal server error"


def invalid_transition(current: str, target: str) -> str:
    return f"Invalid status transition from '{current}' to '{target}'"


def too_many_active(limit: int) -> str:
    return (
        f"Too many active sessions: at most {limit} may be active at once; "
        "pause or complete one first"
    )


KEY_IN_PROGRESS = "A request with this Idempotency-Key is already in progress"
