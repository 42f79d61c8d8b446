"""The domain's rule tests run on the in-memory fakes of its ports; the few
tests about what the database does (cascades, aggregates) ask for
``sql_domain_service``, which runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.db.engine import Database
from app.domain.service import Service
from tests.conftest import FakeClock
from tests.domain.fakes import FakeBus, FakeDatabase


@pytest.fixture
def fake_db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def domain_service(
    fake_db: FakeDatabase, clock: FakeClock, settings_overrides: dict[str, Any]
) -> Service:
    limit = settings_overrides.get("max_active_sessions", Settings().max_active_sessions)
    return Service.build(fake_db, max_active_sessions=limit, clock=clock)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def bussed_service(fake_db: FakeDatabase, clock: FakeClock, bus: FakeBus) -> Service:
    """The service with an event bus: its writes wake subscribers, it can stream."""
    return Service.build(fake_db, max_active_sessions=100, bus=bus, clock=clock)


@pytest.fixture
def sql_domain_service(database: Database, settings: Settings, clock: FakeClock) -> Service:
    return Service.build(database, max_active_sessions=settings.max_active_sessions, clock=clock)
