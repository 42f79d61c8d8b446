"""create_app(settings): the one place that wires everything together."""

from __future__ import annotations

import gc

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from app.auth import Authenticator
from app.config import Settings, load_settings
from app.db.engine import Database
from app.domain.service import Service
from app.gateway import Gateway
from app.logs import configure_logging
from app.ratelimit import RateLimiter
from app.resolvers.compiled import CompiledQueries
from app.resolvers.endpoint import graphql_controller
from app.rest.controllers import InterviewSessionController
from app.rest.errors import EXCEPTION_HANDLERS
from app.rest.health import health
from app.rest.openapi import refine_openapi
from app.rest.options import allow_header_fixer
from app.schema.schema import Schema, build_schema

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


def create_litestar(settings: Settings, service: Service, schema: Schema) -> Litestar:
    app = Litestar(
        route_handlers=[
            InterviewSessionController,
            health,
            graphql_controller(schema),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        state=State({"service": service, "settings": settings}),
        on_startup=[freeze_startup_objects],
        on_shutdown=[service.db.dispose],
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


def create_app(settings: Settings, database: Database | None = None) -> Gateway:
    """The ASGI application: the gateway (request id, auth, rate limit) over Litestar."""
    db = database or Database(settings)
    service = Service.build(db, max_active_sessions=settings.max_active_sessions)
    schema = build_schema(settings)
    litestar = create_litestar(settings, service, schema)
    limiter = RateLimiter(settings.rate_limits, settings.rate_limit_storage)
    compiled = None
    if settings.graphql_compiled:
        compiled = CompiledQueries(
            schema,
            service,
            max_tokens=settings.graphql_max_tokens,
            extra_rules=schema.extra_rules,
        )
    return Gateway(
        litestar,
        Authenticator(settings),
        limiter,
        protected=(InterviewSessionController.path,),
        graphql=compiled,
        max_body_bytes=settings.max_body_bytes,
        fix_options=allow_header_fixer(litestar),
    )


def create_app_from_env() -> Gateway:
    """Factory for uvicorn workers: settings from the environment. Workers are
    fresh processes, so logging is set up here too."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
