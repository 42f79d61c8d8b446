"""Query documents, parsed and validated once per text, with the schema's rules.

Both execution strategies (compiled plans and Strawberry's executor) start from
the same :class:`Prepared` document, so a document is refused or accepted the
same way whichever strategy would run it: the length cap, the token limit, the
expanded-size check, then GraphQL's validation with exactly the rules the
schema's extensions apply (``Schema.validation_rules``).
"""

from __future__ import annotations

from collections import OrderedDict

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from strawberry.schema.schema import validate_document

from app.resolvers.schema import Schema
from app.schema.guard import MAX_QUERY_CHARS, TOO_LONG, bad_request, document_problem


class Prepared:
    """A query text after the checks: the document and its operations, or why not."""

    __slots__ = ("document", "errors", "operations")

    def __init__(
        self,
        document: DocumentNode | None,
        errors: list[GraphQLError],
    ) -> None:
        self.document = document
        self.errors = errors
        self.operations: list[OperationDefinitionNode] = (
            [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if document is not None
            else []
        )

    def operation(self, name: str | None) -> OperationDefinitionNode | str:
        """The operation to run, or the reason there is none (GraphQL's wording)."""
        if name is None:
            if len(self.operations) == 1:
                return self.operations[0]
            return "Must provide operation name if query contains multiple operations."
        for op in self.operations:
            if op.name is not None and op.name.value == name:
                return op
        return f"Unknown operation named '{name}'."


class Documents:
    """An LRU of prepared documents, keyed by the query text."""

    def __init__(self, schema: Schema, size: int = 256) -> None:
        self.schema = schema
        self.rules = (*specified_rules, *schema.validation_rules)
        self.size = size
        self._cache: OrderedDict[str, Prepared] = OrderedDict()

    def get(self, query: str) -> Prepared:
        if len(query) > MAX_QUERY_CHARS:
            return Prepared(None, [bad_request(TOO_LONG)])  # never cached
        cache = self._cache
        prepared = cache.get(query)
        if prepared is not None:
            cache.move_to_end(query)
            return prepared
        prepared = self._prepare(query)
        cache[query] = prepared
        if len(cache) > self.size:
            cache.popitem(last=False)
        return prepared

    def _prepare(self, query: str) -> Prepared:
        try:
            document = parse(query, max_tokens=self.schema.max_tokens)
        except GraphQLError as error:
            return Prepared(None, [error])
        problem = document_problem(document)
        if problem is not None:
            return Prepared(None, [bad_request(problem)])
        errors = validate_document(self.schema._schema, document, self.rules)
        return Prepared(document, list(errors))
