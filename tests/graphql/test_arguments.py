"""Compiled plans convert arguments exactly as Strawberry does (app/resolvers/arguments.py).

Every root field that takes arguments, with literals and variables, present,
absent, null, nested input objects, lists of enums and of input objects: the
prepared converter and Strawberry's ``convert_arguments`` give equal values
of the same types, and neither shares a mutable list between two calls.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.types.arguments import convert_arguments

from app.resolvers.arguments import argument_converter
from app.resolvers.schema import build_schema

SID = "7b0e6a1e-8a4f-4f7e-9a37-2f0d8c1e6b11"
RESPONSE = '{id: "r1", content: "C", structure: STAR, estimatedDuration: 30, confidence: 0.5}'
DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    (f'{{ session(id: "{SID}") {{ id }} }}', {}),
    ("{ sessions { id } }", {}),
    ("{ sessions(limit: 5, status: PAUSED) { id } }", {}),
    ("query($s: SessionStatus) { sessions(status: $s) { id } }", {"s": None}),
    ("{ sessionsConnection(first: 10, filter: {status: [PAUSED]}) { edges { cursor } } }", {}),
    (
        '{ sessionsConnection(last: 3, before: "x", filter: {status: [ACTIVE, PAUSED], '
        'createdFrom: "2026-01-01", createdTo: "2026-02-01", search: "eng", '
        "interviewType: TECHNICAL}) { edges { cursor } } }",
        {},
    ),
    ("{ sessionsConnection(filter: null) { edges { cursor } } }", {}),
    ("{ sessionsConnection(filter: {}) { edges { cursor } } }", {}),
    (
        "query($f: SessionFilter, $n: Int) { sessionsConnection(first: $n, filter: $f) "
        "{ edges { cursor } } }",
        {"f": {"status": ["COMPLETED"], "search": "a"}, "n": 2},
    ),
    (
        "query($f: SessionFilter) { sessionsConnection(filter: $f) { edges { cursor } } }",
        {"f": {"status": None}},
    ),
    ('{ analytics(startDate: "2026-01-01", endDate: "2026-03-01") { totalSessions } }', {}),
    (
        'mutation { createSession(input: {jobContext: {title: "A", company: "C", '
        'requirements: ["x", "y"], interviewType: BEHAVIORAL}, settings: '
        '{transcriptionEnabled: false, enabledFeatures: ["a"], confidenceThreshold: 0.5}}) { id } }',
        {},
    ),
    ('mutation { createSession(input: {jobContext: {title: "A", company: "C"}}) { id } }', {}),
    (
        "mutation($i: CreateSessionInput!) { createSession(input: $i) { id } }",
        {"i": {"jobContext": {"title": "T", "company": "C", "description": None}}},
    ),
    (
        f'mutation {{ updateSession(id: "{SID}", input: {{status: PAUSED, '
        'jobContext: {title: "B", company: "D"}}) { id } }',
        {},
    ),
    (f'mutation {{ updateSession(id: "{SID}", input: {{}}) {{ id }} }}', {}),
    (f'mutation {{ startSession(id: "{SID}") {{ id }} }}', {}),
    (f'mutation {{ deleteSession(id: "{SID}") }}', {}),
    (
        f'mutation {{ createInteraction(input: {{sessionId: "{SID}", question: "Q?", '
        'questionClassification: {type: TECHNICAL, category: "c", difficulty: MID, '
        f"requiresSTAR: true}}, generatedResponses: [{RESPONSE}, {RESPONSE}]}}) {{ id }} }}",
        {},
    ),
    (
        "mutation($i: CreateInteractionInput!) { createInteraction(input: $i) { id } }",
        {
            "i": {
                "sessionId": SID,
                "question": "Q",
                "generatedResponses": [
                    {"id": "1", "content": "c", "structure": "DIRECT", "tags": ["t"]}
                ],
            }
        },
    ),
    (
        f'mutation {{ updateInteraction(id: "{SID}", input: {{userFeedback: 4}}) {{ id }} }}',
        {},
    ),
    (
        f'mutation {{ recordMetrics(input: {{sessionId: "{SID}", totalLatencyMs: 5, '
        "transcriptionAccuracy: 0.9, userSatisfaction: 4}) { id } }",
        {},
    ),
    (f'subscription {{ sessionEvents(sessionId: "{SID}", after: "3") {{ seq }} }}', {}),
    ("subscription { myEvents { seq } }", {}),
    (f'mutation {{ pauseSession(id: "{SID}") {{ id }} }}', {}),
    (f'mutation {{ completeSession(id: "{SID}") {{ id }} }}', {}),
]


def _shape(value: Any) -> Any:
    """A value with its types, for comparing two conversions."""
    if isinstance(value, list):
        return ["list", [_shape(v) for v in value]]
    if hasattr(value, "__dataclass_fields__"):
        return [type(value), {k: _shape(getattr(value, k)) for k in value.__dataclass_fields__}]
    return [type(value), value]


def _mutable(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [m for v in value.values() for m in _mutable(v)]
    if isinstance(value, list):
        return [value, *(m for v in value for m in _mutable(v))]
    if hasattr(value, "__dataclass_fields__"):
        return [
            value,
            *(m for k in value.__dataclass_fields__ for m in _mutable(getattr(value, k))),
        ]
    return []


@pytest.mark.parametrize(("document", "variables"), DOCUMENTS)
def test_arguments_convert_as_strawberry_converts_them(document, variables):
    schema = build_schema()
    gql = schema._schema
    config = schema.config
    registry = schema.schema_converter.scalar_registry
    operation = next(
        d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)
    )
    root = gql.get_root_type(operation.operation)
    assert root is not None
    coerced = get_variable_values(gql, operation.variable_definitions or [], variables)
    assert not isinstance(coerced, list), coerced  # the variables are valid
    checked = 0
    for node in operation.selection_set.selections:
        definition = root.fields[node.name.value]
        field = schema.get_field_for_type(node.name.value, root.name)
        assert field is not None
        values = get_argument_values(definition, node, coerced)
        ours = argument_converter(field.arguments, registry, config)
        theirs = convert_arguments(values, field.arguments, scalar_registry=registry, config=config)
        first, second = ours(values), ours(values)
        assert _shape(first) == _shape(theirs)
        # Nothing mutable is shared between two calls (graphql-core hands every
        # request the same default values).
        assert {id(x) for x in _mutable(first)}.isdisjoint(id(x) for x in _mutable(second))
        checked += 1
    assert checked == len(operation.selection_set.selections)


def test_every_root_field_with_arguments_is_covered():
    schema = build_schema()
    gql = schema._schema
    covered = set()
    for document, _ in DOCUMENTS:
        operation = next(d for d in parse(document).definitions)
        covered |= {n.name.value for n in operation.selection_set.selections}
    roots = [gql.query_type, gql.mutation_type, gql.subscription_type]
    with_arguments = {n for t in roots if t for n, f in t.fields.items() if f.args}
    assert with_arguments - covered == set()
