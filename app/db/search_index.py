"""SQLite's trigram table for searches (migration 0009), and its repair.

``interview_sessions_search`` is an FTS5 table (trigram tokenizer) over the
sessions' ``search_text``, with external content: it keeps the trigrams, by
the sessions table's implicit ``rowid``, and three triggers keep it equal to
the table (app/db/statements.py reads it for a rare term).

That ``rowid`` is not the session's id, and two things outside the
application can break the link without an error: a copy that renumbers the
rows (``sqlite3 .dump`` into a new file; a ``VACUUM`` may too), and a table
rebuild (a future batch migration of ``interview_sessions``) that drops the
triggers. :func:`repair` runs after every migration (``interview-api
migrate``, ``serve``): it puts back missing triggers and rebuilds the table
when its rows and the sessions' disagree (their number or their last
rowid; a renumbering closes gaps, so the last rowid moves), which takes
about a second per 100,000 sessions, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

FTS = "interview_sessions_search"
TABLE = "interview_sessions"
# The FTS5 table and the shadow tables SQLite keeps for it.
TABLES = frozenset({FTS, *(f"{FTS}_{part}" for part in ("data", "idx", "docsize", "config"))})

# (The names are written out: the statements are constants.)
_INSERT = (
    "INSERT INTO interview_sessions_search(rowid, search_text) VALUES (new.rowid, new.search_text);"
)
_DELETE = (
    "INSERT INTO interview_sessions_search(interview_sessions_search, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text);"
)
TRIGGERS = {
    "interview_sessions_search_insert": (
        "CREATE TRIGGER interview_sessions_search_insert AFTER INSERT ON interview_sessions "
        f"BEGIN {_INSERT} END"
    ),
    "interview_sessions_search_delete": (
        "CREATE TRIGGER interview_sessions_search_delete AFTER DELETE ON interview_sessions "
        f"BEGIN {_DELETE} END"
    ),
    # (A session's every save sets search_text: only a changed one counts.)
    "interview_sessions_search_update": (
        "CREATE TRIGGER interview_sessions_search_update "
        "AFTER UPDATE OF search_text ON interview_sessions "
        f"WHEN old.search_text IS NOT new.search_text BEGIN {_DELETE} {_INSERT} END"
    ),
}
CREATE = (
    "CREATE VIRTUAL TABLE interview_sessions_search USING fts5(search_text, "
    "content='interview_sessions', content_rowid='rowid', tokenize='trigram')"
)
REBUILD = "INSERT INTO interview_sessions_search(interview_sessions_search) VALUES ('rebuild')"
_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'interview_sessions_search'"
_OURS = "SELECT count(*), max(id) FROM interview_sessions_search_docsize"
_THEIRS = "SELECT count(*), max(rowid) FROM interview_sessions"

log = logging.getLogger("app.db")


def create(execute: Callable[[str], Any]) -> None:
    """The table, its rows, its triggers (migration 0009)."""
    execute(CREATE)
    execute(REBUILD)
    for ddl in TRIGGERS.values():
        execute(ddl)


def drop(execute: Callable[[str], Any]) -> None:
    for name in TRIGGERS:
        execute(f"DROP TRIGGER IF EXISTS {name}")
    execute("DROP TABLE IF EXISTS interview_sessions_search")


def repair(
    rows: Callable[[str], list[tuple[Any, ...]]], execute: Callable[[str], Any]
) -> list[str]:
    """Put the table back in step with the sessions if something outside the
    application moved them apart; what was done (nothing: ``[]``). A database
    without the table (migrated below 0009) is left alone."""
    if not rows(_EXISTS):
        return []
    done = []
    present = {r[0] for r in rows("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    for name, ddl in TRIGGERS.items():
        if name not in present:
            execute(ddl)
            done.append(f"trigger {name} created again")
    (ours,) = rows(_OURS)
    (theirs,) = rows(_THEIRS)
    if tuple(ours) != tuple(theirs) or done:
        execute(REBUILD)
        done.append(
            f"rebuilt: it held {ours[0]} rows (last rowid {ours[1]}), "
            f"the sessions {theirs[0]} (last rowid {theirs[1]})"
        )
    for line in done:
        log.warning("SQLite search index: %s", line)
    return done
