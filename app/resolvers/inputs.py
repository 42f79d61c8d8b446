"""Strawberry input objects -> plain data -> the domain's validated commands."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from strawberry.types.base import has_object_definition
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from app.domain.validation import parse

T = TypeVar("T")


def to_plain(value: Any) -> Any:
    """External (camelCase) names, enum values, absent fields left out."""
    if has_object_definition(value):
        out: dict[str, Any] = {}
        for f in value.__strawberry_definition__.fields:
            v = getattr(value, f.python_name)
            if isinstance(v, UnsetType):
                continue
            out[f.graphql_name or to_camel_case(f.python_name)] = to_plain(v)
        return out
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def command(kind: type[T], graphql_input: Any) -> T:
    """Validate a GraphQL input exactly as the REST body would be validated."""
    return parse(kind, to_plain(graphql_input))
