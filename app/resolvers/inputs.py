"""Strawberry input objects -> plain data -> the domain's validated commands."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from strawberry.types.base import has_object_definition
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from app.domain.validation import parse

T = TypeVar("T")


_NAMES: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _names(kind: type) -> tuple[tuple[str, str], ...] | None:
    """(Python name, external name) of each field of an input class; None for
    anything else. Worked out once per class."""
    names = _NAMES.get(kind, ())
    if names == ():
        definition = getattr(kind, "__strawberry_definition__", None)
        names = (
            tuple(
                (f.python_name, f.graphql_name or to_camel_case(f.python_name))
                for f in definition.fields
            )
            if definition is not None and has_object_definition(kind)
            else None
        )
        _NAMES[kind] = names
    return names


def to_plain(value: Any) -> Any:
    """External (camelCase) names, enum values, absent fields left out."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is list:
        return [to_plain(v) for v in value]
    names = _names(kind)
    if names is not None:
        out: dict[str, Any] = {}
        for python_name, name in names:
            v = getattr(value, python_name)
            if not isinstance(v, UnsetType):
                out[name] = to_plain(v)
        return out
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def command(kind: type[T], graphql_input: Any) -> T:
    """Validate a GraphQL input exactly as the REST body would be validated."""
    return parse(kind, to_plain(graphql_input))
