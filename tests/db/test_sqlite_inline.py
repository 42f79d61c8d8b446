"""SQLite reads on the event loop's thread (``Database.read``, SQLITE_INLINE_READS).

What a client relies on: the same answers as the threaded path, and a read that
meets a lock still answers (it goes to the threaded path, which waits for the
lock) instead of failing with a 503.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import sessions_table
from tests.conftest import make_settings


def _path(db_url: str) -> Path:
    return Path(db_url.split("///", 1)[1])


async def _count(db: Database) -> int:
    async def work(uow):
        rows = await uow.ex.rows(select(func.count().label("n")).select_from(sessions_table), {})
        return rows[0]["n"]

    return int(await db.read(work))


async def test_reads_run_inline_and_agree_with_the_threaded_path(sqlite_template, tmp_path):
    path = tmp_path / "inline.db"
    path.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite+aiosqlite:///{path}"
    inline = Database(make_settings(url))
    threaded = Database(make_settings(url, sqlite_inline_reads=False))
    seen: list[str] = []
    inline.add_statement_listener(seen.append)
    try:
        assert inline._inline is not None and threaded._inline is None
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO interview_sessions (id, user_id, job_context, status, settings, "
                "started_at, created_at) VALUES ('00000000000040008000000000000001', 'u', "
                "'{}', 'active', '{}', '2026-01-01 00:00:00.000000', "
                "'2026-01-01 00:00:00.000000')"
            )
        assert await _count(inline) == await _count(threaded) == 1
        assert any("count" in s.lower() for s in seen)  # listeners see inline statements
    finally:
        await inline.dispose()
        await threaded.dispose()


async def test_a_read_that_meets_a_lock_waits_on_the_threaded_path(sqlite_template, tmp_path):
    path = tmp_path / "locked.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(make_settings(f"sqlite+aiosqlite:///{path}"))
    held = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        # An exclusive transaction in rollback-journal mode: no reader may start.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        release.wait(10)
        conn.execute("ROLLBACK")
        conn.close()

    locker = threading.Thread(target=hold_lock)
    locker.start()
    try:
        assert held.wait(10)
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        assert await asyncio.wait_for(_count(db), 20) == 0  # not a 503
        assert time.monotonic() - started < 20
    finally:
        release.set()
        locker.join()
        await db.dispose()
