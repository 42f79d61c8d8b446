"""GraphQL errors with codes: one mapping for every error of a response.

Domain errors keep their REST message word for word and carry
``extensions.code``/``statusCode``; parse, validation, document-limit and
input-coercion errors are ``BAD_REQUEST``; anything else is masked to
``Internal server error`` and logged with the request id.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError

from app.errors import INTERNAL_ERROR, DomainError

log = logging.getLogger("app.graphql")


def coded(message: str, code: str, status: int, source: GraphQLError | None = None) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=source.nodes if source else None,
        source=source.source if source else None,
        positions=source.positions if source else None,
        path=source.path if source else None,
        extensions={"code": code, "statusCode": status},
    )


def format_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        message = (
            original.message if isinstance(original.message, str) else "; ".join(original.message)
        )
        return coded(message, original.code, original.status_code, error)
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error
        return coded(error.message, "BAD_REQUEST", 400, error)
    if isinstance(original, GraphQLError):
        return format_error(original)
    log.error("unhandled error in GraphQL resolver at %s", error.path, exc_info=original)
    return coded(INTERNAL_ERROR, "INTERNAL_SERVER_ERROR", 500, error)
