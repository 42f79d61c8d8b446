"""Apply Alembic migrations, safely when several server instances start at once.

PostgreSQL: a session-level advisory lock around the upgrade. SQLite: an
exclusive file lock beside the database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import ConfigError
from app.db import search_index
from app.db.sqlite import database_path

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 4_711_2026


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@contextlib.contextmanager
def _file_lock(database_url: str) -> Iterator[None]:
    if not database_url.startswith("sqlite"):
        yield
        return
    try:
        path = database_path(database_url)
    except ConfigError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".migrate.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _upgrade(connection: Connection, revision: str, attributes: dict[str, Any]) -> None:
    cfg = alembic_config()
    cfg.attributes.update(attributes)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)
    if connection.dialect.name == "sqlite":
        search_index.repair(
            lambda sql: list(connection.exec_driver_sql(sql)), connection.exec_driver_sql
        )


def _downgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def downgrade(database_url: str, revision: str) -> None:
    """Back to ``revision`` (operators and the migration tests; never automatic)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, revision)
            await conn.commit()
    finally:
        await engine.dispose()


async def upgrade(
    database_url: str, revision: str = "head", attributes: dict[str, Any] | None = None
) -> None:
    """Migrate to ``revision``. ``attributes`` reach the migrations (tests set
    a small ``backfill_batch`` to exercise batching on a few rows)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            is_pg = conn.dialect.name == "postgresql"
            if is_pg:
                await conn.execute(text(f"SELECT pg_advisory_lock({_PG_LOCK_KEY})"))
                await conn.commit()
            try:
                await conn.run_sync(_upgrade, revision, attributes or {})
                await conn.commit()
            finally:
                if is_pg:
                    await conn.execute(text(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})"))
                    await conn.commit()
    finally:
        await engine.dispose()


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    with _file_lock(database_url):
        asyncio.run(upgrade(database_url, revision))


def head_revision() -> str:
    """The revision the code's migrations end at."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


_CURRENT = text("SELECT version_num FROM alembic_version")


async def current_revision(db: Any) -> str | None:
    """The revision the database is at (None: never migrated), read like any
    other read of the service (the same pools, breaker and deadlines)."""

    async def work(uow: Any) -> str | None:
        rows = await uow.ex.rows(_CURRENT, {})
        return str(rows[0]["version_num"]) if rows else None

    result: str | None = await db.read(work)
    return result
