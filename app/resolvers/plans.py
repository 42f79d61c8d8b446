"""The compiled-plan strategy of the GraphQL endpoint: plans per document, kept.

Each (document, operation) gets a :class:`app.resolvers.compiled.Plan`, or
the reason it has none (then the standard executor answers, and the access
log says why); counters tell operators and tests how requests were answered.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence

from graphql import (
    DocumentNode,
    OperationDefinitionNode,
    OperationType,
)

from app.resolvers.compiled import Plan
from app.resolvers.plan_rules import KNOWN_EXTENSIONS, NotCompilable
from app.resolvers.schema import Schema

log = logging.getLogger("app.graphql.plans")


class CompiledQueries:
    """Plans per (document, operation), and the reasons plans may be off."""

    def __init__(self, schema: Schema, cache_size: int = 256) -> None:
        self.schema = schema
        self.cache_size = cache_size
        # A plan, or why there is none.
        self.plans: OrderedDict[tuple[str, str | None], Plan | str] = OrderedDict()
        self.answered = 0  # requests the plans answered (tests and operators read these)
        self.passed_on = 0  # requests left to the standard executor
        self.refused = 0  # of those, queries and mutations no plan models (see ``plan``)
        self.failed = 0  # plans that failed at run time (then the standard executor answered)
        self._last_failure_log = -1e9
        self.enabled = True
        unknown = unknown_extensions(schema)
        if unknown:
            self.enabled = False
            log.warning(
                "compiled GraphQL plans are off: the schema has extensions they do not model (%s)",
                ", ".join(sorted(unknown)),
            )

    def plan(
        self, query: str, document: DocumentNode, operation: OperationDefinitionNode
    ) -> Plan | str:
        """The plan of a valid query or mutation, or why there is none (the
        standard executor answers; the reason goes to the access log)."""
        if not self.enabled:
            return "plans are off for this schema"
        if operation.operation is OperationType.SUBSCRIPTION:
            return "a subscription"
        name = operation.name.value if operation.name else None
        key = (query, name)
        plans = self.plans
        found = plans.get(key)
        if found is not None:
            plans.move_to_end(key)
        else:
            try:
                found = Plan(self.schema, document, operation)
            except NotCompilable as reason:
                found = str(reason)
            plans[key] = found
            if len(plans) > self.cache_size:
                plans.popitem(last=False)
        if isinstance(found, str):
            self.refused += 1
        return found

    def explain(self, document: DocumentNode, operation: OperationDefinitionNode) -> str:
        """The generated source of the operation's plan, or why there is none."""
        if not self.enabled:
            return "plans are off for this schema"
        if operation.operation is OperationType.SUBSCRIPTION:
            return "not compiled: a subscription (plans answer queries and mutations)"
        try:
            plan = Plan(self.schema, document, operation)
        except NotCompilable as reason:
            return f"not compiled: {reason}"
        return "\n".join(f"# {label}\n{source}" for label, source in plan.sources.items())

    def refuse_middleware(self, names: Sequence[str]) -> None:
        """Called at start with the middleware around the GraphQL route: plans
        run inside the route, so they see what it sees, but one they do not know
        might expect graphql-core's executor (per-field hooks): plans turn off."""
        if names:
            self.enabled = False
            log.warning(
                "compiled GraphQL plans are off: middleware they do not model (%s)",
                ", ".join(names),
            )

    def failure(self, exc: BaseException, request_id: str) -> None:
        """A plan failed at run time: counted, and logged at most once a second
        (a bug in a plan must be seen, but must not flood the log)."""
        self.failed += 1
        now = time.monotonic()
        if now - self._last_failure_log >= 1.0:
            self._last_failure_log = now
            log.warning(
                "a compiled plan failed (request %s); the standard executor answered: %r",
                request_id,
                exc,
                exc_info=exc,
            )


def unknown_extensions(schema: Schema) -> set[str]:
    names = set()
    for factory in schema.extensions:
        ext = factory() if callable(factory) else factory
        if not isinstance(ext, KNOWN_EXTENSIONS):
            names.add(type(ext).__name__)
    return names
