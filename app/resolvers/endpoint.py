"""``/graphql``: one Litestar route for GraphQL over HTTP, GraphiQL and the socket.

Every request passes the same pipeline as the REST routes (request id, CORS,
auth, rate limit, compression) and then this route, which checks the
document once (:mod:`app.resolvers.documents`) and picks an execution
strategy: a compiled plan when one models the operation, Strawberry's
standard executor otherwise. Both strategies answer through the same code
below, so status codes, media types and headers cannot differ between them.

When a plan fails at run time its work is cancelled and the standard
executor answers the request (a failure that is not a domain error is logged,
rate-limited, with the request id); a database outage is not paid twice,
because the database's circuit breaker fails the second attempt at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from inspect import isawaitable
from typing import Any

import msgspec
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute,
)
from litestar.handlers import asgi
from strawberry.http import process_result
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app import tracing
from app.context import (
    BodyTooLarge,
    error_bytes,
    header,
    principal_of,
    read_body,
    request_database,
    request_id_of,
)
from app.domain.service import Service
from app.errors import DomainError, Unavailable
from app.internals import graphql_schema
from app.metrics import count_operation
from app.resolvers.compiled import Plan
from app.resolvers.context import build_context
from app.resolvers.documents import Admitted, Documents, Refused
from app.resolvers.over_http import (
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    Params,
    RequestError,
    has_graphql_params,
    is_json_content_type,
    negotiate,
    params_from_body,
    params_from_query_string,
)
from app.resolvers.persisted import MemoryStore, PersistedQueries
from app.resolvers.plan_rules import Completion, Fallback, MutationFailed
from app.resolvers.plans import CompiledQueries
from app.resolvers.schema import ExecutionContext, Schema
from app.resolvers.socket import GraphQLSocket
from app.schema.errors import format_error
from app.schema.guard import MAX_QUERY_CHARS

log = logging.getLogger("app.graphql")
GRAPHQL_PATH = "/graphql"
Send = Callable[[dict[str, Any]], Any]


class Answer:
    """An HTTP answer of the GraphQL route: status, body, extra headers."""

    __slots__ = ("body", "headers", "media", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        media: bytes = CONTENT_TYPES[JSON],
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.media = media
        self.headers = headers or []

    async def send(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", self.media),
                    (b"content-length", b"%d" % len(self.body)),
                    *self.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.body})


class GraphQLEndpoint:
    """The GraphQL face over HTTP: parse, check, execute (plan or standard), shape."""

    def __init__(
        self,
        schema: Schema,
        service: Service,
        *,
        max_body_bytes: int,
        plans: CompiledQueries | None = None,
        verify_plans: bool = False,
        graphiql_html: str | None = None,
        persisted: PersistedQueries | None = None,
        socket: GraphQLSocket | None = None,
    ) -> None:
        self.schema = schema
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.persisted = persisted or PersistedQueries(MemoryStore(1000), max_chars=MAX_QUERY_CHARS)
        self.documents = Documents(schema, self.persisted)
        self.plans = plans
        # Tests: every answer of a plan is checked against the standard executor.
        self.verify_plans = verify_plans
        self.mismatches: list[tuple[str, bytes, bytes]] = []
        self.graphiql_html = graphiql_html
        self.suggestions = schema.introspection
        self.socket = socket

    def service_for(self, scope: dict[str, Any]) -> Service:
        """The service for this request: over its own transaction when it has
        one (a keyed mutation, app/idempotency.py), else the shared one."""
        database = request_database(scope)
        return self.service if database is None else self.service.within(database)

    # ---------------------------------------------------------------- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "websocket":
            if self.socket is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            try:
                await self.socket(scope, receive, send)
            except Exception:
                # Litestar closes the socket (4500) without a word: say what failed.
                log.exception("unhandled error on the GraphQL WebSocket")
                raise
            return
        answer = await self.answer_http(scope, receive)
        state = scope.get("state") or {}
        if "operation_type" in state:
            ok = answer.status < 400 and b'"errors":' not in answer.body
            count_operation(state["operation_type"], state.get("operation_name"), ok)
        await answer.send(send)

    async def answer_http(self, scope: dict[str, Any], receive: Any) -> Answer:
        media = negotiate(header(scope, b"accept"))
        method = scope["method"]
        try:
            if method == "GET" or method == "HEAD":
                query_string = scope.get("query_string", b"")
                if (
                    self.graphiql_html
                    and _wants_html(scope)
                    and not has_graphql_params(query_string)
                ):
                    return Answer(200, self.graphiql_html.encode(), b"text/html; charset=utf-8")
                params = params_from_query_string(query_string)
            elif method == "POST":
                if not is_json_content_type(header(scope, b"content-type")):
                    raise RequestError(
                        415, "Content-Type must be application/json for GraphQL POST requests"
                    )
                try:
                    body = await read_body(receive, self.max_body_bytes)
                except BodyTooLarge:
                    return Answer(413, error_bytes(413, "Request Entity Too Large"))
                params = params_from_body(body)
            elif method == "OPTIONS":
                return Answer(204, b"", headers=[(b"allow", b"GET, HEAD, POST, OPTIONS")])
            else:
                return Answer(
                    405,
                    error_bytes(405, f"Method {method} is not allowed here"),
                    headers=[(b"allow", b"GET, HEAD, POST, OPTIONS")],
                )
            return await self.run(scope, params, media, get=method in ("GET", "HEAD"))
        except RequestError as exc:
            return self._request_error(exc, media)

    # ---------------------------------------------------------------- one request

    async def run(self, scope: dict[str, Any], params: Params, media: str, *, get: bool) -> Answer:
        try:
            admitted = await self.documents.admit(
                params.query,
                params.variables,
                params.operation_name,
                params.extensions,
                params.document_id,
            )
        except Refused as refused:
            if refused.kind == "request":
                raise RequestError(400, refused.errors[0].message) from None
            if refused.kind == "unknown":
                # 200 whatever the media type: Apollo's link then resends with the query.
                return Answer(200, self._errors_body(refused.errors), CONTENT_TYPES[media])
            return self._document_errors(refused.errors, media)
        query, operation = admitted.query, admitted.operation
        if query is not params.query:
            params = Params(query, params.variables, params.operation_name, params.extensions)
        kind = operation.operation
        # What an Idempotency-Key guards (app/idempotency.py: mutations only)
        # and the access log shows.
        state = scope.setdefault("state", {})
        state["operation_type"] = kind.value
        if get and kind is not OperationType.QUERY:
            raise RequestError(
                405,
                f"{kind.value.capitalize()}s are only allowed over POST",
                headers=[(b"allow", b"POST")],
            )
        if kind is OperationType.SUBSCRIPTION:
            raise RequestError(
                400, "Subscriptions run over the WebSocket protocol graphql-transport-ws"
            )

        name = params.operation_name or (operation.name.value if operation.name else None)
        if name is not None:
            state["operation_name"] = name[:64]
        if tracing.enabled:
            with tracing.operation(name, kind.value):
                return await self._execute(scope, params, admitted, media, get=get)
        return await self._execute(scope, params, admitted, media, get=get)

    async def _execute(
        self, scope: dict[str, Any], params: Params, admitted: Admitted, media: str, *, get: bool
    ) -> Answer:
        state = scope["state"]
        query, operation = admitted.query, admitted.operation
        principal = principal_of(scope)
        if self.plans is not None and principal is not None:
            plan = self.plans.plan(query, admitted.document, operation)
            if isinstance(plan, str):
                state["fallback"] = plan  # the standard executor answers: say why
            else:
                answer = await self._compiled(scope, params, admitted, plan, media)
                if answer is not None:
                    return answer
        state.setdefault("strategy", "standard")
        body = await self.standard(scope, params, mutations=not get)
        return Answer(200, body, CONTENT_TYPES[media])

    async def _compiled(
        self, scope: dict[str, Any], params: Params, admitted: Admitted, plan: Plan, media: str
    ) -> Answer | None:
        """The compiled plan's answer, or None: the standard executor answers
        (an answer with errors it writes; a plan that failed, counted and logged)."""
        assert self.plans is not None
        state = scope["state"]
        request_id = request_id_of(scope)
        context = build_context(self.service_for(scope), principal_of(scope), request_id)
        content_type = CONTENT_TYPES[media]
        state["strategy"] = "compiled"
        if plan.mutation:
            try:
                data = await plan.mutate(context, admitted.variables)
            except MutationFailed as failed:
                self.plans.answered += 1
                error = format_error(failed.error, suggestions=self.suggestions)
                body = msgspec.json.encode({"data": failed.data, "errors": [error.formatted]})
                return Answer(200, body, content_type)
            except Completion as done:  # it ran: the standard executor writes its answer
                self.plans.passed_on += 1
                state["strategy"] = "compiled+standard"
                body = await self.complete(scope, params, admitted.document, done.value)
                return Answer(200, body, content_type)
            except Exception as exc:  # before the mutation ran: the standard executor runs it
                self.plans.failure(exc, request_id)
                state["strategy"], state["fallback"] = "standard", "the plan failed"
                return None
            self.plans.answered += 1
            return Answer(200, msgspec.json.encode({"data": data}), content_type)
        try:
            data = await plan.execute(context, admitted.variables)
        except Unavailable as exc:
            # The database is away: answered now, not by running the request
            # again on the standard executor (a second wait).
            self.plans.answered += 1
            error = format_error(GraphQLError(str(exc.message), original_error=exc))
            body = msgspec.json.encode({"data": None, "errors": [error.formatted]})
            return Answer(200, body, content_type)
        except (DomainError, Fallback) as exc:
            # An answer with errors (or a value the plan does not write): the
            # standard executor writes it.
            reason = "an answer with errors" if isinstance(exc, DomainError) else str(exc)
            state["strategy"], state["fallback"] = "standard", reason
        except Exception as exc:
            self.plans.failure(exc, request_id)
            state["strategy"], state["fallback"] = "standard", "the plan failed"
        else:
            self.plans.answered += 1
            body = msgspec.json.encode({"data": data})
            if self.verify_plans:
                await self._verify(scope, params, admitted.query, body)
            return Answer(200, body, content_type)
        self.plans.passed_on += 1
        return None

    async def standard(self, scope: dict[str, Any], params: Params, *, mutations: bool) -> bytes:
        """Strawberry's executor, with a fresh per-request context."""
        context = build_context(self.service_for(scope), principal_of(scope), request_id_of(scope))
        allowed = {StrawberryOperationType.QUERY}
        if mutations:
            allowed.add(StrawberryOperationType.MUTATION)
        result = await self.schema.execute(
            params.query,
            variable_values=params.variables,
            context_value=context,
            operation_name=params.operation_name,
            allowed_operation_types=allowed,
        )
        if result.errors:
            result.errors = [format_error(e, suggestions=self.suggestions) for e in result.errors]
        return msgspec.json.encode(process_result(result))

    async def complete(
        self, scope: dict[str, Any], params: Params, document: DocumentNode, value: Any
    ) -> bytes:
        """The answer of a mutation that ran (its root field resolved to
        ``value``), written by graphql-core's executor: the root field answers
        ``value`` instead of running again; everything below it resolves as
        in any standard execution."""

        def ran_already(next_: Any, root: Any, info: Any, **kwargs: Any) -> Any:
            return value if info.path.prev is None else next_(root, info, **kwargs)

        context = build_context(self.service_for(scope), principal_of(scope), request_id_of(scope))
        result = execute(
            graphql_schema(self.schema),
            document,
            context_value=context,
            variable_values=params.variables,
            operation_name=params.operation_name,
            middleware=[ran_already],
            executor_class=ExecutionContext,
        )
        if isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        if result.errors:
            result.errors = [format_error(e, suggestions=self.suggestions) for e in result.errors]
        return msgspec.json.encode(process_result(result))

    async def _verify(self, scope: dict[str, Any], params: Params, query: str, body: bytes) -> None:
        reference = await self.standard(scope, params, mutations=False)
        if reference != body and not same_json(reference, body):
            self.mismatches.append((query, body, reference))

    # ---------------------------------------------------------------- errors

    def _errors_body(self, errors: list[GraphQLError]) -> bytes:
        formatted = [format_error(e, suggestions=self.suggestions).formatted for e in errors]
        return msgspec.json.encode({"errors": formatted})

    def _document_errors(self, errors: list[GraphQLError], media: str) -> Answer:
        """Parse, validation and variable errors: no ``data``; 400 under
        graphql-response+json, 200 under application/json (older clients)."""
        status = 400 if media == GRAPHQL_RESPONSE_JSON else 200
        return Answer(status, self._errors_body(errors), CONTENT_TYPES[media])

    def _request_error(self, exc: RequestError, media: str) -> Answer:
        error = GraphQLError(exc.message, extensions={"code": exc.code, "statusCode": exc.status})
        body = msgspec.json.encode({"errors": [error.formatted]})
        return Answer(exc.status, body, CONTENT_TYPES[media], exc.headers)


def _wants_html(scope: dict[str, Any]) -> bool:
    accept = header(scope, b"accept") or b""
    return b"text/html" in accept


def graphql_route(endpoint: GraphQLEndpoint) -> Any:
    """The Litestar route: every method and the WebSocket upgrade of /graphql."""

    @asgi(GRAPHQL_PATH, is_mount=False, copy_scope=False, include_in_schema=False)
    async def graphql(scope: Any, receive: Any, send: Any) -> None:
        await endpoint(scope, receive, send)

    return graphql


def same_json(a: bytes, b: bytes) -> bool:
    """The same JSON value, keys in the same order (what a client reads): JSON
    the storage wrote (``Context.written``) may differ in whitespace, and write
    a whole float such as ``1.0`` as ``1``."""
    return bool(json.loads(a, object_pairs_hook=list) == json.loads(b, object_pairs_hook=list))
