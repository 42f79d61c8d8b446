"""GET and HEAD /health: no auth, not rate limited; 503 when the database does
not answer. HEAD (load balancers' probes) answers the same status, no body."""

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


@get("/health", summary="Liveness and database check", tags=["health"])
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


@head("/health", summary="Liveness and database check, status only", tags=["health"])
async def health_head(request: Request[Any, Any, Any]) -> Response[None]:
    service: Service = request.app.state.service
    return Response(None, status_code=200 if await service.healthy() else 503)
