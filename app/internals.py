"""Every private API of a library this code relies on, listed in one place.

A private name can change in any release. Each one used here is listed
below (what, where, why); the libraries are pinned below their next minor
release (pyproject.toml), and tests/test_internals.py resolves every entry
against the installed versions, so an upgrade that moves one fails a test
instead of a request. A use not listed here is a bug (tests/test_internals.py
also searches the code for private names of these libraries).

SQLAlchemy needs none any more: statements are compiled with its public API
(``compile``, ``positiontup``, ``binds``, ``params``,
``construct_expanded_state``, ``dialect_impl``, ``selected_columns``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Internal:
    library: str  # the distribution, as pinned in pyproject.toml
    target: str  # "module:Name" or "module:Name.attribute"
    used_by: str
    why: str


INTERNALS: tuple[Internal, ...] = (
    Internal(
        "strawberry-graphql",
        "strawberry.schema.schema:Schema._schema",
        "app.resolvers (graphql_schema below)",
        "the graphql-core schema the document checks, variable coercion and plans run on",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.schema.schema:StrawberryGraphQLCoreExecutionContext",
        "app.resolvers.schema.ExecutionContext",
        "fresh DataLoaders per execution and event; a reference cycle per execution closed",
    ),
    Internal(
        "graphql-core",
        "graphql.execution.executor:Executor._relevant_sub_fields",
        "app.resolvers.schema.ExecutionContext.build_per_event_executor",
        "per-event caches (a subscription's shared cache grew with every event)",
    ),
    Internal(
        "graphql-core",
        "graphql.execution.executor:Executor._stream_usages",
        "app.resolvers.schema.ExecutionContext.build_per_event_executor",
        "as above",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.subscriptions.protocols.graphql_transport_ws.handlers:"
        "BaseGraphQLTransportWSHandler.forget_id",
        "app.resolvers.socket._Handler",
        "an operation ending as its client completes it is not an error",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.subscriptions.protocols.graphql_transport_ws.handlers:"
        "Operation.send_operation_message",
        "app.resolvers.socket._Operation",
        "nothing is sent for an operation once it is completed",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.litestar.controller:LitestarWebSocketAdapter.send_json",
        "app.resolvers.socket._Adapter",
        "the slow-reader rule (a send timeout)",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.types.arguments:_is_leaf_type",
        "app.resolvers.arguments",
        "argument conversion prepared once per field (Strawberry's, per call, was 18%)",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.types.arguments:_is_optional_leaf_type",
        "app.resolvers.arguments",
        "as above",
    ),
    Internal(
        "strawberry-graphql",
        "strawberry.schema.schema_converter:GraphQLCoreConverter.scalar_registry",
        "app.resolvers.compiled",
        "compiled plans convert arguments as Strawberry does",
    ),
    Internal(
        "litestar",
        "litestar.app:Litestar.asgi_router",
        "app.main.keyed_routes",
        "which requests are REST writes (an Idempotency-Key applies), asked of the router",
    ),
    Internal(
        "litestar",
        "litestar._asgi.asgi_router:ASGIRouter.handle_routing",
        "app.main.keyed_routes",
        "as above",
    ),
    Internal(
        "limits",
        "limits.aio.storage.memory:MemoryStorage.acquire_entry",
        "app.ratelimit.LeanMemoryStorage",
        "a moving window without a copy per hit (the memory storage's hot path)",
    ),
    Internal(
        "limits",
        "limits.aio.storage.memory:MemoryStorage.get_moving_window",
        "app.ratelimit.LeanMemoryStorage",
        "as above",
    ),
    Internal(
        "uvicorn",
        "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol",
        "app.serving (UVICORN_HOOKS)",
        "head caps, read timeouts, the connection cap, the slow-reader rule",
    ),
    Internal(
        "uvicorn",
        "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol",
        "app.serving (UVICORN_HOOKS)",
        "the slow-reader rule on WebSockets",
    ),
)


def graphql_schema(schema: Any) -> Any:
    """The graphql-core schema inside a Strawberry schema (see INTERNALS)."""
    return schema._schema
