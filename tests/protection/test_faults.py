"""Faults: the database goes away, comes back, or never answers.

A small TCP proxy sits between the app and PostgreSQL so a test can cut the
database off (and restore it) without touching the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.api import Api
from tests.conftest import make_settings, require_postgres


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.blackhole = False
        self.stalled = False  # open connections stop carrying data (both ways)
        self.accepted = 0  # connections the "database" was asked for
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.blackhole:
            self.pipes.add(asyncio.current_task())  # type: ignore[arg-type]
            await asyncio.sleep(3600)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    while self.stalled:
                        await asyncio.sleep(0.05)
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        tasks = {
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        }
        self.pipes |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)

    async def cut(self) -> None:
        """Stop listening and drop every open connection: the database is 'down'."""
        assert self.server is not None
        self.server.close()
        for w in self.writers:  # reset both sides, as a crashed server would
            w.transport.abort()
        self.writers.clear()
        for t in list(self.pipes):
            t.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        self.pipes.clear()
        await self.server.wait_closed()

    async def stop(self) -> None:
        await self.cut()


@pytest.fixture
async def pg_proxy(pg_db_url):
    """PostgreSQL only: SQLite is a file, it cannot become unreachable."""
    proxy = Proxy(5432)
    await proxy.start()
    yield proxy, pg_db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    with contextlib.suppress(Exception):
        await proxy.stop()


@contextlib.asynccontextmanager
async def app_client(url: str, **overrides):
    # No subscriber here, so the event bus opens no connection of its own
    # (LISTEN): the proxy's connections are the requests' alone.
    application = create_app(make_settings(url, **overrides))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_database_down_gives_503_and_recovers(pg_proxy, new_user):
    proxy, url = pg_proxy
    async with app_client(url, db_pool_timeout=2, db_connect_timeout=2) as client:
        api = Api(client, new_user())
        s = await api.new_session()
        assert (await client.get("/health")).json() == {"status": "ok", "database": "ok"}

        await proxy.cut()
        r = await api.request("GET", f"/interview-sessions/{s['id']}")
        assert r.status_code == 503
        assert r.json() == {
            "statusCode": 503,
            "message": "Service temporarily unavailable",
            "error": "Service Unavailable",
        }
        r = await api.request("POST", "/graphql", json={"query": "{ sessions { id } }"})
        assert r.status_code == 200
        assert r.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        h = await client.get("/health")
        assert h.status_code == 503 and h.json()["database"] == "unavailable"

        await proxy.start()  # the database is back, on the same port
        # For DB_BREAKER_SECONDS after the last failure, requests fail at once
        # (the circuit breaker); then the next one reaches the database again.
        r = await api.request("GET", f"/interview-sessions/{s['id']}")
        assert r.status_code == 503
        await asyncio.sleep(1.1)
        r = await api.request("GET", f"/interview-sessions/{s['id']}")
        assert r.status_code == 200 and r.json()["id"] == s["id"]
        assert (await client.get("/health")).json() == {"status": "ok", "database": "ok"}
        assert (await api.create_session()).status_code == 201


async def test_dropped_connections_are_replaced_without_an_error(pg_proxy, new_user):
    proxy, url = pg_proxy
    async with app_client(url) as client:
        api = Api(client, new_user())
        s = await api.new_session()
        # Kill every pooled connection, but keep the database reachable.
        await proxy.cut()
        await proxy.start()
        r = await api.request("GET", f"/interview-sessions/{s['id']}")
        assert r.status_code == 200


async def test_database_that_never_answers_gives_503(pg_proxy, new_user):
    proxy, url = pg_proxy
    proxy.blackhole = True
    async with app_client(url, db_connect_timeout=1, db_pool_timeout=1) as client:
        r = await Api(client, new_user()).request("GET", "/interview-sessions")
        assert r.status_code == 503
        assert r.json()["error"] == "Service Unavailable"


async def test_unreachable_url_gives_503(new_user):
    require_postgres()
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    async with app_client(url, db_connect_timeout=1) as client:
        r = await Api(client, new_user()).create_session()
        assert r.status_code == 503
        assert "Traceback" not in r.text
        h = await client.get("/health")
        assert h.status_code == 503


async def test_a_stalled_database_is_not_waited_for_twice(pg_proxy, new_user):
    """A GraphQL query whose plan meets a stalled database is answered by the
    standard executor, which does not try the database again: the circuit
    breaker is open. One connection attempt, not two; the same for the REST
    request that follows."""
    proxy, url = pg_proxy
    async with app_client(url, db_connect_timeout=1, db_pool_timeout=1) as client:
        api = Api(client, new_user())
        proxy.blackhole = True
        proxy.accepted = 0
        r = await api.request("POST", "/graphql", json={"query": "{ sessions { id } }"})
        assert r.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert proxy.accepted == 1
        r = await api.request("GET", "/interview-sessions")
        assert r.status_code == 503
        assert proxy.accepted == 1


async def test_a_stalled_database_answers_503_within_the_command_timeout(pg_proxy, new_user):
    """Connections stay open but nothing comes back: each request answers 503
    within DB_COMMAND_TIMEOUT plus a second, and the service recovers after."""
    import time

    proxy, url = pg_proxy
    async with app_client(url, db_command_timeout=2) as client:
        api = Api(client, new_user())
        s = await api.new_session()
        proxy.stalled = True
        for _ in range(2):
            started = time.monotonic()
            r = await api.request("GET", f"/interview-sessions/{s['id']}")
            elapsed = time.monotonic() - started
            assert r.status_code == 503 and r.json()["error"] == "Service Unavailable"
            assert elapsed < 3, elapsed
        started = time.monotonic()
        body = (await api.request("POST", "/graphql", json={"query": "{ sessions { id } }"})).json()
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert time.monotonic() - started < 3  # the plan and its fallback: one wait
        proxy.stalled = False
        await asyncio.sleep(1.1)  # past DB_BREAKER_SECONDS, should it have opened
        r = await api.request("GET", f"/interview-sessions/{s['id']}")
        assert r.status_code == 200, r.text
