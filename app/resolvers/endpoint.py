"""/graphql on the Litestar app: Strawberry's controller with our context.

Everything the GraphQL face answers is HTTP 200 with an ``errors`` list
(graphql.md), including requests Strawberry itself rejects before execution
(no query, bad JSON, a mutation over GET); only the gateway's 429 and
Litestar's 413 use an HTTP error status.
"""

from __future__ import annotations

from typing import Any

import msgspec
import strawberry
from cross_web import HTTPException as StrawberryHTTPException
from litestar import MediaType, Request, Response
from strawberry.http import process_result
from strawberry.litestar import make_graphql_controller

from app.domain.service import Service
from app.gateway import principal_of, request_id_of
from app.resolvers.context import Context, build_context
from app.schema.errors import format_error


async def get_context(request: Request[Any, Any, Any]) -> Context:
    service: Service = request.app.state.service
    scope: Any = request.scope
    return build_context(service, principal_of(scope), request_id_of(scope))


def graphql_controller(schema: strawberry.Schema, *, graphiql: bool = True) -> type:
    base: Any = make_graphql_controller(
        schema,
        path="/graphql",
        context_getter=get_context,
        graphql_ide="graphiql" if graphiql else None,
        allow_queries_via_get=True,
    )

    class GraphQLController(base):  # type: ignore[misc, valid-type]
        # Described by schema.graphql and introspection, not by OpenAPI.
        include_in_schema = False

        async def execute_request(
            self, request: Request[Any, Any, Any], context: Any, root_value: Any
        ) -> Response[Any]:
            try:
                return await self.run(request, context=context, root_value=root_value)  # type: ignore[no-any-return]
            except StrawberryHTTPException as exc:
                body = {
                    "data": None,
                    "errors": [
                        {
                            "message": exc.reason,
                            "extensions": {"code": "BAD_REQUEST", "statusCode": 400},
                        }
                    ],
                }
                return Response(msgspec.json.encode(body), media_type=MediaType.JSON)

        async def process_result(self, request: Any, result: Any) -> Any:
            # Here rather than in a schema extension: parse errors escape the
            # extensions' operation hook, and every error must carry a code.
            if result.errors:
                result.errors = [format_error(e) for e in result.errors]
            return process_result(result)

        def decode_json(self, data: str | bytes) -> object:
            try:
                return msgspec.json.decode(data)
            except msgspec.DecodeError:
                raise StrawberryHTTPException(400, "Unable to parse request body as JSON") from None
            except RecursionError:
                raise StrawberryHTTPException(400, "JSON body is nested too deeply") from None

        def encode_json(self, data: object) -> bytes:
            return msgspec.json.encode(data)

    return GraphQLController
