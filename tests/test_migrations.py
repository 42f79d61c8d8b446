"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from asgi_lifespan import LifespanManager
from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import downgrade, upgrade
from app.db.models import Base, in_models
from app.main import create_app
from tests.conftest import (
    PG_ADMIN_DSN,
    _pg_admin,
    _sqlalchemy_pg_url,
    bearer,
    make_settings,
    make_token,
    require_postgres,
)


async def test_migrated_schema_matches_the_models(db_url):
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):
                include = in_models(sync_conn.dialect.name)
                context = MigrationContext.configure(
                    sync_conn, opts={"compare_type": True, "include_object": include}
                )
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


# ---------------------------------------------------------------- 0001 -> 0002 on data


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request, tmp_path):
    """A database with no tables at all, of each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/old.db"
        return
    require_postgres()
    name = f"interview_old_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _sqlalchemy_pg_url(PG_ADMIN_DSN, name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _old_tables() -> tuple[sa.Table, sa.Table]:
    meta = sa.MetaData()
    json_doc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    sessions = sa.Table(
        "interview_sessions",
        meta,
        sa.Column("id", sa.Uuid()),
        sa.Column("user_id", sa.String(255)),
        sa.Column("job_context", json_doc),
        sa.Column("status", sa.String(16)),
        sa.Column("settings", json_doc),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
    )
    interactions = sa.Table(
        "interactions",
        meta,
        sa.Column("id", sa.Uuid()),
        sa.Column("session_id", sa.Uuid()),
        sa.Column("question", sa.Text()),
        sa.Column("question_classification", json_doc),
        sa.Column("generated_responses", json_doc),
        sa.Column("selected_response", sa.Text()),
        sa.Column("user_feedback", sa.Integer()),
        sa.Column("timestamp", sa.DateTime(timezone=True)),
    )
    return sessions, interactions


async def test_upgrading_a_populated_0001_database_fills_the_new_columns_and_downgrades(
    empty_db_url,
):
    url = empty_db_url
    await upgrade(url, "0001")
    sessions, interactions = _old_tables()
    when = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": "old-user",
            "job_context": {
                "title": f"Ingénieur {n}",
                "company": "ÉCOLE Systems",
                "description": "Remote" if n % 2 else None,
                "requirements": [],
                "interviewType": "technical" if n % 3 else None,
                "seniority": None,
            },
            "status": "active",
            "settings": {},
            "started_at": when,
            "ended_at": None,
            "created_at": when + timedelta(minutes=n),
        }
        for n in range(7)
    ]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(sessions), rows)
            await conn.execute(
                sa.insert(interactions),
                [
                    {
                        "id": uuid.uuid4(),
                        "session_id": rows[0]["id"],
                        "question": "Q",
                        "question_classification": {"type": "behavioral"} if k else None,
                        "generated_responses": [],
                        "selected_response": None,
                        "user_feedback": None,
                        "timestamp": when,
                    }
                    for k in range(3)
                ],
            )

        await upgrade(url, attributes={"backfill_batch": 3})  # 0001 -> head, in 3 batches
        async with engine.connect() as conn:
            got = (
                await conn.execute(
                    sa.text("SELECT interview_type, search_text FROM interview_sessions")
                )
            ).all()
            types = (await conn.execute(sa.text("SELECT question_type FROM interactions"))).all()
        assert sorted(got, key=str) == sorted(
            [
                (
                    r["job_context"]["interviewType"],
                    "\n".join(
                        (
                            r["job_context"]["title"],
                            "ÉCOLE Systems",
                            r["job_context"]["description"] or "",
                        )
                    ).lower(),
                )
                for r in rows
            ],
            key=str,
        )
        assert sorted(t[0] or "" for t in types) == ["", "behavioral", "behavioral"]

        # The application finds the old rows through the new columns.
        app = create_app(make_settings(url))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                headers = bearer(make_token("old-user"))
                r = await c.get("/interview-sessions", params={"q": "école"}, headers=headers)
                assert len(r.json()) == 7
                r = await c.get(
                    "/interview-sessions", params={"interviewType": "technical"}, headers=headers
                )
                assert len(r.json()) == 4
                r = await c.get("/interview-sessions/analytics", headers=headers)
                assert r.json()["mostCommonQuestionTypes"] == [{"type": "behavioral", "count": 2}]

        await downgrade(url, "0001")  # and back: the old revision works on the same data
        async with engine.begin() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("interview_sessions")}
            )
            assert "search_text" not in columns and "interview_type" not in columns
            await conn.execute(sa.insert(sessions), [{**rows[0], "id": uuid.uuid4()}])
            count = (
                await conn.execute(sa.text("SELECT count(*) FROM interview_sessions"))
            ).scalar()
            assert count == 8
    finally:
        await engine.dispose()
