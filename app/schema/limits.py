"""The document limits: depth (introspection included), aliases, introspection.

Strawberry's ``QueryDepthLimiter`` never counts fields starting with ``__``, so
``__schema { types { fields { type { ofType { ofType … } } } } }`` could nest
without bound. :func:`total_depth_rule` measures every field, with a budget
large enough for the standard introspection query (what GraphiQL sends).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    MaxIntrospectionDepthRule,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from app.config import Settings


def selection_depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            depth = 1 + selection_depth(sel.selection_set, fragments, seen)
        elif isinstance(sel, InlineFragmentNode):
            depth = selection_depth(sel.selection_set, fragments, seen)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue  # unknown or cyclic: other rules report it
            depth = selection_depth(fragment.selection_set, fragments, seen | {name})
        else:  # pragma: no cover
            continue
        deepest = max(deepest, depth)
    return deepest


def total_depth_rule(max_depth: int) -> type[ValidationRule]:
    class TotalDepthRule(ValidationRule):
        def enter_document(self, node: Any, *_: Any) -> None:
            fragments = {
                d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)
            }
            for d in node.definitions:
                if not isinstance(d, OperationDefinitionNode):
                    continue
                # Counted like QueryDepthLimiter: root fields are depth 0.
                if selection_depth(d.selection_set, fragments) - 1 > max_depth:
                    name = d.name.value if d.name else "anonymous"
                    self.report_error(
                        GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", d)
                    )

    return TotalDepthRule


# The standard introspection query (what GraphiQL sends) nests ``ofType`` to a
# depth of 15; introspection fields get their own, larger depth budget so it
# passes, while graphql-core's MaxIntrospectionDepthRule stops the multiplying
# ``fields { type { fields … } }`` nesting and a hand-made deep query is refused.
INTROSPECTION_MAX_DEPTH = 20


def _is_introspection(ctx: IgnoreContext) -> bool:
    return ctx.field_name.startswith("__")


def validation_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """Every rule a document must pass beyond GraphQL's own, in one list.

    Rule classes are made once per schema: validation caches are keyed by the
    rules, so new classes per request would never hit. They hold no request
    state (an instance is made per validation).
    """
    rules: list[type[ASTValidationRule]] = [
        MaxIntrospectionDepthRule,
        depth_validator(settings.graphql_max_depth, _is_introspection, None),
        total_depth_rule(max(INTROSPECTION_MAX_DEPTH, settings.graphql_max_depth)),
        alias_validator(settings.graphql_max_aliases),
    ]
    if not settings.graphql_introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)
