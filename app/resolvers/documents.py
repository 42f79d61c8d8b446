"""Query documents, parsed and validated once per text, with the schema's rules.

Every transport (HTTP, the WebSocket) admits an operation here
(:meth:`Documents.admit`): the persisted document resolved (APQ, document
ids, trusted documents: :mod:`app.resolvers.persisted`), then the checks.
Both execution strategies (compiled plans and Strawberry's executor) start
from the same :class:`Prepared` document, so a document is refused or
accepted the same way whichever transport carried it and whichever strategy
would run it: the length cap, the token limit, the expanded-size check, then
GraphQL's validation with exactly the rules the schema's extensions apply
(``Schema.validation_rules``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.schema.schema import validate_document

from app.internals import graphql_schema
from app.resolvers.persisted import (
    NOT_ALLOWED,
    MemoryStore,
    PersistedError,
    PersistedQueries,
)
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


class Admitted:
    """An operation every check has passed: its text, document and variables (coerced)."""

    __slots__ = ("document", "operation", "query", "variables")

    def __init__(
        self,
        query: str,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
    ) -> None:
        self.query = query
        self.document = document
        self.operation = operation
        self.variables = variables


class Refused(Exception):
    """Why an operation does not run: ``request`` (the request is malformed:
    a 4xx), ``unknown`` (an APQ hash the server does not hold: the client
    sends the query next) or ``document`` (parse, validation, variables, an
    untrusted document)."""

    def __init__(
        self, errors: list[GraphQLError], kind: Literal["request", "unknown", "document"]
    ) -> None:
        super().__init__(errors[0].message)
        self.errors = errors
        self.kind = kind


class Documents:
    """An LRU of prepared documents, keyed by the query text, and the one
    admission of an operation for every transport."""

    def __init__(
        self, schema: Schema, persisted: PersistedQueries | None = None, size: int = 256
    ) -> None:
        self.schema = schema
        self.persisted = persisted or PersistedQueries(MemoryStore(1000), max_chars=MAX_QUERY_CHARS)
        self.rules = (*specified_rules, *schema.validation_rules)
        self.size = size
        self._cache: OrderedDict[str, Prepared] = OrderedDict()

    async def admit(
        self,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        extensions: dict[str, Any] | None,
        document_id: str | None = None,
    ) -> Admitted:
        """The operation to run, or :class:`Refused`: the persisted document
        (and the trusted list), the document checks, the operation, the
        variables."""
        try:
            text, trusted = await self.persisted.resolve(query, extensions, document_id)
        except PersistedError as exc:
            error = GraphQLError(exc.message, extensions={"code": exc.code})
            kind: Literal["request", "unknown", "document"] = (
                "request"
                if exc.request_error
                else "unknown"
                if exc.code == "PERSISTED_QUERY_NOT_FOUND"
                else "document"
            )
            raise Refused([error], kind) from None
        if text is None:
            raise Refused([bad_request("No GraphQL query found in the request")], "request")
        prepared = self.get(text)
        if prepared.errors:
            raise Refused(prepared.errors, "document")
        assert prepared.document is not None
        operation = prepared.operation(operation_name)
        if isinstance(operation, str):
            raise Refused([bad_request(operation)], "document")
        if (
            self.persisted.trusted is not None
            and not trusted
            and not (self.schema.introspection and only_introspection(operation))
        ):
            error = GraphQLError(NOT_ALLOWED, extensions={"code": "PERSISTED_QUERY_NOT_ALLOWED"})
            raise Refused([error], "document")
        coerced = get_variable_values(
            graphql_schema(self.schema), operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            raise Refused(coerced, "document")
        return Admitted(text, prepared.document, operation, coerced)

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
        errors = validate_document(graphql_schema(self.schema), document, self.rules)
        return Prepared(document, list(errors))


def only_introspection(operation: OperationDefinitionNode) -> bool:
    """Whether every root field asks about the schema (``__schema``, ``__type``)."""
    fields = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    return len(fields) == len(operation.selection_set.selections) and all(
        f.name.value.startswith("__") for f in fields
    )
