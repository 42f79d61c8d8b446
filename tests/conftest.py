"""Fixtures: one database fixture parametrised over SQLite and PostgreSQL.

Every test that asks for ``db_url`` (directly or through ``app``/``client``/
``service``) runs twice, once per backend, each time on a database of its own:
SQLite gets a copy of a migrated template file, PostgreSQL a fresh database
created from a migrated template database. Tests can run in any order.

Without a reachable PostgreSQL the PostgreSQL half is skipped with a reason;
with REQUIRE_POSTGRES=1 (CI) it fails instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.records import Principal
from app.domain.service import Service
from app.main import create_app

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
PG_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REQUIRE_REDIS = os.environ.get("REQUIRE_REDIS") == "1"


def _sqlalchemy_pg_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


# ---------------------------------------------------------------- PostgreSQL availability


def _postgres_problem() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()

    problem: list[str] = []

    def run() -> None:  # in a thread of its own: callers may be inside an event loop
        try:
            asyncio.run(probe())
        except Exception as exc:
            problem.append(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc!r}")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return problem[0] if problem else None


_PG_PROBLEM: str | None = None
_PG_CHECKED = False


def postgres_problem() -> str | None:
    global _PG_PROBLEM, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_PROBLEM = _postgres_problem()
        _PG_CHECKED = True
    return _PG_PROBLEM


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"REQUIRE_POSTGRES=1 but {problem}", pytrace=False)
    pytest.skip(f"{problem} (set REQUIRE_POSTGRES=1 to make this a failure)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs a server, so ``make test-fast`` can leave it out."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("db_url") == "postgres"
        if on_postgres or fixtures & {"pg_db_url", "pg_template", "pg_proxy"}:
            item.add_marker(pytest.mark.postgres)
        if "redis" in item.nodeid.lower():
            item.add_marker(pytest.mark.redis)


def pytest_report_header(config: pytest.Config) -> str:
    problem = postgres_problem()
    if problem is None:
        return f"PostgreSQL: {PG_ADMIN_DSN} (tests run on SQLite and PostgreSQL)"
    return f"PostgreSQL: UNAVAILABLE, its tests will be skipped: {problem}"


# ---------------------------------------------------------------- templates


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    # Fold the WAL back into the main file so a plain copy is complete.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    require_postgres()
    name = f"interview_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(upgrade(_sqlalchemy_pg_url(PG_ADMIN_DSN, name)))
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _fresh_pg_database(template_name: str) -> Iterator[str]:
    name = f"interview_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    try:
        yield _sqlalchemy_pg_url(PG_ADMIN_DSN, name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_db_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, for tests about PostgreSQL only."""
    yield from _fresh_pg_database(pg_template)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of the parametrised backend, for this test only."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    yield from _fresh_pg_database(request.getfixturevalue("pg_template"))


@pytest.fixture
def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgres"


# ---------------------------------------------------------------- settings, app, client


def make_settings(db_url: str, **overrides: Any) -> Settings:
    base = Settings(
        database_url=db_url,
        jwt_secret=TEST_SECRET,
        rate_limits="100000/second",
        rate_limit_storage="memory://",
        # Every GraphQL document a test sends that a compiled plan answers is
        # replayed through the standard executor; ``app`` checks they agreed.
        graphql_verify_plans=True,
    )
    return base.with_overrides(**overrides) if overrides else base.validated()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def settings(db_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(db_url, **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application
    mismatches = application.graphql.mismatches
    assert mismatches == [], f"plan and standard executor disagreed: {mismatches[:3]}"


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def service(app: Any) -> Service:
    svc: Service = app.service
    return svc


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """A Database for service-level tests that do not need HTTP."""
    db = Database(settings)
    yield db
    await db.dispose()


# ---------------------------------------------------------------- tokens and users


def make_token(
    sub: str | None = "user-1",
    *,
    secret: str = TEST_SECRET,
    algorithm: str = "HS256",
    ttl: int = 3600,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now, "exp": now + ttl, **claims}
    if sub is not None:
        payload["sub"] = sub
    return jwt.encode(payload, secret, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def new_user() -> Callable[[], str]:
    """A fresh user id per call, so tests never share data by accident."""
    return lambda: f"user-{uuid.uuid4()}"


# ---------------------------------------------------------------- statement counting


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, statement: str) -> None:
        self.statements.append(statement)

    @property
    def queries(self) -> list[str]:
        """Statements that touch data (not BEGIN/COMMIT/pragmas)."""
        return [
            s
            for s in self.statements
            if s.lstrip().split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}
        ]


@pytest.fixture
def count_statements(service: Service) -> Iterator[StatementCounter]:
    """Every SQL statement the app sends, on the SQLAlchemy and the asyncpg path."""
    counter = StatementCounter()
    service.db.add_statement_listener(counter)
    yield counter
    service.db.remove_statement_listener(counter)


def as_principal(user_id: str) -> Principal:
    return Principal(user_id=user_id)


# ---------------------------------------------------------------- a clock the test controls


class FakeClock:
    """A settable UTC clock: ``Clock`` for the service (see app/domain/base.py)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


CLOCK_START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """Starts at 2024-01-01T10:00:00Z and moves only when the test says so."""
    return FakeClock(CLOCK_START)


@pytest.fixture
def app_clock(service: Service, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Inject ``clock`` into the app's service, so timestamps written over HTTP are known."""
    for part in (service.sessions, service.interactions, service.metrics, service.analytics):
        monkeypatch.setattr(part, "clock", clock)
    return clock


@pytest.fixture
def domain_service(database: Database, settings: Settings, clock: FakeClock) -> Service:
    """The domain service without HTTP, on its own database, with a controlled clock."""
    return Service.build(database, max_active_sessions=settings.max_active_sessions, clock=clock)
