"""The Strawberry schema and its protective extensions, built from settings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry
from graphql import ASTValidationRule, MaxIntrospectionDepthRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.config import StrawberryConfig

from app.config import Settings
from app.resolvers.mutation import Mutation
from app.resolvers.query import Query
from app.schema.guard import GuardedValidationCache, QueryLength
from app.schema.limits import total_depth_rule
from app.schema.types import DATE_STRICT, DATETIME_Z

# The standard introspection query (what GraphiQL sends) nests ``ofType`` to a
# depth of 15; introspection fields get their own, larger depth budget so it
# passes, while graphql-core's MaxIntrospectionDepthRule stops the multiplying
# ``fields { type { fields … } }`` nesting and a hand-made deep query is refused.
INTROSPECTION_MAX_DEPTH = 20
CACHE_SIZE = 256  # documents, each at most MAX_QUERY_CHARS of text


def _is_introspection(ctx: IgnoreContext) -> bool:
    return ctx.field_name.startswith("__")


class Schema(strawberry.Schema):
    # The rules our extensions add, for the compiled fast path to validate with.
    extra_rules: tuple[type[ASTValidationRule], ...] = ()

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Client errors are answers, not incidents: ErrorCodes logs the unexpected ones."""


def build_schema(settings: Settings | None = None) -> Schema:
    s = settings or Settings()
    # Validation rule classes are made once per schema: the validation cache is
    # keyed by the rules, so new classes per request would never hit it. Rule
    # classes hold no request state (an instance is made per validation); the
    # extensions themselves are still created per request.
    rules: list[type[ASTValidationRule]] = [
        MaxIntrospectionDepthRule,
        depth_validator(s.graphql_max_depth, _is_introspection, None),
        total_depth_rule(max(INTROSPECTION_MAX_DEPTH, s.graphql_max_depth)),
        alias_validator(s.graphql_max_aliases),
    ]
    extensions: list[Any] = [
        QueryLength,
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=s.graphql_max_tokens),
        lambda: AddValidationRules(rules),
        lambda: GuardedValidationCache(maxsize=CACHE_SIZE),
    ]
    if not s.graphql_introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not s.graphql_introspection),
        scalar_overrides={datetime: DATETIME_Z, date: DATE_STRICT},
    )
    schema.extra_rules = tuple(rules)
    return schema


def export_sdl() -> str:
    """The SDL that ``schema.graphql`` must equal."""
    return build_schema().as_str() + "\n"


__all__ = ["build_schema", "export_sdl"]
