"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import upgrade
from app.db.models import Base


async def test_migrated_schema_matches_the_models(db_url):
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata)

            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent_and_keeps_data(db_url, client, new_user):
    from tests.api import Api

    api = Api(client, new_user())
    created = await api.new_session()
    await upgrade(db_url)  # already at head: a no-op, nothing lost
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert {"interview_sessions", "interactions", "session_metrics", "alembic_version"} <= tables
    r = await api.request("GET", f"/interview-sessions/{created['id']}")
    assert r.status_code == 200
