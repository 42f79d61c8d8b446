"""OpenTelemetry traces (operations.md, "Traces"), on when the standard
``OTEL_*`` variables name an OTLP endpoint; otherwise nothing here runs.

* One span per HTTP request and WebSocket connection, from
  ``opentelemetry-instrumentation-asgi`` (:func:`wrap`): an incoming W3C
  ``traceparent`` is continued; the pipeline renames the span to the route
  template when the answer is known (:func:`name_request`), and an
  ``access_token`` in the query string is recorded as ``***``.
* One span per GraphQL operation (:func:`operation`): ``graphql.operation.name``
  and ``graphql.operation.type``.
* One span per database statement (:func:`statement`), started by the
  executors (app/db/executor.py) around the driver's call: ``db.system``
  (``postgresql`` or ``sqlite``) and the statement's text, never its values
  (they are bind parameters). The service's statements run on raw asyncpg and
  ``sqlite3`` connections, which SQLAlchemy's instrumentation does not see.

The SDK reads the rest of the configuration itself: the endpoint, the protocol
(``http/protobuf`` or ``grpc``), headers, the sampler (``OTEL_TRACES_SAMPLER``),
resource attributes; ``OTEL_SERVICE_NAME`` defaults to ``interview-api``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from app import logs
from app.access import path_of

enabled = False
_tracer: Any = trace.get_tracer("app")
_provider: Any = None


def configure(protocol: str, service_name: str | None) -> None:
    """Install the SDK's tracer provider with an OTLP exporter (once per process)."""
    global enabled, _tracer, _provider
    if enabled:
        return
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter()
    # OTEL_SERVICE_NAME (read by the SDK) wins over this default.
    attributes = {} if service_name else {SERVICE_NAME: "interview-api"}
    _provider = TracerProvider(resource=Resource.create(attributes))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)
    _tracer = trace.get_tracer("app")
    enabled = True
    logs.tracing_on = True


def shutdown() -> None:
    """Export what is left (at the process's end)."""
    if _provider is not None:
        _provider.shutdown()


def _request_hook(span: Any, scope: dict[str, Any]) -> None:
    if span is None or not span.is_recording():
        return
    if scope.get("query_string"):
        masked = path_of(scope)
        span.set_attribute("http.target", masked)
        span.set_attribute("url.query", masked.partition("?")[2])
        span.set_attribute("http.url", masked)
        span.set_attribute("url.full", masked)


def _span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return str(scope.get("method") or "WS"), {}


def wrap(app: Any) -> Any:
    """The ASGI app inside a request span (continuing the caller's trace)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(
        app,
        default_span_details=_span_details,
        server_request_hook=_request_hook,
        exclude_spans=["receive", "send"],
    )


def name_request(method: str, route: str) -> None:
    """Name the current request span after its route template."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


@contextlib.contextmanager
def operation(name: str | None, kind: str) -> Iterator[None]:
    attributes = {"graphql.operation.type": kind}
    if name:
        attributes["graphql.operation.name"] = name
    with _tracer.start_as_current_span(
        f"{kind} {name}" if name else kind, kind=SpanKind.INTERNAL, attributes=attributes
    ):
        yield


def statement(system: str, sql: str) -> Any:
    """A span around one statement (a context manager)."""
    return _tracer.start_as_current_span(
        sql.split(None, 1)[0].upper() if sql else "statement",
        kind=SpanKind.CLIENT,
        attributes={"db.system": system, "db.statement": sql, "db.query.text": sql},
    )
