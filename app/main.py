"""create_app(settings): the one place that wires everything together."""

from __future__ import annotations

import gc
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app.assets import Assets
from app.auth import Authenticator
from app.config import Settings, load_settings
from app.db.engine import Database
from app.domain.service import Service
from app.logs import configure_logging
from app.pipeline import Pipeline
from app.pipeline.cors import Cors
from app.ratelimit import RateLimiter
from app.resolvers.compiled import CompiledQueries
from app.resolvers.endpoint import GraphQLEndpoint, graphql_route
from app.resolvers.graphiql import graphiql_html
from app.resolvers.persisted import MemoryStore, PersistedQueries, RedisStore, Store, load_manifest
from app.resolvers.schema import build_schema
from app.rest.controllers import InterviewSessionController
from app.rest.errors import EXCEPTION_HANDLERS, error_response
from app.rest.health import health
from app.rest.openapi import refine_openapi
from app.rest.options import allow_header_fixer
from app.rest.static import static_route
from app.schema.guard import MAX_QUERY_CHARS

API_VERSION = "1.0.0"


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


def create_litestar(
    settings: Settings,
    service: Service,
    database: Database,
    graphql: GraphQLEndpoint,
    assets: Assets,
) -> Litestar:
    app = Litestar(
        route_handlers=[
            InterviewSessionController,
            health,
            graphql_route(graphql),
            static_route(assets),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        state=State({"service": service, "settings": settings}),
        on_startup=[freeze_startup_objects],
        on_shutdown=[database.dispose],
        openapi_config=OpenAPIConfig(
            title="Interview Session API",
            version=API_VERSION,
            description="Sessions, interactions, metrics and analytics of the AI interview "
            "assistant. Every error answers {statusCode, message, error}.",
            path="/schema",
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
    database: Database
    graphql: GraphQLEndpoint


def persisted_queries(settings: Settings) -> PersistedQueries:
    local = MemoryStore(settings.graphql_apq_size)
    url = settings.graphql_apq_storage or settings.rate_limit_storage
    store: Store = RedisStore(url, local) if url.startswith(("redis://", "rediss://")) else local
    trusted = None
    if settings.graphql_trusted_documents:
        trusted = load_manifest(settings.graphql_trusted_documents)
    return PersistedQueries(store, trusted, max_chars=MAX_QUERY_CHARS)


def create_app(settings: Settings, database: Database | None = None) -> App:
    """Wire everything: the database behind the service's ports, both faces on
    one Litestar app, the pipeline in front of all of it."""
    db = database or Database(settings)
    service = Service.build(
        db, max_active_sessions=settings.max_active_sessions, cursor_secret=settings.cursor_key
    )
    schema = build_schema(settings)
    assets = Assets()
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
    litestar = create_litestar(settings, service, db, graphql, assets)
    if plans is not None:
        plans.refuse_middleware([repr(m) for m in litestar.middleware])
    app = App(
        litestar,
        Authenticator(settings),
        RateLimiter(settings.rate_limits, settings.rate_limit_storage),
        protected=(InterviewSessionController.path,),
        max_body_bytes=settings.max_body_bytes,
        fix_options=allow_header_fixer(litestar),
        cors=Cors(settings.cors_origins, development=settings.app_env == "development"),
    )
    app.litestar, app.service, app.database, app.graphql = litestar, service, db, graphql
    return app


def create_app_from_env() -> App:
    """Factory for uvicorn workers: settings from the environment. Workers are
    fresh processes, so logging is set up here too."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
