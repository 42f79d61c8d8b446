"""A tiny client so end-to-end tests read as user stories."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer, make_token

JOB = {"title": "Software Engineer", "company": "Tech Corp"}


class Api:
    def __init__(self, client: httpx.AsyncClient, user: str) -> None:
        self.client = client
        self.user = user
        self.headers = bearer(make_token(user))

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def create_session(self, **body: Any) -> httpx.Response:
        body.setdefault("jobContext", JOB)
        return await self.request("POST", "/interview-sessions", json=body)

    async def new_session(self, **body: Any) -> dict[str, Any]:
        r = await self.create_session(**body)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def add_interaction(self, session_id: str, **body: Any) -> httpx.Response:
        body.setdefault("question", "Tell me about yourself")
        return await self.request(
            "POST", "/interview-sessions/interactions", json={"sessionId": session_id, **body}
        )

    async def record_metrics(self, session_id: str, **body: Any) -> httpx.Response:
        return await self.request(
            "POST", "/interview-sessions/metrics", json={"sessionId": session_id, **body}
        )

    async def status(self, session_id: str, action: str) -> httpx.Response:
        return await self.request("PUT", f"/interview-sessions/{session_id}/{action}")

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.request(
            "POST", "/graphql", json={"query": query, "variables": variables or {}}
        )
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data
