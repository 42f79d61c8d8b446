"""Two apps on one database: compiled plans on, and off (the standard executor)."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.conftest import make_settings


@pytest.fixture
async def two_apps(db_url):
    fast = create_app(make_settings(db_url))
    slow = create_app(make_settings(db_url, graphql_compiled=False))
    async with LifespanManager(fast), LifespanManager(slow):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://t")
            for a in (fast, slow)
        ]
        async with clients[0], clients[1]:
            yield (fast, clients[0]), (slow, clients[1])
    assert fast.graphql.mismatches == []
