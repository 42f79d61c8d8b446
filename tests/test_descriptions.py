"""Every part of the GraphQL schema is described (units and ranges stated)."""

from __future__ import annotations

from pathlib import Path

import graphql

SDL = Path(__file__).resolve().parent.parent / "schema.graphql"
BUILTIN = {"String", "Int", "Float", "Boolean", "ID"}


def undescribed() -> list[str]:
    schema = graphql.build_schema(SDL.read_text())
    missing = []
    for name, t in schema.type_map.items():
        if name.startswith("__") or name in BUILTIN:
            continue
        if not t.description:
            missing.append(name)
        if isinstance(t, graphql.GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in t.values.items() if not value.description]
        if isinstance(t, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType):
            for fname, field in t.fields.items():
                if not field.description:
                    missing.append(f"{name}.{fname}")
                missing += [
                    f"{name}.{fname}({a})" for a, arg in field.args.items() if not arg.description
                ]
        if isinstance(t, graphql.GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in t.fields.items() if not field.description]
    return missing


def test_every_type_field_argument_enum_value_and_input_field_has_a_description():
    assert undescribed() == []


def test_units_and_ranges_are_stated():
    text = SDL.read_text()
    for phrase in ("milliseconds", "0..1", "1..5", "minutes", "seconds", "UTC"):
        assert phrase in text, phrase
