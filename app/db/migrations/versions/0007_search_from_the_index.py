"""PostgreSQL: search a user's sessions from an index alone.

A search page (``LIKE '%term%'``) walked the user's (created_at, id) index and
fetched the table row of every session it tested, for ``search_text``: a 1%
term over the 100,000 sessions of one user read ~2,100 table rows for a page
of 20 (2.5x the cost of a first page). The text cannot simply be INCLUDEd in
a btree (descriptions run to 10,000 characters, an entry holds 2,704 bytes),
so:

* ``interview_sessions.search_short``: ``search_text`` again when it is at
  most 1,200 bytes (``app.db.models.SEARCH_SHORT_BYTES``), else NULL; written
  by the application, filled here for existing rows in batches, on both
  databases (one schema);
* PostgreSQL: ``ix_interview_sessions_user_created_covering`` on
  (user_id, created_at, id) INCLUDE (status, interview_type, search_short):
  a search page with any filters is an index-only scan, and reads the full
  text only of the sessions whose text is longer.

SQLite keeps its covering index of revision 0005 (no entry size limit there).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
SHORT_BYTES = 1200  # app.db.models.SEARCH_SHORT_BYTES when this was written
INDEX = "ix_interview_sessions_user_created_covering"


def _backfill(pg: bool) -> None:
    bind = op.get_bind()
    config = op.get_context().config
    batch = config.attributes.get("backfill_batch", BATCH) if config is not None else BATCH
    size = "octet_length(search_text)" if pg else "length(CAST(search_text AS BLOB))"
    uid = sa.Uuid()
    last = None
    while True:
        where = "" if last is None else "WHERE id > :last "
        query = sa.text(f"SELECT id FROM interview_sessions {where}ORDER BY id LIMIT {batch}")
        if last is not None:
            query = query.bindparams(sa.bindparam("last", last, type_=uid))
        ids = bind.execute(query.columns(id=uid)).scalars().all()
        if not ids:
            return
        lower = "" if last is None else "id > :last AND "
        update = sa.text(
            "UPDATE interview_sessions SET search_short = search_text "
            f"WHERE {lower}id <= :upto AND {size} <= {SHORT_BYTES}"
        ).bindparams(sa.bindparam("upto", ids[-1], type_=uid))
        if last is not None:
            update = update.bindparams(sa.bindparam("last", last, type_=uid))
        bind.execute(update)
        last = ids[-1]


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.add_column("interview_sessions", sa.Column("search_short", sa.Text(), nullable=True))
    _backfill(pg)
    if pg:
        op.create_index(
            INDEX,
            "interview_sessions",
            ["user_id", "created_at", "id"],
            postgresql_include=["status", "interview_type", "search_short"],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="interview_sessions")
    op.drop_column("interview_sessions", "search_short")
