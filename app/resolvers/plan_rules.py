"""What compiled plans model, and how they refuse the rest (app/resolvers/compiled.py).

The leaf serializers whose output plans write as is, the enums, fields and
resolvers they can call as Strawberry would, the extensions whose effect they
reproduce; anything else is :class:`NotCompilable` (the standard executor
answers). At run time, :class:`Fallback` hands a request to the standard
executor, :class:`MutationFailed` and :class:`Completion` end a mutation's plan.
"""

from __future__ import annotations

import enum
import inspect
import logging
import typing
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    ListValueNode,
    ObjectValueNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_argument_values
from graphql.type import scalars as graphql_scalars
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache
from strawberry.types.field import StrawberryField

from app.schema import types as schema_types
from app.schema.guard import GuardedValidationCache, QueryLength

log = logging.getLogger("app.graphql.plans")

# A value completer: (value, run) -> what the answer holds.
Completer = Callable[[Any, Any], Any]


class Fallback(Exception):
    """At run time: let the standard executor answer this request."""


class NotCompilable(Exception):
    """At compile time: this document is not something plans model."""


class MutationFailed(Exception):
    """A mutation plan's root resolver raised: the answer is that field's
    error (``error``, located as graphql-core locates it), with ``data`` null
    (the mutation fields are non-null) or the field null."""

    def __init__(self, error: GraphQLError, data: dict[str, Any] | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.data = data


class Completion(Exception):
    """A mutation plan's root resolver returned ``value`` (the mutation ran)
    but the plan cannot write the answer exactly: the standard executor
    completes that value (never running the mutation again)."""

    def __init__(self, value: Any) -> None:
        super().__init__("completed by the standard executor")
        self.value = value


# ---------------------------------------------------------------- what plans know

# Serializers whose output msgspec writes identically when the value passes the
# inline test; keyed by the function itself, so a scalar with another
# serializer (whatever its name) is refused.
KNOWN_LEAVES: dict[Callable[..., Any], str] = {
    graphql_scalars.serialize_string: "type(v) is str",
    graphql_scalars.serialize_boolean: "type(v) is bool",
    graphql_scalars.serialize_int: "type(v) is int and -2147483648 <= v <= 2147483647",
    graphql_scalars.serialize_float: "type(v) is float and v - v == 0.0",
    graphql_scalars.serialize_id: "type(v) is str or isinstance(v, UUID)",
    schema_types.serialize_datetime: "type(v) is datetime and v.tzinfo is UTC",
    schema_types.serialize_date: "type(v) is date",
}
# Schema extensions whose effect plans reproduce: the document checks (run by
# the endpoint for both strategies). Any other extension turns plans off.
# Leaves the storage writes as these serializers would (app.queries.projection):
# the record field's Python types each may hold.
WRITTEN_LEAVES: dict[Callable[..., Any], tuple[type, ...]] = {
    graphql_scalars.serialize_string: (str,),
    graphql_scalars.serialize_boolean: (bool,),
    graphql_scalars.serialize_int: (int,),
    graphql_scalars.serialize_float: (float,),
    graphql_scalars.serialize_id: (str, uuid.UUID),
    schema_types.serialize_datetime: (datetime,),
}
KNOWN_EXTENSIONS: tuple[type, ...] = (
    QueryLength,
    ParserCache,
    MaxTokensLimiter,
    AddValidationRules,
    GuardedValidationCache,
)
_RESERVED = ("self", "root", "parent")


def _unwrap(t: Any) -> Any:
    return t.of_type if isinstance(t, GraphQLNonNull) else t


def _leaf_test(t: GraphQLScalarType) -> str:
    test = KNOWN_LEAVES.get(t.serialize)
    if test is None:
        raise NotCompilable(f"scalar {t.name} has a serializer plans do not know")
    return test


def _check_enum(t: GraphQLEnumType) -> type[enum.Enum]:
    """The Python enum, when Strawberry writes each member as its own name."""
    members = getattr(t, "wrapped_cls", None)
    if members is None or len(t.values) != len(members):
        raise NotCompilable(f"enum {t.name}")
    for m in members:
        value = t.values.get(m.name)
        if value is None or value.value != m.value:
            raise NotCompilable(f"enum {t.name}: a value is named differently from its member")
    return typing.cast(type[enum.Enum], members)


def _check_field(field: StrawberryField, name: str) -> None:
    if field.permission_classes:
        raise NotCompilable(f"{name}: permission classes")
    if field.extensions:
        raise NotCompilable(f"{name}: field extensions")


def _resolver_of(field: StrawberryField, name: str, arguments: bool) -> Callable[..., Any]:
    """The field's resolver, when the plan can call it as Strawberry would:
    ``async def resolver(root, info, **arguments)``."""
    resolver = field.base_resolver
    assert resolver is not None
    func = resolver.wrapped_func
    if not inspect.iscoroutinefunction(func):
        raise NotCompilable(f"{name}: the resolver is not async")
    params = list(inspect.signature(func).parameters.values())
    expected = {a.python_name for a in field.arguments} if arguments else set()
    if (
        len(params) < 2
        or params[0].name not in _RESERVED
        or params[1].name != "info"
        or {p.name for p in params[2:]} != expected
        or any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
    ):
        raise NotCompilable(f"{name}: a resolver signature plans do not call")
    return func


def _returns_list(field: StrawberryField) -> bool:
    """Whether a resolver's own annotation promises a list."""
    func = field.base_resolver.wrapped_func if field.base_resolver else None
    if func is None:
        return True
    try:
        hint = typing.get_type_hints(func).get("return")
    except Exception:
        return False
    return typing.get_origin(hint) is list or hint is list


def _arguments(
    definition: GraphQLField,
    node: FieldNode,
    variables: VariableValues,
    convert: Callable[[dict[str, Any]], dict[str, Any]],
    fixed: dict[str, Any] | None,
    literal: dict[str, Any] | None,
) -> dict[str, Any]:
    """A root field's arguments for its resolver: converted once at compile
    time (literal scalars), converted from values coerced at compile time
    (literal input objects), or coerced and converted now (variables)."""
    if fixed is not None:
        return fixed
    if literal is not None:
        return convert(literal)
    return convert(get_argument_values(definition, node, variables))


def _has_input_object(t: Any) -> bool:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return isinstance(t, GraphQLInputObjectType)


def _is_list(t: Any) -> bool:
    return isinstance(_unwrap(t), GraphQLList)


def _uses_variables(value: Any) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_uses_variables(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_uses_variables(f.value) for f in value.fields)
    return False


def _constant(value: Any) -> Completer:
    return lambda _v, _r: value
