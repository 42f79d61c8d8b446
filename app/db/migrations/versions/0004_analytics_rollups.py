"""Analytics rollups: per user and UTC day of the session's creation.

Analytics read these instead of aggregating every interaction and metric of
the window (see :mod:`app.db.rollups`). The upgrade fills them from the rows
already stored, with the same statements the application uses to recompute a
day (one ``INSERT ... SELECT ... GROUP BY`` per table); a later change to the
rollup definition needs a new migration that rebuilds them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.rollups import rebuild_statements

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER = sa.String(length=255)


def upgrade() -> None:
    op.create_table(
        "analytics_days",
        sa.Column("user_id", USER, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("duration_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name="pk_analytics_days"),
    )
    op.create_table(
        "analytics_metric_days",
        sa.Column("user_id", USER, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric_day", sa.Date(), nullable=False),
        sa.Column("metrics", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.BigInteger(), nullable=False),
        sa.Column("latency_n", sa.Integer(), nullable=False),
        sa.Column("accuracy_sum", sa.Double(), nullable=False),
        sa.Column("accuracy_n", sa.Integer(), nullable=False),
        sa.Column("satisfaction_sum", sa.BigInteger(), nullable=False),
        sa.Column("satisfaction_n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", "metric_day", name="pk_analytics_metric_days"),
    )
    op.create_table(
        "analytics_question_types",
        sa.Column("user_id", USER, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("question_type", sa.String(length=16), nullable=False),
        sa.Column("interactions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id", "day", "question_type", name="pk_analytics_question_types"
        ),
    )
    dialect = op.get_bind().dialect.name
    for stmt in rebuild_statements(dialect):
        op.execute(stmt)


def downgrade() -> None:
    op.drop_table("analytics_question_types")
    op.drop_table("analytics_metric_days")
    op.drop_table("analytics_days")
