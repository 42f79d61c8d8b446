"""SQLite: a search for a rare term by trigrams (FTS5), not by the walk.

Since revision 0005 a search on SQLite walks the user's covering index newest
first and tests ``search_text`` on each entry: cheap for a term many of the
user's sessions hold (a page fills after a few thousand entries), but a term
that they hold rarely or never tests every one of them (10,000 sessions:
~3 ms for a search that finds nothing, bench/README.md's scale section).
PostgreSQL answers such a term from its trigram index (0008); this is
SQLite's equivalent (app/db/search_index.py):

* ``interview_sessions_search``: an FTS5 table over ``search_text`` with the
  trigram tokenizer (substring matching; SQLite >= 3.34), its content read
  from ``interview_sessions`` (external content, by ``rowid``: no second copy
  of the text);
* three triggers keep it equal to the table on insert, delete and a change
  of ``search_text`` (a save that leaves the text as it was changes nothing).

Which of the two a search uses is decided per term (app/db/repositories.py,
``SessionRepository._by_trigrams``). A copy that renumbers the sessions'
rowids, or a rebuild of their table that drops the triggers, is repaired
after every migration (``search_index.repair``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from app.db import search_index

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        search_index.create(op.execute)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        search_index.drop(op.execute)
