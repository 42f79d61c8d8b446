"""Checks that run before a GraphQL document is parsed or validated.

Validation rules walk fragment spreads without memory (Strawberry's depth and
alias limiters do too), so a short document whose fragments each spread the
next one twice costs 2^n: 25 levels are a few hundred tokens and minutes of
CPU. The expanded size is measured here in linear time, with each fragment's
size computed once, and such documents are refused before any rule runs.
Query text is capped as well: parsed documents are cached by their text, and
comments and whitespace cost no tokens.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension, ValidationCache

MAX_QUERY_CHARS = 32_000
MAX_EXPANDED_FIELDS = 5_000

TOO_LONG = f"Query document is too long: at most {MAX_QUERY_CHARS} characters"
TOO_LARGE = (
    f"Query document is too large once fragments are expanded: at most {MAX_EXPANDED_FIELDS} fields"
)
CYCLE = "Query document has a fragment cycle"


def bad_request(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_REQUEST", "statusCode": 400})


def document_problem(document: DocumentNode) -> str | None:
    """Why the document must be refused before validation, or None."""
    expansion = _Expansion(document)
    try:
        total = 0
        for d in document.definitions:
            if isinstance(d, OperationDefinitionNode):
                total += expansion.size(d.selection_set)
            elif isinstance(d, FragmentDefinitionNode):
                expansion.fragment(d.name.value)
            if total > MAX_EXPANDED_FIELDS:
                return TOO_LARGE
    except _TooLarge:
        return TOO_LARGE
    except _Cycle:
        return CYCLE
    except RecursionError:
        return TOO_LARGE
    return None


class _Expansion:
    """Fields a selection expands to, fragments counted once each. (Methods,
    not nested functions that call themselves: those would be a reference
    cycle per document, left to the garbage collector.)"""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.sizes: dict[str, int] = {}
        self.visiting: set[str] = set()

    def size(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += 1 + self.size(sel.selection_set)
            elif isinstance(sel, InlineFragmentNode):
                total += self.size(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode):
                total += self.fragment(sel.name.value)
            if total > MAX_EXPANDED_FIELDS:
                raise _TooLarge
        return total

    def fragment(self, name: str) -> int:
        if name in self.sizes:
            return self.sizes[name]
        definition = self.fragments.get(name)
        if definition is None:
            return 0  # unknown fragments are reported by validation
        if name in self.visiting:
            raise _Cycle
        self.visiting.add(name)
        self.sizes[name] = self.size(definition.selection_set)
        self.visiting.discard(name)
        return self.sizes[name]


class _TooLarge(Exception):
    pass


class _Cycle(Exception):
    pass


class QueryLength(SchemaExtension):
    """Refuse over-long query text before it is parsed (and cached)."""

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and len(query) > MAX_QUERY_CHARS:
            raise bad_request(TOO_LONG)
        yield


class GuardedValidationCache(ValidationCache):
    """The validation cache, behind the expanded-size check."""

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        problem = None if document is None else document_problem(document)
        if problem is not None:
            self.execution_context.pre_execution_errors = [bad_request(problem)]
            yield
            return
        yield from super().on_validate()
