"""SQLite: a search for a rare term by trigrams (FTS5), not by the walk.

Since revision 0005 a search on SQLite walks the user's covering index newest
first and tests ``search_text`` on each entry: cheap for a term many of the
user's sessions hold (a page fills after a few thousand entries), but a term
that they hold rarely or never tests every one of them (10,000 sessions:
~3.6 ms of CPU for a search that finds nothing, bench/README.md's scale
section). PostgreSQL answers such a term from its trigram index (0008);
this is SQLite's equivalent:

* ``interview_sessions_search``: an FTS5 table over ``search_text`` with the
  trigram tokenizer (substring matching; SQLite >= 3.34), its content read
  from ``interview_sessions`` (external content, by ``rowid``: no second copy
  of the text);
* three triggers keep it equal to the table on insert, delete and a change
  of ``search_text`` (a save that leaves the text as it was changes nothing).

Which of the two a search uses is decided per request
(app/db/repositories.py, ``SessionRepository.page``): the trigrams when the
term is held by fewer than a bound of sessions in all (counted by the FTS
table, stopping at the bound), else the walk.

An operator's ``VACUUM`` may renumber the rowids of this table (it has no
INTEGER PRIMARY KEY); after one, rebuild the search table (README, "SQLite").

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = "interview_sessions_search"
TABLE = "interview_sessions"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        f"CREATE VIRTUAL TABLE {FTS} USING fts5(search_text, content='{TABLE}', "
        "content_rowid='rowid', tokenize='trigram')"
    )
    op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")
    insert = f"INSERT INTO {FTS}(rowid, search_text) VALUES (new.rowid, new.search_text);"
    delete = (
        f"INSERT INTO {FTS}({FTS}, rowid, search_text) "
        "VALUES ('delete', old.rowid, old.search_text);"
    )
    op.execute(f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON {TABLE} BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON {TABLE} BEGIN {delete} END")
    op.execute(
        # (A session's every save sets search_text: only a changed one counts.)
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF search_text ON {TABLE} "
        f"WHEN old.search_text IS NOT new.search_text BEGIN {delete} {insert} END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for suffix in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{suffix}")
    op.execute(f"DROP TABLE IF EXISTS {FTS}")
