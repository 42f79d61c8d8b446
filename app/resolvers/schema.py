"""The GraphQL schema, composed at the top of the GraphQL face.

Types, inputs and limits come from :mod:`app.schema`; the resolvers from this
package. ``validation_rules`` is the one list of rules every path validates
with: Strawberry's executor (through its extensions), the HTTP endpoint's
pre-checks and the compiled plans.
"""

from __future__ import annotations

import weakref
from datetime import date, datetime
from typing import Any

import strawberry
from graphql import ASTValidationRule
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from graphql.pyutils.ref_map import RefMap
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.config import Settings
from app.resolvers.mutation import Mutation
from app.resolvers.query import Query
from app.resolvers.subscription import Subscription
from app.schema.guard import GuardedValidationCache, QueryLength
from app.schema.limits import validation_rules
from app.schema.types import DATE_STRICT, DATETIME_Z

CACHE_SIZE = 256  # documents, each at most MAX_QUERY_CHARS of text


class Schema(strawberry.Schema):
    # Every rule beyond GraphQL's own: for the endpoint's checks and the plans.
    validation_rules: tuple[type[ASTValidationRule], ...] = ()
    max_tokens: int = 2000
    introspection: bool = True

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Client errors are answers, not incidents: the error formatter logs the
        unexpected ones (with the request id)."""


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with fresh DataLoaders for every execution and
    a memory leak of graphql-core 3.3 closed.

    Each event of a subscription runs on a shallow copy of the subscription's
    executor (``build_per_event_executor``), and the copies share its
    sub-field cache, keyed by the identity of lists that every event builds
    anew and that the cache keeps alive: it grew by a few dozen objects per
    event for as long as the subscription lasted (with 1,000 subscribers,
    ~2,500 objects a second per process, and the full collections that walk
    them stalled deliveries for 50-120 ms). Each event gets its own caches,
    freed with it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every execution starts with its own DataLoaders: a socket's context
        # lives as long as the socket, and its operations must not read what
        # an earlier one cached (nor grow its caches for as long as it is open).
        self.context_value = _fresh(self.context_value)
        # graphql-core binds the resolvers' async helpers to the executor: a
        # reference cycle per execution (the executor, its context, loaders
        # and results), left to the garbage collector; for a subscription it
        # lives until the socket closes, and 1,000 sockets closing at once
        # left one long collection. The same helpers, through a weak reference.
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_gather, track=_Track(weakref.ref(self))
        )

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # Each event is read with fresh DataLoaders (see __init__).
        executor.context_value = _fresh(self.context_value)
        executor._relevant_sub_fields = {}
        executor._stream_usages = RefMap()
        return executor


def _fresh(context: Any) -> Any:
    fresh = getattr(context, "fresh", None)
    return context if fresh is None else fresh()


def _gather(values: Any) -> Any:
    return gather_with_cancel(*values)


class _Track:
    """``track_async_work`` of an executor that may be gone (then nothing is
    left to track)."""

    __slots__ = ("executor",)

    def __init__(self, executor: weakref.ref[Any]) -> None:
        self.executor = executor

    def __call__(self, values: Any) -> None:
        executor = self.executor()
        if executor is not None:
            executor.track_async_work(values)


def build_schema(settings: Settings | None = None) -> Schema:
    s = settings or Settings()
    rules = validation_rules(s)
    extensions: list[Any] = [
        QueryLength,
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=s.graphql_max_tokens),
        lambda: AddValidationRules(list(rules)),
        lambda: GuardedValidationCache(maxsize=CACHE_SIZE),
    ]
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not s.graphql_introspection),
        scalar_overrides={datetime: DATETIME_Z, date: DATE_STRICT},
        execution_context_class=ExecutionContext,
    )
    schema.validation_rules = rules
    schema.max_tokens = s.graphql_max_tokens
    schema.introspection = s.graphql_introspection
    return schema


def export_sdl() -> str:
    """The SDL that ``schema.graphql`` must equal."""
    return build_schema().as_str() + "\n"


__all__ = ["ExecutionContext", "Schema", "build_schema", "export_sdl"]
