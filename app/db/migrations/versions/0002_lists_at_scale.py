"""Lists at scale: derived columns for filters and search, keyset indexes.

* ``interview_sessions.interview_type`` and ``.search_text`` (title, company
  and description, lower case), ``interactions.question_type``: real columns,
  indexed, written by the application from the JSON it stores; filled here
  for rows that exist already, in batches.
* Keyset indexes ``(user_id[, status|interview_type], created_at, id)``,
  ``(session_id, timestamp, id)``, ``(session_id, created_at, id)`` replace the
  ones without the ``id`` tie-breaker; ``(session_id, question_type)`` serves
  the analytics; a trigram index serves ``LIKE '%term%'`` on PostgreSQL.

The downgrade drops all of it and restores revision 0001's indexes; the data
itself is untouched either way.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def _json(value: Any) -> dict[str, Any]:
    """A JSON column's object; {} for SQL NULL and for JSON null (older rows)."""
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _search_text(job: dict[str, Any]) -> str:
    # As app.db.repositories derives it: the same text whatever wrote the row.
    parts = (job.get("title") or "", job.get("company") or "", job.get("description") or "")
    return "\n".join(parts).lower()


def _backfill(table: str, read: str, derive: Any, columns: tuple[str, ...]) -> None:
    bind = op.get_bind()
    config = op.get_context().config
    batch = config.attributes.get("backfill_batch", BATCH) if config is not None else BATCH
    t = sa.table(table, sa.column("id", sa.Uuid()), *(sa.column(c) for c in columns))
    update = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("row_id"))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
    )
    last = None
    while True:
        where = "" if last is None else "WHERE id > :last "
        query = sa.text(f"SELECT id, {read} FROM {table} {where}ORDER BY id LIMIT {batch}")
        if last is not None:
            query = query.bindparams(sa.bindparam("last", last, type_=sa.Uuid()))
        rows = bind.execute(query.columns(id=sa.Uuid())).all()
        if not rows:
            return
        bind.execute(
            update,
            [
                {"row_id": row[0], **{f"v_{c}": v for c, v in zip(columns, derive(row[1]))}}
                for row in rows
            ],
        )
        last = rows[-1][0]


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.add_column("interview_sessions", sa.Column("interview_type", sa.String(16), nullable=True))
    op.add_column("interview_sessions", sa.Column("search_text", sa.Text(), nullable=True))
    op.add_column("interactions", sa.Column("question_type", sa.String(16), nullable=True))

    def session_values(raw: Any) -> tuple[Any, ...]:
        job = _json(raw)
        return job.get("interviewType"), _search_text(job)

    def interaction_values(raw: Any) -> tuple[Any, ...]:
        return (_json(raw).get("type"),)

    _backfill("interview_sessions", "job_context", session_values, ("interview_type", "search_text"))
    _backfill("interactions", "question_classification", interaction_values, ("question_type",))

    op.drop_index("ix_interview_sessions_user_created", table_name="interview_sessions")
    op.drop_index("ix_interview_sessions_user_status", table_name="interview_sessions")
    op.drop_index("ix_interactions_session_timestamp", table_name="interactions")
    op.drop_index("ix_session_metrics_session_created", table_name="session_metrics")
    op.create_index(
        "ix_interview_sessions_user_created_id",
        "interview_sessions",
        ["user_id", "created_at", "id"],
    )
    op.create_index(
        "ix_interview_sessions_user_status_created",
        "interview_sessions",
        ["user_id", "status", "created_at", "id"],
    )
    op.create_index(
        "ix_interview_sessions_user_type_created",
        "interview_sessions",
        ["user_id", "interview_type", "created_at", "id"],
    )
    op.create_index(
        "ix_interactions_session_timestamp_id", "interactions", ["session_id", "timestamp", "id"]
    )
    op.create_index("ix_interactions_session_type", "interactions", ["session_id", "question_type"])
    op.create_index(
        "ix_session_metrics_session_created_id",
        "session_metrics",
        ["session_id", "created_at", "id"],
    )
    if pg:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_interview_sessions_search_trgm",
            "interview_sessions",
            ["search_text"],
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.drop_index("ix_interview_sessions_search_trgm", table_name="interview_sessions")
    op.drop_index("ix_session_metrics_session_created_id", table_name="session_metrics")
    op.drop_index("ix_interactions_session_type", table_name="interactions")
    op.drop_index("ix_interactions_session_timestamp_id", table_name="interactions")
    op.drop_index("ix_interview_sessions_user_type_created", table_name="interview_sessions")
    op.drop_index("ix_interview_sessions_user_status_created", table_name="interview_sessions")
    op.drop_index("ix_interview_sessions_user_created_id", table_name="interview_sessions")
    op.drop_column("interactions", "question_type")
    op.drop_column("interview_sessions", "search_text")
    op.drop_column("interview_sessions", "interview_type")
    op.create_index(
        "ix_session_metrics_session_created", "session_metrics", ["session_id", "created_at"]
    )
    op.create_index("ix_interactions_session_timestamp", "interactions", ["session_id", "timestamp"])
    op.create_index("ix_interview_sessions_user_status", "interview_sessions", ["user_id", "status"])
    op.create_index(
        "ix_interview_sessions_user_created", "interview_sessions", ["user_id", "created_at"]
    )
