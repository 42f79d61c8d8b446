"""The database behind the service's ports, chosen by ``DATABASE_URL``.

PostgreSQL (app/db/postgres.py) or the embedded SQLite default
(app/db/sqlite.py); both run units of work through the same repositories
(app/db/repositories.py), the same last rows (app/db/late.py), the same
transactions (app/db/transaction.py) and the same resilience
(app/db/resilience.py).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.postgres import PostgresDatabase
from app.db.sqlite import SqliteDatabase

AnyDatabase = PostgresDatabase | SqliteDatabase


def Database(settings: Settings, engine: AsyncEngine | None = None) -> AnyDatabase:
    """The database of ``settings.database_url`` (``engine``: SQLAlchemy's
    engine on it, for migrations and tools; made when not given)."""
    if settings.is_sqlite:
        return SqliteDatabase(settings, engine)
    return PostgresDatabase(settings, engine)


def make_engine(settings: Settings) -> AsyncEngine:
    """SQLAlchemy's engine on the configured database (migrations, tools, tests)."""
    if settings.is_sqlite:
        from app.db.sqlite import make_engine as sqlite_engine

        return sqlite_engine(settings)
    from app.db.postgres import make_engine as pg_engine

    return pg_engine(settings)
