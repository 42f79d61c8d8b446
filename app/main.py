"""create_app(settings): the one place that wires everything together."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Server

from app import tracing
from app.assets import Assets
from app.auth import Authenticator
from app.config import Settings, load_settings
from app.db.bus import LocalBus, make_bus
from app.db.engine import AnyDatabase, Database
from app.db.maintenance import Pruner
from app.domain.service import Service
from app.idempotency import Idempotency
from app.logs import configure_logging
from app.metrics import MetricsEndpoint
from app.operations import Readiness, install_graceful_shutdown, pool_gauges, refresh_every
from app.pipeline import Pipeline
from app.pipeline.cors import Cors
from app.ratelimit import RateLimiter
from app.resolvers.endpoint import GRAPHQL_PATH, GraphQLEndpoint, graphql_route
from app.resolvers.graphiql import graphiql_html
from app.resolvers.persisted import MemoryStore, PersistedQueries, RedisStore, Store, load_manifest
from app.resolvers.plans import CompiledQueries
from app.resolvers.schema import build_schema
from app.resolvers.socket import GraphQLSocket, SocketSettings
from app.rest.controllers import InterviewSessionController
from app.rest.errors import EXCEPTION_HANDLERS, error_response
from app.rest.events import EventStreamController, Streams
from app.rest.fast import FastReads
from app.rest.health import health, health_head, ready, ready_head
from app.rest.openapi import refine_openapi
from app.rest.options import allow_header_fixer
from app.rest.static import static_route
from app.schema.guard import MAX_QUERY_CHARS

API_VERSION = "1.0.0"
log = logging.getLogger("app")


GC_THRESHOLDS = (20_000, 20, 20)


def freeze_startup_objects() -> None:
    """Keep the garbage collector off what lives as long as the process.

    The schema, routes and SQLAlchemy metadata are hundreds of thousands of
    objects that every full collection would walk again, in the middle of some
    request. Frozen, collections only look at what requests allocate; a larger
    first threshold makes them rarer (a request allocates thousands of objects,
    nearly all freed by reference counting alone).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def docs_pages(assets: Assets) -> list[Any]:
    """Swagger UI (at /schema and /schema/swagger) and ReDoc, from local files."""
    favicon = f"<link rel='icon' type='image/png' href='{assets.url('favicon.png')}'>"
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=assets.url("swagger-ui.js"),
            css_url=assets.url("swagger-ui.css"),
            standalone_preset_js_url=assets.url("swagger-ui-preset.js"),
            favicon=favicon,
        ),
        RedocRenderPlugin(
            path="/redoc", js_url=assets.url("redoc.js"), google_fonts=False, favicon=favicon
        ),
    ]


def docs_not_found(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """An unknown page under /schema answers the contract's 404 body, not
    Litestar's HTML page for it."""
    if getattr(request.route_handler.fn, "__name__", "") == "handle_schema_path_not_found":
        return error_response(404, f"Cannot GET {request.url.path}")
    return None


class Live:
    """What runs beside the requests: the event bus, pruning, the pool gauges,
    and the open sockets and streams a stopping server must close."""

    def __init__(
        self,
        bus: LocalBus,
        pruner: Pruner,
        streams: Streams,
        socket: GraphQLSocket,
        readiness: Readiness,
        settings: Settings,
        refresh: Callable[[], None],
    ) -> None:
        self.bus = bus
        self.pruner = pruner
        self.streams = streams
        self.socket = socket
        self.readiness = readiness
        self.settings = settings
        self.refresh = refresh
        self._gauges: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.start()
        await self.pruner.start()
        self._gauges = asyncio.create_task(refresh_every(self.refresh))
        install_graceful_shutdown(
            self.readiness, self.settings.shutdown_drain_seconds, self.close_connections
        )

    async def close_connections(self) -> None:
        """Sockets close with 1001 and SSE streams end before the server's own
        shutdown fails whatever is left (uvicorn would close sockets with 1012)."""
        self.streams.close_all()
        await self.socket.close_all()

    async def stop(self) -> None:
        await self.close_connections()
        if self._gauges is not None:
            self._gauges.cancel()
        await self.pruner.stop()
        await self.bus.stop()
        if self.settings.metrics_dir:
            # This process's live gauges leave the sum (multiprocess mode).
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.settings.metrics_dir)  # type: ignore[no-untyped-call]
        tracing.shutdown()


