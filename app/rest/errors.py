"""One place that turns every failure into ``{statusCode, message, error}``.

Covers the domain errors, Litestar's own exceptions (unknown route, wrong
method, malformed JSON, validation, body too large) and anything unexpected,
which is logged with the request id and answered with a masked 500.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from app.context import ErrorBody, error_body, reason
from app.domain.validation import field_message
from app.errors import INTERNAL_ERROR, DomainError, TooManyRequests

log = logging.getLogger("app.errors")


def error_response(
    status: int, message: str | list[str], headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(
        error_body(status, message), status_code=status, media_type=MediaType.JSON, headers=headers
    )


MISSING_BODY = "Request body is required: a JSON object"


def _validation_messages(exc: ValidationException) -> str | list[str]:
    extra = exc.extra
    if isinstance(extra, list) and extra:
        messages: list[str] = []
        for item in extra:
            if isinstance(item, dict):
                key = str(item.get("key") or "")
                message = str(item.get("message", "invalid value"))
                if key == "data" and message == repr("data"):
                    # Litestar's KeyError text when a route that takes a body got none.
                    messages.append(MISSING_BODY)
                    continue
                messages.append(field_message(message, _body_key(key)))
        if messages:
            return messages[0] if len(messages) == 1 else messages
    return str(exc.detail)


def _body_key(key: str) -> str:
    # Litestar names the whole body "data"; a top-level problem has no field path.
    return "" if key == "data" else key


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[ErrorBody]:
    headers = None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(exc.status_code, exc.message, headers)


def handle_http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[ErrorBody]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return error_response(status, _validation_messages(exc))
    if isinstance(exc, NotFoundException):
        return error_response(status, f"Cannot {request.method} {request.url.path}")
    if isinstance(exc, MethodNotAllowedException):
        return error_response(status, f"Method {request.method} is not allowed here", exc.headers)
    if client_gone(exc):
        log.info("the client went away before its request was read: %s", request.url.path)
        return error_response(400, CLIENT_WENT_AWAY)  # (nobody is there to read it)
    if status >= 500:
        return handle_unexpected(request, exc)
    message = str(exc.detail) if exc.detail else reason(status)
    return error_response(status, message, exc.headers)


# Litestar's word for a request whose client disconnected while its body was
# being read (an InternalServerException): no answer can reach the client, and
# nothing of ours failed.
CLIENT_DISCONNECTED = "client disconnected prematurely"
CLIENT_WENT_AWAY = "The request body did not arrive: the client disconnected"


def client_gone(exc: HTTPException) -> bool:
    return exc.detail == CLIENT_DISCONNECTED


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, INTERNAL_ERROR)


def handle_recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[ErrorBody]:
    # Only untrusted input nests this deep: the JSON decoder gave up on the body.
    return error_response(400, "JSON body is nested too deeply")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RecursionError: handle_recursion,
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
