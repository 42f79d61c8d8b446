"""Session events: the event table (transactional outbox) and per-user counters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "session_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_session_events"),
        sa.UniqueConstraint("user_id", "seq", name="uq_session_events_user_seq"),
    )
    op.create_index(
        "ix_session_events_user_session_seq", "session_events", ["user_id", "session_id", "seq"]
    )
    op.create_index("ix_session_events_at", "session_events", ["at"])
    op.create_table(
        "user_event_seq",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_event_seq"),
    )


def downgrade() -> None:
    op.drop_table("user_event_seq")
    op.drop_index("ix_session_events_at", table_name="session_events")
    op.drop_index("ix_session_events_user_session_seq", table_name="session_events")
    op.drop_table("session_events")
