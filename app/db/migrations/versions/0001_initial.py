"""Sessions, interactions and metrics.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "interview_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("job_context", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settings", JSON_DOC, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'completed')", name="ck_interview_sessions_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_interview_sessions"),
    )
    op.create_index(
        "ix_interview_sessions_user_created", "interview_sessions", ["user_id", "created_at"]
    )
    op.create_index(
        "ix_interview_sessions_user_status", "interview_sessions", ["user_id", "status"]
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("question_classification", JSON_DOC, nullable=True),
        sa.Column("generated_responses", JSON_DOC, nullable=False),
        sa.Column("selected_response", sa.Text(), nullable=True),
        sa.Column("user_feedback", sa.Integer(), nullable=True),
        sa.Column("timestamp", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["interview_sessions.id"],
            name="fk_interactions_session_id_interview_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_interactions"),
    )
    op.create_index(
        "ix_interactions_session_timestamp", "interactions", ["session_id", "timestamp"]
    )
    op.create_table(
        "session_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("transcription_latency_ms", sa.Integer(), nullable=True),
        sa.Column("response_generation_ms", sa.Integer(), nullable=True),
        sa.Column("total_latency_ms", sa.Integer(), nullable=True),
        sa.Column("transcription_accuracy", sa.Double(), nullable=True),
        sa.Column("user_satisfaction", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["interview_sessions.id"],
            name="fk_session_metrics_session_id_interview_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_session_metrics"),
    )
    op.create_index(
        "ix_session_metrics_session_created", "session_metrics", ["session_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("session_metrics")
    op.drop_table("interactions")
    op.drop_table("interview_sessions")
