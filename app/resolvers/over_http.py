"""GraphQL over HTTP: turning a request into parameters, and answers into bytes.

Follows the GraphQL-over-HTTP specification (the ``graphql-http`` package's
audit is the reference): POST with ``application/json``, GET with URL
parameters, ``application/graphql-response+json`` answered when asked for.
A request that cannot become an operation raises :class:`RequestError`
(a 4xx whatever the media type, ``{"errors": [...]}`` without ``data``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: b"application/graphql-response+json; charset=utf-8",
    JSON: b"application/json",
}
_ACCEPTABLE = (GRAPHQL_RESPONSE_JSON, JSON)


class RequestError(Exception):
    """The request is not a GraphQL request this server can run."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "BAD_REQUEST",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or []


class Params(msgspec.Struct):
    """The GraphQL request parameters, checked for type."""

    query: str | None = None
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None
    # GraphQL over HTTP's persisted documents: the id instead of the query.
    document_id: str | None = None


def negotiate(accept: bytes | None) -> str:
    """The media type to answer with: the most preferred one we can write, and
    ``application/json`` when the client names none of them (or nothing)."""
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(accept.decode("latin-1").split(",")):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if media in _ACCEPTABLE:
            choice = media
        elif media in ("*/*", "application/*"):
            choice = JSON
        else:
            continue
        rank = (q, -index, choice)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else JSON


def is_json_content_type(value: bytes | None) -> bool:
    """``application/json`` (or ``application/graphql+json``), UTF-8 if a charset is given."""
    if not value:
        return False
    media, _, params = value.decode("latin-1").partition(";")
    if media.strip().lower() not in (JSON, "application/graphql+json"):
        return False
    for param in params.split(";"):
        key, _, charset = param.strip().partition("=")
        if key.strip().lower() == "charset" and charset.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def _typed(data: dict[str, Any]) -> Params:
    query = data.get("query")
    if query is not None and not isinstance(query, str):
        raise RequestError(400, "The 'query' parameter must be a string")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "The 'variables' parameter must be an object")
    name = data.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestError(400, "The 'operationName' parameter must be a string")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "The 'extensions' parameter must be an object")
    document_id = data.get("documentId")
    if document_id is not None and not isinstance(document_id, str):
        raise RequestError(400, "The 'documentId' parameter must be a string")
    return Params(query, variables, name, extensions, document_id)


def _decode(text: bytes | str, what: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        # msgspec 0.23 reports bad UTF-8 inside a string as a DecodeError
        # (older releases raised UnicodeDecodeError): tell the two apart.
        if isinstance(text, bytes) and not _is_utf8(text):
            raise RequestError(400, f"{what} is not valid UTF-8") from None
        raise RequestError(400, f"{what} is not valid JSON") from None
    except UnicodeDecodeError:
        raise RequestError(400, f"{what} is not valid UTF-8") from None
    except RecursionError:
        raise RequestError(400, f"{what} is nested too deeply") from None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def params_from_body(body: bytes) -> Params:
    if not body.strip():
        raise RequestError(400, "Request body is required: a JSON object with a 'query'")
    data = _decode(body, "Request body")
    if isinstance(data, list):
        raise RequestError(400, "Batched requests (a JSON array) are not supported")
    if not isinstance(data, dict):
        raise RequestError(400, "Request body must be a JSON object")
    return _typed(data)


def params_from_query_string(query_string: bytes) -> Params:
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "The query string is not valid UTF-8") from None
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in ("variables", "extensions"):
            data[key] = _decode(value, f"The '{key}' parameter") if value else None
        elif key in ("query", "operationName", "documentId"):
            data[key] = value or None
    return _typed(data)


def has_graphql_params(query_string: bytes) -> bool:
    return any(
        key in ("query", "extensions", "documentId")
        for key, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    )