def create_litestar(
    settings: Settings,
    service: Service,
    database: AnyDatabase,
    graphql: GraphQLEndpoint,
    assets: Assets,
    live: Live,
) -> Litestar:
    app = Litestar(
        route_handlers=[
            InterviewSessionController,
            EventStreamController,
            health,
            health_head,
            ready,
            ready_head,
            graphql_route(graphql),
            static_route(assets),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        state=State(
            {
                "service": service,
                "settings": settings,
                "streams": live.streams,
                "ready": live.readiness.reason,
            }
        ),
        on_startup=[freeze_startup_objects, live.start],
        on_shutdown=[live.stop, database.dispose],
        openapi_config=OpenAPIConfig(
            title="Interview Session API",
            version=API_VERSION,
            description="Sessions, interactions, metrics and analytics of the AI interview "
            "assistant. Every error answers {statusCode, message, error}.",
            path="/schema",
            # Behind a proxy under ROOT_PATH, "Try it out" calls go there.
            servers=[Server(url=settings.root_path or "/")],
            render_plugins=docs_pages(assets),
            openapi_router=Router(
                "/schema", route_handlers=[], before_request=docs_not_found, include_in_schema=False
            ),
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        logging_config=None,
        debug=False,
    )
    refine_openapi(app)
    return app


class App(Pipeline):
    """The ASGI application: the pipeline over Litestar, with handles on its
    parts for the CLI, the benchmarks and the tests."""

    litestar: Litestar
    service: Service
    database: AnyDatabase
    graphql: GraphQLEndpoint
    live: Live


def persisted_queries(settings: Settings) -> PersistedQueries:
    local = MemoryStore(settings.graphql_apq_size)
    url = settings.graphql_apq_storage or settings.rate_limit_storage
    store: Store = RedisStore(url, local) if url.startswith(("redis://", "rediss://")) else local
    trusted = None
    if settings.graphql_trusted_documents:
        trusted = load_manifest(settings.graphql_trusted_documents)
    return PersistedQueries(store, trusted, max_chars=MAX_QUERY_CHARS)


def create_app(settings: Settings, database: AnyDatabase | None = None) -> App:
    """Wire everything: the database behind the service's ports, both faces on
    one Litestar app, the pipeline in front of all of it."""
    db = database or Database(settings)
    bus = make_bus(
        db,
        dsn=None
        if settings.is_sqlite
        else db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
        connect_timeout=settings.db_connect_timeout,
    )
    service = Service.build(
        db,
        max_active_sessions=settings.max_active_sessions,
        cursor_secret=settings.cursor_key,
        bus=bus,
        retention=settings.event_retention,
    )
    authenticator = Authenticator(settings)
    schema = build_schema(settings)
    assets = Assets(root_path=settings.root_path)
    assets.warn_if_remote()
    plans = CompiledQueries(schema) if settings.graphql_compiled else None
    graphql = GraphQLEndpoint(
        schema,
        service,
        max_body_bytes=settings.max_body_bytes,
        plans=plans,
        verify_plans=settings.graphql_verify_plans,
        graphiql_html=graphiql_html(assets),
        persisted=persisted_queries(settings),
    )
    graphql.socket = GraphQLSocket(
        schema,
        service,
        graphql.documents,
        authenticator.credentials,
        SocketSettings(
            max_frame_bytes=settings.max_body_bytes,
            max_operations=settings.max_subscriptions_per_connection,
            init_timeout=settings.ws_init_timeout,
            send_timeout=settings.ws_send_timeout,
        ),
        access_log=settings.access_log,
    )
    live = Live(
        bus,
        Pruner(
            db,
            [
                ("events", settings.event_retention, prune_events),
                ("idempotency keys", settings.idempotency_ttl, prune_keys),
            ],
        ),
        Streams(settings.sse_heartbeat_seconds),
        graphql.socket,
        Readiness(db),
        settings,
        pool_gauges(db),
    )
    litestar = create_litestar(settings, service, db, graphql, assets, live)
    if plans is not None:
        plans.refuse_middleware([repr(m) for m in litestar.middleware])
    app = App(
        litestar,
        authenticator,
        RateLimiter(
            settings.rate_limits,
            settings.rate_limit_storage,
            timeout=settings.rate_limit_timeout,
            breaker_seconds=settings.rate_limit_breaker_seconds,
        ),
        protected=(InterviewSessionController.path,),
        max_body_bytes=settings.max_body_bytes,
        fix_options=allow_header_fixer(litestar),
        cors=Cors(settings.cors_origins, development=settings.app_env == "development"),
        idempotency=Idempotency(db, settings.idempotency_ttl),
        keyed_routes=keyed_routes(litestar, InterviewSessionController.path),
        route_of=route_of(litestar),
        direct={
            GRAPHQL_PATH: graphql,
            **(
                {
                    "/metrics": MetricsEndpoint(
                        settings.metrics_token, settings.metrics_dir, live.refresh
                    )
                }
                if settings.metrics
                else {}
            ),
        },
        fast=FastReads(service, litestar).route if settings.rest_fast_reads else None,
        access_log=settings.access_log,
        root_path=settings.root_path,
        metrics=settings.metrics,
    )
    app.litestar, app.service, app.database, app.graphql = litestar, service, db, graphql
    app.live = live
    return app


def route_of(litestar: Litestar) -> Callable[[str, str], str | None]:
    """The route template of a request the pipeline answered itself (a 401, a
    429) for the metrics and the access log; None for an unknown path."""
    router = litestar.asgi_router

    def route(method: str, path: str) -> str | None:
        try:
            template: str = router.handle_routing(path, method)[4]  # type: ignore[arg-type]
        except HTTPException:
            return None
        return template

    return route


def keyed_routes(litestar: Litestar, prefix: str) -> Callable[[str, str], str | None]:
    """The route template of a REST write under ``prefix`` (the requests an
    Idempotency-Key applies to), or None: asked of Litestar's own router, so a
    method the route lacks (a 405) or an unknown path (a 404) is never keyed."""
    router = litestar.asgi_router

    def keyed(method: str, path: str) -> str | None:
        if not path.startswith(prefix):
            return None
        try:
            template: str = router.handle_routing(path, method)[4]  # type: ignore[arg-type]
        except HTTPException:
            return None
        return template

    return keyed


async def prune_keys(uow: Any, before: datetime, limit: int) -> int:
    pruned: int = await uow.idempotency.prune(before, limit)
    return pruned


async def prune_events(uow: Any, before: datetime, limit: int) -> int:
    pruned: int = await uow.events.prune(before, limit)
    return pruned


def create_app_from_env() -> App:
    """Factory for uvicorn workers: settings from the environment. Workers are
    fresh processes, so logging is set up here too."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.tracing:
        tracing.configure(settings.tracing_protocol, settings.otel_service_name)
        return tracing.wrap(create_app(settings))  # type: ignore[no-any-return]
    return create_app(settings)
