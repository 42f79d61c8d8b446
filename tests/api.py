"""A tiny client so end-to-end tests read as user stories."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import interactions_table, metrics_table, sessions_table
from tests.conftest import bearer, make_token

JOB = {"title": "Software Engineer", "company": "Tech Corp"}

# The spec's example bodies, used verbatim where a test wants "the documented request".
FULL_JOB = {
    "title": "Software Engineer",
    "company": "Tech Corp",
    "description": "Full-stack development role",
    "requirements": ["JavaScript", "React", "Node.js"],
    "interviewType": "technical",
    "seniority": "mid",
}
FULL_SETTINGS = {
    "transcriptionEnabled": False,
    "responseGeneration": False,
    "confidenceThreshold": 0.65,
    "preferredLanguage": "de",
    "enabledFeatures": ["real-time-transcription"],
}
DEFAULT_SETTINGS = {
    "transcriptionEnabled": True,
    "responseGeneration": True,
    "confidenceThreshold": 0.8,
    "preferredLanguage": "en",
    "enabledFeatures": ["real-time-transcription", "response-suggestions"],
}
JOB_WITH_DEFAULTS = {
    **JOB,
    "description": None,
    "requirements": [],
    "interviewType": None,
    "seniority": None,
}
CLASSIFICATION = {
    "type": "technical",
    "category": "frontend",
    "difficulty": "mid",
    "requiresSTAR": False,
}
RESPONSE = {
    "id": "response-1",
    "content": "I have 3 years of experience with React...",
    "structure": "direct",
    "estimatedDuration": 45,
    "confidence": 0.9,
    "tags": ["experience", "technical"],
}

SESSION_FIELDS = {
    "id",
    "userId",
    "jobContext",
    "status",
    "settings",
    "startedAt",
    "endedAt",
    "createdAt",
}
INTERACTION_FIELDS = {
    "id",
    "sessionId",
    "question",
    "questionClassification",
    "generatedResponses",
    "selectedResponse",
    "userFeedback",
    "timestamp",
}
METRIC_FIELDS = {
    "id",
    "sessionId",
    "transcriptionLatencyMs",
    "responseGenerationMs",
    "totalLatencyMs",
    "transcriptionAccuracy",
    "userSatisfaction",
    "createdAt",
}

# RFC 3339, UTC, `Z` suffix, fractions allowed.
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$")
INVALID_UUID = "Validation failed (uuid is expected)"
SESSION_NOT_FOUND = "Interview session not found"
INTERACTION_NOT_FOUND = "Interaction not found"
ACCESS_DENIED = "Access denied to this session"
UNAUTHORIZED = {"statusCode": 401, "message": "Unauthorized", "error": "Unauthorized"}


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError, AttributeError):
        return False


def is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and RFC3339_UTC.match(value) is not None


def error(status: int, message: str | list[str]) -> dict[str, Any]:
    """The contract's error body."""
    reasons = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        413: "Request Entity Too Large",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    if not isinstance(message, str):  # several problems: one string, joined
        message = "; ".join(message)
    return {"statusCode": status, "message": message, "error": reasons[status]}


def assert_error(r: httpx.Response, status: int, message: str | list[str]) -> None:
    assert (r.status_code, r.json()) == (status, error(status, message)), r.text


def messages_of(r: httpx.Response) -> list[str]:
    body = r.json()
    message = body["message"]
    assert isinstance(message, str), body  # always one string
    return message.split("; ")


def assert_field_error(r: httpx.Response, field: str, detail: str | None = None) -> None:
    """400 in the error format, with a message that names ``field`` (``field: ...``)."""
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"statusCode", "message", "error"}, body
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"
    found = [m for m in messages_of(r) if m.startswith(f"{field}: ")]
    assert found, f"no message names {field!r}: {body['message']!r}"
    if detail is not None:
        assert any(detail in m for m in found), f"{detail!r} not in {found!r}"


def random_id() -> str:
    return str(uuid.uuid4())


