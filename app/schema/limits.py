"""A depth rule that also counts introspection fields.

Strawberry's ``QueryDepthLimiter`` never counts fields starting with ``__``, so
``__schema { types { fields { type { ofType { ofType … } } } } }`` could nest
without bound. This rule measures every field; the schema gives it a budget
large enough for the standard introspection query (what GraphiQL sends).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)


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
