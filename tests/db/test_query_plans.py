"""PostgreSQL plans of the list queries: a deep keyset page reads an index in
order (no sequential scan, no sort), whatever page it is. The data here is
small; `make bench` measures the same queries on a million rows."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from app.db import statements as r
from app.db.executor import compiled_for_asyncpg, compiled_for_sqlite
from app.domain.paging import PageRequest, Position, SessionFilter
from app.domain.records import SessionStatus


@pytest.fixture
async def pg(pg_db_url):
    conn = await asyncpg.connect(pg_db_url.replace("postgresql+asyncpg", "postgresql"))
    await conn.execute(
        """
        INSERT INTO interview_sessions (id, user_id, job_context, status, settings, started_at,
                                        created_at, interview_type, search_text,
                                        search_short)
        SELECT gen_random_uuid(), 'user-' || (n % 50), '{"title": "T", "company": "C"}',
               (ARRAY['active', 'paused', 'completed'])[1 + n % 3], '{}',
               now() - n * interval '1 minute', now() - n * interval '1 minute',
               'technical', 'engineer ' || n, 'engineer ' || n
        FROM generate_series(1, 20000) AS n;
        INSERT INTO interactions (id, session_id, question, generated_responses, timestamp)
        SELECT gen_random_uuid(), s.id, 'Q', '[]', s.created_at + k * interval '1 second'
        FROM interview_sessions s, generate_series(1, 5) AS k;
        INSERT INTO interactions (id, session_id, question, generated_responses, timestamp)
        SELECT gen_random_uuid(), s.id, 'Q', '[]', s.created_at + k * interval '1 second'
        FROM (SELECT id, created_at FROM interview_sessions WHERE user_id = 'user-1' LIMIT 1) s,
             generate_series(1, 2000) AS k;
        ANALYZE;
        """
    )
    yield conn
    await conn.close()


async def plan(conn, stmt, params) -> str:
    compiled = compiled_for_asyncpg(stmt)
    rows = await conn.fetch("EXPLAIN " + compiled.sql, *compiled.args(params))
    return "\n".join(row[0] for row in rows)


async def run(conn, stmt, params) -> list[asyncpg.Record]:
    compiled = compiled_for_asyncpg(stmt)
    return await conn.fetch(compiled.sql, *compiled.args(params))


def sqlite_plan(path, stmt, params) -> str:
    """SQLite's EXPLAIN QUERY PLAN of a statement, bound as the raw read path
    binds it (app/db/executor.py)."""
    import sqlite3

    sql, values = compiled_for_sqlite(stmt).bound(params)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, values).fetchall()
    return "\n".join(row[3] for row in rows)


def sorts(text: str) -> bool:
    """A Sort node in the plan (a Merge Append's "Sort Key" is no sort)."""
    return re.search(r"^\s*(->\s+)?Sort\s+\(", text, re.M) is not None


def deep(at: datetime) -> PageRequest:
    return PageRequest(20, after=Position(at, uuid.UUID(int=0)))


async def test_a_deep_page_walks_the_keyset_index(pg):
    at = datetime(2020, 1, 1, tzinfo=UTC)
    for f, index in (
        (SessionFilter(), "ix_interview_sessions_user_created_id"),
        (
            SessionFilter(status=(SessionStatus.PAUSED,)),
            "ix_interview_sessions_user_status_created",
        ),
    ):
        req = deep(at)
        stmt = r.sessions_page(r.filter_shape(f), r.page_shape(req), "postgresql")
        params = {**r.filter_params("user-7", f), **r.keyset_params(req)}
        text = await plan(pg, stmt, params)
        assert index in text, text
        assert "Seq Scan" not in text and "Sort" not in text, text


async def test_a_search_page_reads_the_covering_index_alone(pg):
    """PostgreSQL: a search (with or without other filters) tests each session
    from the covering index (an index-only scan, no table row per session
    tested); table rows are read by primary key for the page only."""
    await pg.execute(  # texts too long for search_short: the term only in full
        """
        INSERT INTO interview_sessions (id, user_id, job_context, status, settings, started_at,
                                        created_at, search_text, search_short)
        SELECT gen_random_uuid(), 'user-7', '{}', 'active', '{}', now() - n * interval '1 hour',
               now() - n * interval '1 hour', repeat('x', 2000) || 'engineer 1' || n, NULL
        FROM generate_series(1, 5) AS n
        """
    )
    await pg.execute("VACUUM ANALYZE interview_sessions")
    for f in (
        SessionFilter(search="engineer 1"),
        SessionFilter(search="engineer 1", status=(SessionStatus.PAUSED, SessionStatus.ACTIVE)),
    ):
        for req in (PageRequest(20), deep(datetime(2099, 1, 1, tzinfo=UTC))):
            stmt = r.sessions_page(r.filter_shape(f), r.page_shape(req), "postgresql")
            params = {**r.filter_params("user-7", f), **r.keyset_params(req)}
            text = await plan(pg, stmt, params)
            assert "Index Only Scan" in text, text
            assert "ix_interview_sessions_user_created_covering" in text, text
            assert "Seq Scan" not in text and not sorts(text), text
            rows = await run(pg, stmt, params)
            want = await pg.fetch(
                "SELECT id FROM interview_sessions WHERE user_id = 'user-7' "
                "AND search_text LIKE '%engineer 1%' AND status = ANY($1::text[]) "
                "ORDER BY created_at DESC, id DESC LIMIT 21",
                [s.value for s in f.status] or ["active", "paused", "completed"],
            )
            assert [row["id"] for row in rows] == [row["id"] for row in want]
            assert len(rows) == 21


async def test_a_search_for_a_rare_term_reads_its_trigrams(pg):
    """PostgreSQL: a term few of a heavy user's sessions hold is found by the
    trigram index of ``search_short`` (and the partial index of the sessions
    too long for it), not by testing each of the user's sessions from the
    covering index (the whole walk when the term is in none of them: ~25-45 ms
    for a user of 100,000 sessions)."""
    await pg.execute(
        """
        INSERT INTO interview_sessions (id, user_id, job_context, status, settings, started_at,
                                        created_at, search_text, search_short)
        SELECT gen_random_uuid(), 'heavy', '{}', 'active', '{}', now() - n * interval '1 minute',
               now() - n * interval '1 minute', 'analyst ' || n, 'analyst ' || n
        FROM generate_series(1, 30000) AS n;
        INSERT INTO interview_sessions (id, user_id, job_context, status, settings, started_at,
                                        created_at, search_text, search_short)
        SELECT gen_random_uuid(), 'heavy', '{}', 'active', '{}', now() - n * interval '1 hour',
               now() - n * interval '1 hour', repeat('x', 2000) || 'analyst 29999', NULL
        FROM generate_series(1, 3) AS n;
        """  # (the term in texts too long for search_short, too)
    )
    await pg.execute("VACUUM ANALYZE interview_sessions")
    for term, found in (("analyst 29999", 4), ("zebrafish", 0)):
        f = SessionFilter(search=term)
        for req in (PageRequest(20), deep(datetime(2099, 1, 1, tzinfo=UTC))):
            stmt = r.sessions_page(r.filter_shape(f), r.page_shape(req), "postgresql")
            params = {**r.filter_params("heavy", f), **r.keyset_params(req)}
            text = await plan(pg, stmt, params)
            assert "ix_interview_sessions_search_short_trgm" in text, text
            assert "ix_interview_sessions_user_created_long" in text, text
            assert "ix_interview_sessions_user_created_covering" not in text, text
            assert "Seq Scan" not in text, text
            rows = await run(pg, stmt, params)
            want = await pg.fetch(
                "SELECT id FROM interview_sessions WHERE user_id = 'heavy' "
                "AND search_text LIKE $1 ORDER BY created_at DESC, id DESC",
                f"%{term}%",
            )
            assert [row["id"] for row in rows] == [row["id"] for row in want]
            assert len(rows) == found  # "analyst 29999" itself, and the three long ones
        count = compiled_for_asyncpg(r.sessions_count(r.filter_shape(f), "postgresql"))
        assert await pg.fetchval(count.sql, *count.args(r.filter_params("heavy", f))) == found


async def test_a_long_session_s_interactions_page_walks_its_index(pg):
    sid = await pg.fetchval(
        "SELECT session_id FROM interactions GROUP BY session_id ORDER BY count(*) DESC LIMIT 1"
    )
    req = PageRequest(20, after=Position(datetime(2020, 1, 1, tzinfo=UTC), uuid.UUID(int=0)))
    stmt = r.interactions_page(r.page_shape(req))
    text = await plan(pg, stmt, {"session_id": sid, **r.keyset_params(req)})
    assert "ix_interactions_session_timestamp_id" in text, text
    assert "Seq Scan" not in text and "Sort" not in text, text


def test_a_sqlite_search_page_reads_only_the_covering_index(sqlite_template, tmp_path):
    """SQLite: the substring search walks the (user, created_at, id, search_text)
    index in page order and never touches the table rows or sorts."""
    import shutil

    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    f = SessionFilter(search="quokka")
    req = deep(datetime(2020, 1, 1, tzinfo=UTC))
    stmt = r.sessions_page(r.filter_shape(f), r.page_shape(req), "sqlite")
    text = sqlite_plan(path, stmt, {**r.filter_params("user-7", f), **r.keyset_params(req)})
    assert "USING INDEX ix_interview_sessions_user_created_search" in text, text
    assert "TEMP B-TREE" not in text, text


def test_a_sqlite_search_by_trigrams_reads_the_matches_by_rowid(sqlite_template, tmp_path):
    """SQLite, a rare term (migration 0009): the FTS5 table's matches, each
    row read by its rowid, never a walk of the user's sessions."""
    import shutil
    import sqlite3

    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO interview_sessions (id, user_id, job_context, status, settings, "
            "started_at, created_at, interview_type, search_text, search_short) "
            "VALUES (?, ?, '{}', 'active', '{}', ?, ?, 'technical', ?, ?)",
            [
                (
                    uuid.uuid4().hex,
                    f"user-{n % 5}",
                    f"2026-01-01 00:00:{n % 60:02d}.{n:06d}",
                    f"2026-01-01 00:00:{n % 60:02d}.{n:06d}",
                    f"engineer {n}",
                    f"engineer {n}",
                )
                for n in range(3000)
            ],
        )
        conn.execute("ANALYZE")
    f = SessionFilter(search="zebrafish")
    req = deep(datetime(2027, 1, 1, tzinfo=UTC))
    stmt = r.sessions_page(r.filter_shape(f), r.page_shape(req), "sqlite", True)
    params = {**r.filter_params("user-1", f), **r.keyset_params(req), "phrase": '"zebrafish"'}
    text = sqlite_plan(path, stmt, params)
    assert "interview_sessions_search VIRTUAL TABLE" in text, text
    assert "USING INTEGER PRIMARY KEY (rowid=?)" in text, text
    assert "ix_interview_sessions_user_created" not in text, text


async def test_analytics_read_the_rollups_by_key(pg):
    """700 rollup rows for 20,000 sessions; one user's window is an index range."""
    from app.db.rollups import analytics_statements, rebuild_statements

    for stmt in rebuild_statements("postgresql"):
        c = compiled_for_asyncpg(stmt)
        await pg.execute(c.sql, *c.args({}))
    await pg.execute("ANALYZE")
    totals = analytics_statements(True, True)[0]
    window = {
        "user_id": "user-7",
        "start": datetime(2020, 1, 1).date(),
        "end": datetime.now().date(),
    }
    text = await plan(pg, totals, window)
    assert "pk_analytics_days" in text, text


async def test_every_connection_plans_per_call_and_never_jit_compiles(pg_db_url):
    """Reads (the read pool): custom plans, and no JIT (a short query with a
    high estimated cost spent 140 ms compiling). Writes (the write pool:
    transactions and guarded statements) reach every row by a key:
    PostgreSQL's own choice of plans (a generic one after five runs), and no
    JIT."""
    from sqlalchemy import text

    from app.db.engine import Database
    from tests.conftest import make_settings

    db = Database(make_settings(pg_db_url))
    try:

        async def settings(uow):
            rows = await uow.ex.rows(
                text(
                    "SELECT current_setting('jit') AS jit, "
                    "current_setting('plan_cache_mode') AS plans"
                ),
                {},
            )
            return dict(rows[0])

        assert await db.read(settings) == {"jit": "off", "plans": "force_custom_plan"}
        assert await db.write(settings) == {"jit": "off", "plans": "auto"}
    finally:
        await db.dispose()


async def test_only_statements_read_by_key_keep_generic_plans(pg_db_url):
    """A statement marked ``generic_plans`` (one row by its key: a session's
    details) switches its read connection to PostgreSQL's own choice of plans;
    any other statement, and every statement of a consistent read (a
    transaction, where a SET would not survive a rollback), is planned for
    its parameters again."""
    from sqlalchemy import text

    from app.db.engine import Database
    from app.db.statements import get_session, list_sessions, sessions_page
    from app.domain.records import Interaction
    from app.queries.projection import Children, Projection
    from app.queries.sql import children_statement
    from tests.conftest import make_settings

    def generic(stmt) -> bool:
        return stmt.get_execution_options().get("generic_plans", False)

    # A session by its id, and the lists of sessions by their ids (details).
    one = Projection((("id", "id", None),))
    assert generic(get_session(None))
    assert generic(children_statement((Children("interactions", Interaction, one),)))
    # A user's newest sessions (of one status), from a cursor or not: one
    # index walk for any user. Other filters (statuses, dates, a search, a
    # type): planned per call.
    assert generic(list_sessions(False)) and generic(list_sessions(True))
    for page in ((False, False, False), (True, False, False), (False, True, True)):
        for shape in ((0, False, False, False, False), (1, False, False, False, False)):
            assert generic(sessions_page(shape, page, "postgresql"))
    for shape in (
        (2, False, False, False, False),
        (1, True, False, False, False),
        (0, False, True, False, False),
        (0, False, False, True, False),
        (1, False, False, False, True),
    ):
        assert not generic(sessions_page(shape, (False, False, False), "postgresql"))
    mode = "SELECT current_setting('plan_cache_mode') AS m"
    keyed, other = text(mode).execution_options(generic_plans=True), text(mode)
    db = Database(make_settings(pg_db_url, db_pool_size=1))  # one connection throughout
    try:

        def reading(*stmts):
            async def work(uow):
                return [(await uow.ex.rows(s, {}))[0]["m"] for s in stmts]

            return work

        assert await db.read(reading(keyed)) == ["auto"]
        assert await db.read(reading(keyed, other, keyed)) == ["auto", "force_custom_plan", "auto"]
        assert await db.read(reading(other, keyed), consistent=True) == ["force_custom_plan"] * 2
        assert await db.read(reading(keyed)) == ["auto"]
    finally:
        await db.dispose()
