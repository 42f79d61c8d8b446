"""A small graphql-transport-ws client over a real socket, and SSE reading."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"
MY_EVENTS = """subscription($after: String) { myEvents(after: $after) {
  cursor type sessionId at session { id status } interaction { id question } metric { id } } }"""
SESSION_EVENTS = """subscription($id: ID!, $after: String) {
  sessionEvents(sessionId: $id, after: $after) { cursor type sessionId } }"""


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))  # type: ignore[no-any-return]

    async def init(self, token: str | None, key: str = "Authorization") -> dict[str, Any]:
        await self.send(
            {"type": "connection_init", "payload": {key: f"Bearer {token}"} if token else {}}
        )
        return await self.recv()

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def closed(self, timeout: float = 10) -> tuple[int | None, str]:
        """Wait for the server to close; (code, reason)."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else "")


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/graphql"


def socket(
    base: str, headers: dict[str, str] | None = None, protocols: list[str] | None = None
) -> Any:
    return connect(
        ws_url(base),
        subprotocols=protocols if protocols is not None else [PROTOCOL],  # type: ignore[arg-type]
        additional_headers=headers or {},
        open_timeout=10,
    )


async def sse_events(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], count: int, timeout: float = 15
) -> AsyncIterator[dict[str, Any]]:
    """Parse an SSE stream: yields {"id", "event", "data"} or {"comment"}."""
    async with client.stream(
        "GET", path, headers={**headers, "accept": "text/event-stream"}, timeout=timeout
    ) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["x-accel-buffering"] == "no"  # a proxy passes each event on at once
        message: dict[str, Any] = {}
        async for line in r.aiter_lines():
            if line == "":
                if message:
                    yield message
                    message = {}
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                message.setdefault("comment", value)
            elif field == "data":
                message["data"] = json.loads(value)
            else:
                message[field] = value
