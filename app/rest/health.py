"""Probes: no auth, not rate limited.

* ``GET``/``HEAD /health``: liveness; 503 when the database does not answer.
* ``GET``/``HEAD /ready``: readiness (operations.md); 200 ``{"status": "ready"}``
  when the database answers, its migrations are at head and the process is not
  draining, else 503 ``{"status": "not ready", "reason": "..."}``.

HEAD (load balancers' probes) answers the same status, no body."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get, head

from app.domain.service import Service


class Health(msgspec.Struct):
    status: str
    database: str


class Unhealthy(msgspec.Struct):
    """The error body, plus the health fields."""

    statusCode: int
    message: str
    error: str
    status: str
    database: str


@get("/health", summary="Liveness and database check", tags=["health"], operation_id="health")
async def health(request: Request[Any, Any, Any]) -> Response[Health | Unhealthy]:
    service: Service = request.app.state.service
    if await service.healthy():
        return Response(Health(status="ok", database="ok"), media_type=MediaType.JSON)
    return Response(
        Unhealthy(
            statusCode=503,
            message="Database unavailable",
            error="Service Unavailable",
            status="unavailable",
            database="unavailable",
        ),
        status_code=503,
        media_type=MediaType.JSON,
    )


@head(
    "/health",
    summary="Liveness and database check, status only",
    tags=["health"],
    operation_id="healthHead",
)
async def health_head(request: Request[Any, Any, Any]) -> Response[None]:
    service: Service = request.app.state.service
    return Response(None, status_code=200 if await service.healthy() else 503)


class Ready(msgspec.Struct):
    status: str


class NotReady(msgspec.Struct):
    """The error body, plus the readiness fields."""

    statusCode: int
    message: str
    error: str
    status: str
    reason: str


async def _reason(request: Request[Any, Any, Any]) -> str | None:
    reason: str | None = await request.app.state.ready()
    return reason


@get(
    "/ready",
    summary="Readiness: database, migrations, not draining",
    tags=["health"],
    operation_id="ready",
)
async def ready(request: Request[Any, Any, Any]) -> Response[Ready | NotReady]:
    reason = await _reason(request)
    if reason is None:
        return Response(Ready(status="ready"), media_type=MediaType.JSON)
    return Response(
        NotReady(
            statusCode=503,
            message=f"Not ready: {reason}",
            error="Service Unavailable",
            status="not ready",
            reason=reason,
        ),
        status_code=503,
        media_type=MediaType.JSON,
    )


@head("/ready", summary="Readiness, status only", tags=["health"], operation_id="readyHead")
async def ready_head(request: Request[Any, Any, Any]) -> Response[None]:
    return Response(None, status_code=200 if await _reason(request) is None else 503)
