"""A field's arguments converted as Strawberry converts them, decided once per field.

Strawberry's ``convert_arguments`` works out, on every call and for every
value, what each argument's type is (optional, list, scalar, enum, input
object, lazy, ...) and how its GraphQL names map to Python names: in a
profile of a filtered connection page that was 18% of the server's time.
The type of an argument never changes, so a compiled plan asks once and keeps
a small converter per argument. Types whose conversion depends on more than
the type (``Maybe``, ``GlobalID``, input types with their own ``from_input``,
recursive inputs) keep Strawberry's own conversion, for the whole argument;
the differential test runs both executors on the same documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import (
    StrawberryArgument,
    _is_leaf_type,
    _is_optional_leaf_type,
    convert_argument,
)
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

Convert = Callable[[Any], Any]
Arguments = Callable[[dict[str, Any]], dict[str, Any]]


class _Generic(Exception):
    """This type's conversion is left to Strawberry."""


def argument_converter(
    arguments: list[StrawberryArgument], registry: Mapping[Any, Any], config: StrawberryConfig
) -> Arguments:
    """``convert_arguments(values, arguments, ...)`` (without ``info``), prepared."""
    plan: list[tuple[str, str, Convert]] = []
    for argument in arguments:
        assert argument.python_name
        name = config.name_converter.from_argument(argument)
        try:
            convert = _converter(argument.type, registry, config, set())
        except _Generic:
            convert = _strawberry(argument.type, registry, config, name)
        plan.append((name, argument.python_name, convert))

    def convert_all(values: dict[str, Any]) -> dict[str, Any]:
        return {python: convert(values[name]) for name, python, convert in plan if name in values}

    return convert_all


def _strawberry(
    type_: Any, registry: Mapping[Any, Any], config: StrawberryConfig, name: str
) -> Convert:
    def convert(value: Any) -> Any:
        return convert_argument(value, type_, registry, config, None, path=(name,))

    return convert


def _same(value: Any) -> Any:
    return value


def _copied(value: Any) -> Any:
    # Copied as Strawberry copies it: graphql-core hands every request that
    # omits the value the same default list.
    return value if value is None or value is UNSET else list(value)


def _converter(
    type_: Any, registry: Mapping[Any, Any], config: StrawberryConfig, building: set[Any]
) -> Convert:
    if isinstance(type_, StrawberryMaybe):
        raise _Generic
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, registry, config, building)  # None and UNSET pass
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if _is_leaf_type(item, registry, skip_classes=(GlobalID,)) or _is_optional_leaf_type(
            item, registry, skip_classes=(GlobalID,)
        ):
            return _copied
        inner = _converter(item, registry, config, building)

        def each(value: Any) -> Any:
            if value is None or value is UNSET:
                return value
            return [inner(x) for x in value]

        return each
    if _is_leaf_type(type_, registry):
        if type_ is GlobalID:
            raise _Generic
        return _same
    if isinstance(type_, LazyType):
        return _converter(type_.resolve_type(), registry, config, building)
    if has_enum_definition(type_):
        return _same  # graphql-core gave the member already
    if has_object_definition(type_):
        return _input(type_, registry, config, building)
    raise _Generic


def _input(
    type_: Any, registry: Mapping[Any, Any], config: StrawberryConfig, building: set[Any]
) -> Convert:
    definition = type_.__strawberry_definition__
    if definition.from_input is not None or type_ in building:
        raise _Generic
    building = {*building, type_}
    defaults: dict[str, Any] = {}
    if definition.is_input:
        # Strawberry's implicit None for input fields without a default.
        defaults = {
            f.python_name: None
            for f in definition.fields
            if f.default_value is MISSING and f.default_factory is MISSING
        }
    fields = [
        (
            config.name_converter.from_field(f),
            f.python_name,
            _converter(f.resolve_type(type_definition=definition), registry, config, building),
        )
        for f in definition.fields
    ]

    def build(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        kwargs = dict(defaults)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name])
        return type_(**kwargs)

    return build
