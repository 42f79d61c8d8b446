"""PostgreSQL: a search page by trigrams when its term is rare.

Since revision 0007 a search walks the user's covering index newest first
and tests ``search_short`` on each entry: cheap for a common term (a 1% term
over a user's 100,000 sessions tests ~2,100 entries for a page of 20, 0.4 ms),
but a term that the user's sessions hold rarely or never tests every one of
them (~25-45 ms for 100,000), and the trigram index on ``search_text`` of
revision 0002 could not serve that search (it tests ``search_short``). Now:

* ``ix_interview_sessions_search_short_trgm``: trigrams (GIN) of
  ``search_short``, in place of those of ``search_text``: the planner picks,
  for each term, the covering index walk or the sessions holding its
  trigrams (a term in no session: ~0.02 ms);
* ``ix_interview_sessions_user_created_long``: (user_id, created_at, id) of
  the sessions whose text is too long for ``search_short`` only (a partial
  index; rare), searched by their full text.

SQLite is unchanged (its covering index of revision 0005 holds the text).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "interview_sessions"
OLD = "ix_interview_sessions_search_trgm"
TRIGRAMS = "ix_interview_sessions_search_short_trgm"
LONG = "ix_interview_sessions_user_created_long"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        TRIGRAMS,
        TABLE,
        ["search_short"],
        postgresql_using="gin",
        postgresql_ops={"search_short": "gin_trgm_ops"},
    )
    op.create_index(
        LONG, TABLE, ["user_id", "created_at", "id"], postgresql_where="search_short IS NULL"
    )
    op.drop_index(OLD, table_name=TABLE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        OLD,
        TABLE,
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index(LONG, table_name=TABLE)
    op.drop_index(TRIGRAMS, table_name=TABLE)
