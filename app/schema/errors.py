"""GraphQL errors with codes: one mapping for every error of a response.

Domain errors keep their REST message word for word and carry
``extensions.code``/``statusCode``; parse, validation, document-limit and
input-coercion errors are ``BAD_REQUEST``; anything else is masked to
``Internal server error`` and logged with the request id. With introspection
off, "Did you mean …" suggestions are cut from every message (graphql-core
adds them in several rules: fields, arguments, types, enum values, input
fields), so an error never names a part of the schema the client did not.
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError

from app.errors import INTERNAL_ERROR, DomainError

log = logging.getLogger("app.graphql")

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


def coded(message: str, code: str, status: int, source: GraphQLError | None = None) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=source.nodes if source else None,
        source=source.source if source else None,
        positions=source.positions if source else None,
        path=source.path if source else None,
        extensions={"code": code, "statusCode": status},
    )


def format_error(error: GraphQLError, *, suggestions: bool = True) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        message = (
            original.message if isinstance(original.message, str) else "; ".join(original.message)
        )
        return coded(message, original.code, original.status_code, error)
    if isinstance(original, GraphQLError):
        inner = format_error(original, suggestions=suggestions)
        if isinstance(original.original_error, DomainError) or (
            original.extensions and "code" in original.extensions
        ):
            return inner
        # An input value graphql-core refused: its outer message names the
        # variable and the field ("... at 'input.jobContext.interviewType'").
        message = error.message if suggestions else without_suggestions(error.message)
        return coded(message, "BAD_REQUEST", 400, error)
    if original is None:
        message = error.message if suggestions else without_suggestions(error.message)
        if error.extensions and "code" in error.extensions:
            if message != error.message:
                return GraphQLError(
                    message,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions=error.extensions,
                )
            return error
        return coded(message, "BAD_REQUEST", 400, error)
    log.error("unhandled error in GraphQL resolver at %s", error.path, exc_info=original)
    return coded(INTERNAL_ERROR, "INTERNAL_SERVER_ERROR", 500, error)
