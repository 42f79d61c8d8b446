"""create_app(settings): the one place that wires everything together."""

from __future__ import annotations

import gc

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from strawberry.http.ides import get_graphql_ide_html

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
from app.resolvers.schema import build_schema
from app.rest.controllers import InterviewSessionController
from app.rest.errors import EXCEPTION_HANDLERS
from app.rest.health import health
from app.rest.openapi import refine_openapi
from app.rest.options import allow_header_fixer

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


def create_litestar(
    settings: Settings, service: Service, database: Database, graphql: GraphQLEndpoint
) -> Litestar:
    app = Litestar(
        route_handlers=[
            InterviewSessionController,
            health,
            graphql_route(graphql),
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


def create_app(settings: Settings, database: Database | None = None) -> App:
    """Wire everything: the database behind the service's ports, both faces on
    one Litestar app, the pipeline in front of all of it."""
    db = database or Database(settings)
    service = Service.build(db, max_active_sessions=settings.max_active_sessions)
    schema = build_schema(settings)
    plans = CompiledQueries(schema) if settings.graphql_compiled else None
    graphql = GraphQLEndpoint(
        schema,
        service,
        max_body_bytes=settings.max_body_bytes,
        plans=plans,
        verify_plans=settings.graphql_verify_plans,
        graphiql_html=get_graphql_ide_html("graphiql"),
    )
    litestar = create_litestar(settings, service, db, graphql)
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
