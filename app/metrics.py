"""Prometheus metrics (operations.md, "Metrics"): the fixed names and labels.

The objects below are ``prometheus-client``'s; every part of the service that
counts something imports them from here. Labels stay few: routes are
templates (``unmatched`` for an unknown path), GraphQL operation names are
the client's ``operationName`` cut to 64 characters, at most 200 distinct per
process, then ``other``.

With several server processes (``--workers``) the CLI points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start:
each process writes its values there and a scrape of any of them sums all
(prometheus-client's multiprocess mode). ``GET /metrics`` answers the text
format 0.0.4; with ``METRICS_TOKEN`` set it asks for that bearer token.
"""

from __future__ import annotations

import hmac
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from app.context import error_bytes

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: fewer lines per scrape

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of its body)",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRAPHQL_OPERATIONS = Counter(
    "graphql_operations_total",
    "GraphQL operations executed, over HTTP and WebSocket",
    ["type", "name", "outcome"],
)
RATE_LIMITED = Counter("rate_limited_total", "Requests and operations refused by the rate limit")
IDEMPOTENT_REPLAYS = Counter(
    "idempotent_replays_total", "Keyed writes answered with their stored answer"
)
LIVE_SUBSCRIPTIONS = Gauge(
    "live_subscriptions",
    "WebSocket subscriptions and SSE streams open",
    multiprocess_mode="livesum",
)
LIVE_EVENTS_DELIVERED = Counter(
    "live_events_delivered_total", "Live events sent to subscribers and SSE streams"
)
# Not in operations.md's fixed list (an addition, not a change): which of a
# route's execution paths answered (README "Which path answers a request").
ANSWERS_BY_STRATEGY = Counter(
    "http_answers_by_strategy_total",
    "Answers by the execution path that wrote them (GraphQL: compiled, compiled+standard,"
    " standard; fast REST reads: fast, standard) and whether a fast path declined first",
    ["route", "strategy", "fallback"],
)
DB_POOL_CONNECTIONS = Gauge(
    "db_pool_connections",
    "Database connections of this service, by state",
    ["state"],
    multiprocess_mode="livesum",
)

_http: dict[tuple[str, str, int | str], tuple[Any, Any]] = {}
_strategies: dict[tuple[str, str, bool], Any] = {}


def http(
    method: str, route: str, status: int | str, duration: float, state: dict[str, Any] | None = None
) -> None:
    """Count one answer (the label children are looked up once per label set:
    ``labels()`` costs more than the increment), and the path that wrote it
    when one of several could (``state["strategy"]``)."""
    key = (method, route, status)
    children = _http.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_DURATION.labels(method, route),
        )
        if len(_http) < 10_000:  # routes and statuses are few; never unbounded
            _http[key] = children
    children[0].inc()
    children[1].observe(duration)
    if state:
        strategy = state.get("strategy")
        if strategy is not None:
            count_strategy(route, strategy, "fallback" in state)


def count_strategy(route: str, strategy: str, fell_back: bool) -> None:
    """One answer of ``route`` written by ``strategy`` (the fallback's reason is
    the access log's: free text, so the label only says whether there was one)."""
    key = (route, strategy, fell_back)
    child = _strategies.get(key)
    if child is None:
        child = ANSWERS_BY_STRATEGY.labels(route, strategy, "yes" if fell_back else "no")
        if len(_strategies) < 1_000:  # a few routes times a few strategies
            _strategies[key] = child
    child.inc()


MAX_OPERATION_NAMES = 200
_names: set[str] = set()


def operation_name(name: str | None) -> str:
    """The ``name`` label of a GraphQL operation: bounded."""
    if not name:
        return ""
    name = name[:64]
    if name in _names:
        return name
    if len(_names) >= MAX_OPERATION_NAMES:
        return "other"
    _names.add(name)
    return name


_operations: dict[tuple[str, str | None, bool], Any] = {}


def count_operation(kind: str | None, name: str | None, ok: bool) -> None:
    if kind is None:
        return
    key = (kind, name, ok)
    child = _operations.get(key)
    if child is None:
        child = GRAPHQL_OPERATIONS.labels(kind, operation_name(name), "ok" if ok else "error")
        if len(_operations) < 4 * MAX_OPERATION_NAMES:
            _operations[key] = child
    child.inc()


def exposition(multiprocess_dir: str | None) -> bytes:
    if multiprocess_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class MetricsEndpoint:
    """``GET /metrics``: an ASGI app of its own (the pipeline routes to it, never
    rate limited, not in the OpenAPI document)."""

    def __init__(
        self, token: str | None, multiprocess_dir: str | None, refresh: Any = None
    ) -> None:
        self.token = token.encode() if token else None
        self.multiprocess_dir = multiprocess_dir
        self.refresh = refresh  # called before each scrape (the pool gauges)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, error_bytes(405, "Method Not Allowed"), b"application/json")
            return
        if self.token is not None and not self._authorized(scope):
            await _answer(send, 401, error_bytes(401, "Unauthorized"), b"application/json")
            return
        if self.refresh is not None:
            self.refresh()
        body = exposition(self.multiprocess_dir)
        await _answer(send, 200, body, CONTENT_TYPE_PLAIN_0_0_4.encode())

    def _authorized(self, scope: dict[str, Any]) -> bool:
        assert self.token is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self.token
                )
        return False


async def _answer(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