async def stored_rows(engine: AsyncEngine, session_id: str) -> dict[str, int]:
    """Rows each table holds for a session, read straight from the database (not the API)."""
    sid = uuid.UUID(session_id)
    counts: dict[str, int] = {}
    async with engine.connect() as conn:
        for name, table, column in (
            ("sessions", sessions_table, sessions_table.c.id),
            ("interactions", interactions_table, interactions_table.c.session_id),
            ("metrics", metrics_table, metrics_table.c.session_id),
        ):
            stmt = select(func.count()).select_from(table).where(column == sid)
            counts[name] = int((await conn.execute(stmt)).scalar_one())
    return counts


async def stored_session(engine: AsyncEngine, session_id: str) -> dict[str, Any] | None:
    """The session's row as stored, read straight from the database."""
    stmt = select(sessions_table).where(sessions_table.c.id == uuid.UUID(session_id))
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).mappings().first()
    return None if row is None else dict(row)


class Api:
    def __init__(self, client: httpx.AsyncClient, user: str) -> None:
        self.client = client
        self.user = user
        self.headers = bearer(make_token(user))

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    # ---------------------------------------------------------------- sessions

    async def create_session(self, **body: Any) -> httpx.Response:
        body.setdefault("jobContext", JOB)
        return await self.request("POST", "/interview-sessions", json=body)

    async def new_session(self, **body: Any) -> dict[str, Any]:
        r = await self.create_session(**body)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def list_sessions(self, **params: Any) -> httpx.Response:
        return await self.request("GET", "/interview-sessions", params=params)

    async def active(self) -> httpx.Response:
        return await self.request("GET", "/interview-sessions/active")

    async def get(self, session_id: str) -> httpx.Response:
        return await self.request("GET", f"/interview-sessions/{session_id}")

    async def details(self, session_id: str) -> httpx.Response:
        return await self.request("GET", f"/interview-sessions/{session_id}/details")

    async def update(self, session_id: str, body: Any) -> httpx.Response:
        return await self.request("PUT", f"/interview-sessions/{session_id}", json=body)

    async def delete(self, session_id: str) -> httpx.Response:
        return await self.request("DELETE", f"/interview-sessions/{session_id}")

    async def status(self, session_id: str, action: str) -> httpx.Response:
        return await self.request("PUT", f"/interview-sessions/{session_id}/{action}")

    async def set_status(self, session_id: str, action: str) -> dict[str, Any]:
        r = await self.status(session_id, action)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    # ---------------------------------------------------------------- interactions

    async def add_interaction(self, session_id: str, **body: Any) -> httpx.Response:
        body.setdefault("question", "Tell me about yourself")
        return await self.request(
            "POST", "/interview-sessions/interactions", json={"sessionId": session_id, **body}
        )

    async def new_interaction(self, session_id: str, **body: Any) -> dict[str, Any]:
        r = await self.add_interaction(session_id, **body)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def interactions(self, session_id: str) -> httpx.Response:
        return await self.request("GET", f"/interview-sessions/{session_id}/interactions")

    async def update_interaction(self, interaction_id: str, body: Any) -> httpx.Response:
        return await self.request(
            "PUT", f"/interview-sessions/interactions/{interaction_id}", json=body
        )

    # ---------------------------------------------------------------- metrics

    async def record_metrics(self, session_id: str, **body: Any) -> httpx.Response:
        return await self.request(
            "POST", "/interview-sessions/metrics", json={"sessionId": session_id, **body}
        )

    async def new_metric(self, session_id: str, **body: Any) -> dict[str, Any]:
        r = await self.record_metrics(session_id, **body)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def metrics(self, session_id: str) -> httpx.Response:
        return await self.request("GET", f"/interview-sessions/{session_id}/metrics")

    # ---------------------------------------------------------------- analytics

    async def analytics(self, **params: Any) -> httpx.Response:
        return await self.request("GET", "/interview-sessions/analytics", params=params)

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.request(
            "POST", "/graphql", json={"query": query, "variables": variables or {}}
        )
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data
