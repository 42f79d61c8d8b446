"""Alembic environment, async, for SQLite and PostgreSQL.

Used two ways: `interview-api migrate` / `serve` hand over an open connection
(``config.attributes["connection"]``); the `alembic` CLI builds its own engine
from DATABASE_URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import load_settings
from app.db.models import Base

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    dialect = connection.dialect.name

    def for_this_dialect(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        # Indexes declared with ddl_if(dialect=...) exist on that database only.
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, dialect)

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=dialect == "sqlite",
        compare_type=True,
        include_object=for_this_dialect,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    url = load_settings().database_url
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(_configure)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")

connection = context.config.attributes.get("connection")
if connection is None:
    asyncio.run(_run_with_new_engine())
else:
    _configure(connection)
