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
from app.db.models import Base, in_models

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    dialect = connection.dialect.name
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=dialect == "sqlite",
        compare_type=True,
        include_object=in_models(dialect),
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
