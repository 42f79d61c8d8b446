"""`python -m bench.scale`: how the cost of a request grows with the data.

The service's list, details and analytics routes measured with wrk on a
database that grows from 1% to 10% to 100% of its full size, as one heavy
user (10% of all sessions) asks for them:

* PostgreSQL (database ``interview_scale``): 1,000,000 sessions, 4,000,000
  interactions and 2,000,000 metrics over 10,000 users at full size;
* SQLite (``bench/.work/scale.db``): a tenth of that.

``BENCH_SCALE`` (default 1.0; 0.01 for a quick run) multiplies every row
count. The schema comes from the project's own migrations; rows are written
by bulk SQL (PostgreSQL ``INSERT ... SELECT ... FROM generate_series``,
SQLite batched ``executemany``), never through the API, with the derived
columns (``interview_type``, ``search_text``, ``question_type``) filled as the
application fills them. Every row is a function of its index (ids are
``md5('s' || i)`` and so on), so each step only tops up the rows it lacks.
After each step: VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite), a fresh
server process (pinned to CPU 0; wrk on CPU 1), every workload checked once
for a correct answer, then timed.

At ``BENCH_SCALE=1`` the table goes to bench/README.md (between the
``<!-- scale -->`` markers) and the raw numbers to bench/scale-results.json;
smaller runs write bench/.work/scale-results-<scale>.json only.
``python -m bench.scale --report`` renders the README section again from
bench/scale-results.json (a hand-written ``<!-- scale-notes -->`` block in
it is kept). The PostgreSQL database is left in place for EXPLAIN.

Environment: ``BENCH_SCALE``, ``BENCH_SCALE_DBS`` (``postgresql,sqlite``),
``BENCH_SCALE_SECONDS`` (5), ``BENCH_SCALE_WARMUP`` (2),
``BENCH_SCALE_CONNECTIONS`` (8), ``BENCH_POSTGRES_DSN``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
from sqlalchemy.dialects import sqlite as sqlite_dialect

from app.auth import issue_token
from app.config import Settings
from app.db.executor import compiled_for_asyncpg
from app.db.migrate import upgrade
from app.db.models import SEARCH_SHORT_BYTES
from app.db.rollups import rebuild_statements
from bench.run import (
    BIN,
    PG_ADMIN,
    RATE_LIMITS,
    ROOT,
    SECRET,
    WORK,
    Request,
    _stop,
    ensure_wrk,
    free_port,
    lua_script,
    pinned,
    wait_ready,
)

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
DATABASES = tuple(
    d.strip() for d in os.environ.get("BENCH_SCALE_DBS", "postgresql,sqlite").split(",") if d
)
SECONDS = int(os.environ.get("BENCH_SCALE_SECONDS", "5"))
WARMUP = int(os.environ.get("BENCH_SCALE_WARMUP", "2"))
CONNECTIONS = int(os.environ.get("BENCH_SCALE_CONNECTIONS", "8"))
WRK_TIMEOUT = "60s"
SLOW_MS = 250.0  # a workload slower than this alone gets a longer wrk run, no warm-up
MAX_SECONDS = 60
PG_DB = "interview_scale"
SQLITE_PATH = WORK / "scale.db"
README = ROOT / "bench" / "README.md"
RESULTS = ROOT / "bench" / "scale-results.json"

# Full size (BENCH_SCALE=1) per database: sessions and users. Every session
# has 4 interactions and 2 metrics on average (so 4x and 2x the sessions).
FULL = {"postgresql": (1_000_000, 10_000), "sqlite": (100_000, 1_000)}
STEPS = (("1%", 0.01), ("10%", 0.1), ("100%", 1.0))
PER_SESSION_INTERACTIONS = 4
PER_SESSION_METRICS = 2
HEAVY = "scale-heavy"  # sessions i % 10 == 0: a tenth of them
DETAILS_INTERACTIONS = 500  # interactions 0..499 all belong to session 0
DEEP = 50_000
TERM = "quokka"  # in the description of sessions with i % 1000 in 70..79: 1%
TWO_YEARS_S = 730 * 86_400
SPREAD = 38_980_841  # ~ golden ratio x two years in seconds: a well spread sequence

TITLES = [
    "Backend Engineer",
    "Frontend Engineer",
    "Data Engineer",
    "Site Reliability Engineer",
    "Product Manager",
    "Engineering Manager",
    "Mobile Developer",
    "Security Analyst",
]
COMPANIES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Labs",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Soylent",
    "Tyrell Systems",
    "Cyberdyne",
    "Vandelay Imports",
]
DESCRIPTIONS = [
    "Own the billing services and their PostgreSQL databases.",
    "Build the design system and the customer dashboard.",
    "Run the streaming pipelines and the warehouse models.",
    "Keep the platform available: on-call, capacity, incident reviews.",
    "Lead discovery for the onboarding funnel with design and data.",
    "Grow a team of eight engineers and its delivery practices.",
]
TERM_DESCRIPTION = f"Joins the {TERM} platform team: APIs, storage and on-call."
REQUIREMENTS: list[list[str]] = [
    ["Python", "SQL"],
    ["TypeScript", "React", "Accessibility"],
    ["Communication"],
]
INTERVIEW_TYPES = ["technical", "behavioral", "situational", "cultural", None]
SENIORITIES = ["junior", "mid", "senior", None]
QUESTION_TYPES = ["technical", "behavioral", "situational", "cultural", None]
CATEGORIES = ["system design", "teamwork", "conflict", "algorithms"]
DIFFICULTIES = ["junior", "mid", "senior"]
TOPICS = ["a slow query", "a failing deploy", "a tight deadline", "a new codebase"]
SETTINGS_DOC = {
    "transcriptionEnabled": True,
    "responseGeneration": True,
    "confidenceThreshold": 0.8,
    "preferredLanguage": "en",
    "enabledFeatures": ["real-time-transcription", "response-suggestions"],
}
ANSWER = "Start from the requirements, name the trade-offs, then walk through an example."

GRAPHQL_PAGE = json.dumps(
    {
        "query": "{ sessionsConnection(first: 20) { edges { cursor node { id status } } "
        "pageInfo { hasNextPage endCursor } } }"
    }
)

W_FIRST = "first page (limit=20)"
W_DEEP = "deep page (cursor)"
W_FILTER = "filtered page (status=paused)"
W_SEARCH = f"search page (q={TERM})"
ABSENT = "zebrafish"  # in no session: a search that tests all of them, or finds none by index
W_ABSENT = f"search, no match (q={ABSENT})"
W_DETAILS = "details (500 interactions)"
W_RECENT = "analytics, last 30 days"
W_ALL = "analytics, all sessions"
W_GRAPHQL = "GraphQL sessionsConnection(first: 20)"
WORKLOADS = (
    W_FIRST,
    W_DEEP,
    W_FILTER,
    W_SEARCH,
    W_ABSENT,
    W_DETAILS,
    W_RECENT,
    W_ALL,
    W_GRAPHQL,
)


# ---------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Size:
    label: str
    sessions: int
    users: int

    @property
    def interactions(self) -> int:
        return self.sessions * PER_SESSION_INTERACTIONS

    @property
    def metrics(self) -> int:
        return self.sessions * PER_SESSION_METRICS

    @property
    def heavy(self) -> int:
        return (self.sessions + 9) // 10

    @property
    def details_interactions(self) -> int:
        return min(DETAILS_INTERACTIONS, self.interactions)

    @property
    def deep(self) -> int:
        return min(DEEP, self.heavy - 20)


def sizes(db: str) -> list[Size]:
    sessions, users = FULL[db]
    n_users = max(10, round(users * SCALE))
    return [Size(label, max(10, round(sessions * SCALE * f)), n_users) for label, f in STEPS]


def session_of_interaction(k: int) -> tuple[int, int]:
    """(session index, ordinal in the session) of interaction ``k``: the first
    500 belong to session 0 (the details workload), then 4 per session."""
    if k < DETAILS_INTERACTIONS:
        return 0, k
    return 1 + (k - DETAILS_INTERACTIONS) // 4, (k - DETAILS_INTERACTIONS) % 4


# ---------------------------------------------------------------- PostgreSQL seeding

PG_FUNCTIONS = [
    # Session i's creation time: spread over two years before the anchor.
    """
    CREATE FUNCTION pg_temp.scale_created(i bigint, anchor timestamptz)
    RETURNS timestamptz LANGUAGE sql STABLE AS $$
      SELECT anchor - ((i * 38980841) % 63072000) * interval '1 second'
                    - ((i * 7919) % 1000000) * interval '1 microsecond'
    $$
    """,
    """
    CREATE FUNCTION pg_temp.scale_session(k bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE WHEN k < 500 THEN 0 ELSE 1 + (k - 500) / 4 END
    $$
    """,
    """
    CREATE FUNCTION pg_temp.scale_ordinal(k bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE WHEN k < 500 THEN k ELSE (k - 500) % 4 END
    $$
    """,
]

PG_SESSIONS = """
INSERT INTO interview_sessions (id, user_id, job_context, status, settings, started_at,
                                ended_at, created_at, interview_type, search_text,
                                search_short)
SELECT md5('s' || i)::uuid, user_id,
       jsonb_build_object('title', title, 'company', company, 'description', description,
                          'requirements', requirements, 'interviewType', itype,
                          'seniority', seniority),
       status, $4::jsonb, created,
       CASE WHEN status = 'completed' THEN created + ((i % 50) + 10) * interval '1 minute' END,
       created, itype,
       lower(title || E'\\n' || company || E'\\n' || coalesce(description, '')),
       CASE WHEN octet_length(lower(title || E'\\n' || company || E'\\n'
                                    || coalesce(description, ''))) <= $14
            THEN lower(title || E'\\n' || company || E'\\n' || coalesce(description, ''))
       END
FROM (
  SELECT i,
         CASE WHEN i % 10 = 0 THEN $5 ELSE 'scale-user-' || (i % $3) END AS user_id,
         ($6::text[])[1 + (i / 10) % 8] AS title,
         ($7::text[])[1 + (i / 7) % 12] AS company,
         CASE WHEN i % 1000 BETWEEN 70 AND 79 THEN $8
              WHEN i % 3 = 0 THEN NULL
              ELSE ($9::text[])[1 + (i / 11) % 6] END AS description,
         ($10::jsonb) -> ((i / 13) % 3)::int AS requirements,
         ($11::text[])[1 + (i / 100) % 5] AS itype,
         ($12::text[])[1 + (i / 3) % 4] AS seniority,
         CASE (i / 10) % 10 WHEN 0 THEN 'active' WHEN 1 THEN 'paused'
              ELSE 'completed' END AS status,
         pg_temp.scale_created(i, $13) AS created
  FROM generate_series($1::bigint, $2::bigint - 1) AS i
) AS g
"""

PG_INTERACTIONS = """
INSERT INTO interactions (id, session_id, question, question_classification,
                          generated_responses, selected_response, user_feedback, timestamp,
                          question_type)
SELECT md5('i' || k)::uuid, md5('s' || s)::uuid,
       'Question ' || k || ': how would you handle ' || ($4::text[])[1 + k % 4] || '?',
       CASE WHEN qt IS NOT NULL THEN
         jsonb_build_object('type', qt, 'category', ($5::text[])[1 + k % 4],
                            'difficulty', ($6::text[])[1 + k % 3],
                            'requiresSTAR', qt = 'behavioral') END,
       jsonb_build_array(jsonb_build_object(
         'id', 'r1', 'content', $7::text,
         'structure', CASE WHEN qt = 'behavioral' THEN 'STAR' ELSE 'direct' END,
         'estimatedDuration', 30 + k % 90, 'confidence', 0.5 + (k % 50) / 100.0,
         'tags', jsonb_build_array('scale'))),
       CASE WHEN k % 3 = 0 THEN $7::text END,
       CASE WHEN k % 4 <> 0 THEN 1 + k % 5 END,
       pg_temp.scale_created(s, $8) + (o + 1) * interval '5 seconds',
       qt
FROM (
  SELECT k, pg_temp.scale_session(k) AS s, pg_temp.scale_ordinal(k) AS o,
         ($3::text[])[1 + k % 5] AS qt
  FROM generate_series($1::bigint, $2::bigint - 1) AS k
) AS g
"""

PG_METRICS = """
INSERT INTO session_metrics (id, session_id, transcription_latency_ms, response_generation_ms,
                             total_latency_ms, transcription_accuracy, user_satisfaction,
                             created_at)
SELECT md5('m' || m)::uuid, md5('s' || (m / 2))::uuid,
       50 + m % 200, 300 + (m * 7) % 1500, 350 + m % 200 + (m * 7) % 1500,
       0.7 + (m % 30) / 100.0,
       CASE WHEN m % 7 <> 0 THEN 1 + m % 5 END,
       pg_temp.scale_created(m / 2, $3) + ((m % 2) + 1) * interval '5 minutes'
FROM generate_series($1::bigint, $2::bigint - 1) AS m
"""

CHUNK = 500_000


SEEDED_TABLES = ("interview_sessions", "interactions", "session_metrics")
ROLLUP_TABLES = ("analytics_days", "analytics_metric_days", "analytics_question_types")


def _chunks(lo: int, hi: int, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    for a in range(lo, hi, size):
        yield a, min(hi, a + size)


def pg_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def pg_dsn() -> str:
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{PG_DB}"


async def pg_create() -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        await conn.close()
    await upgrade(pg_url(pg_dsn()))


async def pg_seed(prev: Size | None, size: Size, anchor: datetime) -> None:
    conn = await asyncpg.connect(pg_dsn())
    try:
        # Not synchronous_commit = off: VACUUM cannot mark a page all-visible
        # while the commit of its rows is not flushed, and index-only scans
        # would then visit the heap.
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for sql in PG_FUNCTIONS:
            await conn.execute(sql)
        s0 = prev.sessions if prev else 0
        for a, b in _chunks(s0, size.sessions):
            await conn.execute(
                PG_SESSIONS,
                a,
                b,
                size.users - 1,
                json.dumps(SETTINGS_DOC),
                HEAVY,
                TITLES,
                COMPANIES,
                TERM_DESCRIPTION,
                DESCRIPTIONS,
                json.dumps(REQUIREMENTS),
                INTERVIEW_TYPES,
                SENIORITIES,
                anchor,
                SEARCH_SHORT_BYTES,
            )
        i0 = prev.interactions if prev else 0
        for a, b in _chunks(i0, size.interactions):
            await conn.execute(
                PG_INTERACTIONS,
                a,
                b,
                QUESTION_TYPES,
                TOPICS,
                CATEGORIES,
                DIFFICULTIES,
                ANSWER,
                anchor,
            )
        m0 = prev.metrics if prev else 0
        for a, b in _chunks(m0, size.metrics):
            await conn.execute(PG_METRICS, a, b, anchor)
        # The analytics rollups, rebuilt from the rows as migration 0004 does
        # (the application keeps them up to date on every write).
        async with conn.transaction():
            for stmt in rebuild_statements("postgresql"):
                c = compiled_for_asyncpg(stmt)
                await conn.execute(c.sql, *c.args({}))
        for table in (*SEEDED_TABLES, *ROLLUP_TABLES):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def pg_counts() -> dict[str, int]:
    conn = await asyncpg.connect(pg_dsn())
    try:
        out = {}
        for table in ("interview_sessions", "interactions", "session_metrics"):
            out[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        out["heavy"] = int(
            await conn.fetchval("SELECT count(*) FROM interview_sessions WHERE user_id = $1", HEAVY)
        )
        out["details"] = int(
            await conn.fetchval(
                "SELECT count(*) FROM interactions WHERE session_id = md5('s0')::uuid"
            )
        )
        out["bytes"] = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        return out
    finally:
        await conn.close()


# ---------------------------------------------------------------- SQLite seeding
# The same rows, computed in Python, in SQLAlchemy's storage format: UUIDs as
# 32 hex digits, timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, no zone),
# JSON as compact text.


def _md5(prefix: str, n: int) -> str:
    return hashlib.md5(f"{prefix}{n}".encode()).hexdigest()


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def created(i: int, anchor: datetime) -> datetime:
    return anchor - timedelta(seconds=(i * SPREAD) % TWO_YEARS_S, microseconds=(i * 7919) % 10**6)


def session_row(i: int, users: int, anchor: datetime) -> tuple[Any, ...]:
    title = TITLES[(i // 10) % 8]
    company = COMPANIES[(i // 7) % 12]
    if 70 <= i % 1000 <= 79:
        description: str | None = TERM_DESCRIPTION
    elif i % 3 == 0:
        description = None
    else:
        description = DESCRIPTIONS[(i // 11) % 6]
    itype = INTERVIEW_TYPES[(i // 100) % 5]
    job = {
        "title": title,
        "company": company,
        "description": description,
        "requirements": REQUIREMENTS[(i // 13) % 3],
        "interviewType": itype,
        "seniority": SENIORITIES[(i // 3) % 4],
    }
    status = {0: "active", 1: "paused"}.get((i // 10) % 10, "completed")
    text = "\n".join((title, company, description or "")).lower()
    at = created(i, anchor)
    ended = _ts(at + timedelta(minutes=(i % 50) + 10)) if status == "completed" else None
    return (
        _md5("s", i),
        HEAVY if i % 10 == 0 else f"scale-user-{i % (users - 1)}",
        _json(job),
        status,
        _json(SETTINGS_DOC),
        _ts(at),
        ended,
        _ts(at),
        itype,
        text,
        text if len(text.encode()) <= SEARCH_SHORT_BYTES else None,
    )


def interaction_row(k: int, anchor: datetime) -> tuple[Any, ...]:
    s, o = session_of_interaction(k)
    qt = QUESTION_TYPES[k % 5]
    qc = (
        None
        if qt is None
        else {
            "type": qt,
            "category": CATEGORIES[k % 4],
            "difficulty": DIFFICULTIES[k % 3],
            "requiresSTAR": qt == "behavioral",
        }
    )
    response = {
        "id": "r1",
        "content": ANSWER,
        "structure": "STAR" if qt == "behavioral" else "direct",
        "estimatedDuration": 30 + k % 90,
        "confidence": 0.5 + (k % 50) / 100.0,
        "tags": ["scale"],
    }
    return (
        _md5("i", k),
        _md5("s", s),
        f"Question {k}: how would you handle {TOPICS[k % 4]}?",
        None if qc is None else _json(qc),
        _json([response]),
        ANSWER if k % 3 == 0 else None,
        1 + k % 5 if k % 4 else None,
        _ts(created(s, anchor) + timedelta(seconds=5 * (o + 1))),
        qt,
    )


def metric_row(m: int, anchor: datetime) -> tuple[Any, ...]:
    return (
        _md5("m", m),
        _md5("s", m // 2),
        50 + m % 200,
        300 + (m * 7) % 1500,
        350 + m % 200 + (m * 7) % 1500,
        0.7 + (m % 30) / 100.0,
        1 + m % 5 if m % 7 else None,
        _ts(created(m // 2, anchor) + timedelta(minutes=5 * ((m % 2) + 1))),
    )


SQLITE_INSERTS = {
    "interview_sessions": "INSERT INTO interview_sessions (id, user_id, job_context, status, "
    "settings, started_at, ended_at, created_at, interview_type, search_text, search_short) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "interactions": "INSERT INTO interactions (id, session_id, question, "
    "question_classification, generated_responses, selected_response, user_feedback, "
    "timestamp, question_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "session_metrics": "INSERT INTO session_metrics (id, session_id, transcription_latency_ms, "
    "response_generation_ms, total_latency_ms, transcription_accuracy, user_satisfaction, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}
BATCH = 20_000


def sqlite_create() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{SQLITE_PATH}"))


def sqlite_seed(prev: Size | None, size: Size, anchor: datetime) -> None:
    db = sqlite3.connect(SQLITE_PATH, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-200000")
        plan = (
            (
                "interview_sessions",
                prev.sessions if prev else 0,
                size.sessions,
                lambda i: session_row(i, size.users, anchor),
            ),
            (
                "interactions",
                prev.interactions if prev else 0,
                size.interactions,
                lambda k: interaction_row(k, anchor),
            ),
            (
                "session_metrics",
                prev.metrics if prev else 0,
                size.metrics,
                lambda m: metric_row(m, anchor),
            ),
        )
        for table, lo, hi, row in plan:
            for a, b in _chunks(lo, hi, BATCH):
                db.execute("BEGIN")
                db.executemany(SQLITE_INSERTS[table], (row(n) for n in range(a, b)))
                db.execute("COMMIT")
        db.execute("BEGIN")
        for stmt in rebuild_statements("sqlite"):  # the analytics rollups (see pg_seed)
            c = stmt.compile(dialect=sqlite_dialect.dialect())
            db.execute(c.string, [c.params[n] for n in c.positiontup or ()])
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def sqlite_counts() -> dict[str, int]:
    db = sqlite3.connect(SQLITE_PATH)
    try:
        out = {}
        for table in ("interview_sessions", "interactions", "session_metrics"):
            out[table] = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        out["heavy"] = int(
            db.execute(
                "SELECT count(*) FROM interview_sessions WHERE user_id = ?", (HEAVY,)
            ).fetchone()[0]
        )
        out["details"] = int(
            db.execute(
                "SELECT count(*) FROM interactions WHERE session_id = ?", (_md5("s", 0),)
            ).fetchone()[0]
        )
        out["bytes"] = SQLITE_PATH.stat().st_size
        return out
    finally:
        db.close()


# ---------------------------------------------------------------- measuring


@dataclass
class Measure:
    rps: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    requests: int = 0
    non_2xx: int = 0
    timeouts: int = 0
    alone_ms: float = 0.0  # median of a few requests one at a time, no concurrency
    seconds: int = 0  # how long wrk measured
    error: str | None = None  # the answer of a failed check (then nothing is timed)
    answers: list[str] = field(default_factory=list)  # first non-2xx answers under load

    @property
    def failed(self) -> bool:
        return self.error is not None or self.non_2xx > 0 or self.timeouts > 0 or self.p50 <= 0


@dataclass
class Step:
    label: str
    rows: dict[str, int]
    seed_seconds: float
    deep_depth: int = 0
    deep_walk_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    workloads: dict[str, Measure] = field(default_factory=dict)


_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


# Appended to bench.run's wrk script: the first few answers that are not 2xx
# are printed, so a failing workload says what it answered.
LUA_SHOW_ERRORS = r"""
local shown = 0
function response(status, headers, body)
  if status >= 300 and shown < 3 then
    shown = shown + 1
    local text = string.gsub(string.sub(body or "", 1, 300), "\n", " ")
    io.write("NON2XX " .. status .. " " .. text .. "\n")
  end
end
"""


def run_wrk(wrk: str, url: str, script: Path, seconds: int) -> tuple[dict[str, float], list[str]]:
    """bench.run's wrk call, with a long --timeout (slow answers count as
    latency), and the first answers that were not 2xx."""
    proc = subprocess.run(
        [
            *pinned(1),
            wrk,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            WRK_TIMEOUT,
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or proc.stderr.strip():
        raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    out = proc.stdout
    lat = {
        pct: float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        for pct, v, unit in _LAT.findall(out)
    }

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    samples = [line[7:] for line in out.splitlines() if line.startswith("NON2XX ")]
    return {
        "rps": num(r"Requests/sec:\s+([\d.]+)"),
        "p50": lat.get("50", 0.0),
        "p99": lat.get("99", 0.0),
        "requests": num(r"(\d+) requests in"),
        "non_2xx": num(r"Non-2xx or 3xx responses:\s+(\d+)"),
        "timeouts": num(r"timeout (\d+)"),
    }, samples


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def _pg_busy() -> int:
    conn = await asyncpg.connect(pg_dsn())
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' "
                "AND pid <> pg_backend_pid()",
                PG_DB,
            )
        )
    finally:
        await conn.close()


def drain(pid: int, db: str, limit: float = 120.0) -> None:
    """Wait until the requests wrk left behind are done: when wrk stops, the
    server still runs the ones in flight (and their queries), which would
    otherwise slow down the next measurement. Idle: the server process used
    (almost) no CPU for 0.3 s and PostgreSQL runs none of its queries."""
    deadline = time.monotonic() + limit
    last = _cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _cpu_ticks(pid)
        idle = now - last <= 1
        last = now
        if idle and (db != "postgresql" or asyncio.run(_pg_busy()) == 0):
            return
    print(f"    (server still busy after {limit:.0f} s)", flush=True)


def _headers(req: Request) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {req.token}"} if req.token else {}
    if req.body is not None:
        headers["Content-Type"] = "application/json"
    return headers


def check(client: httpx.Client, url: str, req: Request) -> tuple[httpx.Response | None, str]:
    """One request: the response when it is 2xx without "errors", else what it said."""
    try:
        r = client.request(req.method, url, content=req.body, headers=_headers(req), timeout=120)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if r.status_code >= 300 or b'"errors"' in r.content:
        return None, f"{r.status_code}: {r.text[:300]}"
    return r, ""


def alone(client: httpx.Client, url: str, req: Request, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.request(req.method, url, content=req.body, headers=_headers(req), timeout=120)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def deep_cursor(client: httpx.Client, base: str, token: str, depth: int) -> str:
    """Pages of up to 1000 (the last one shorter) following Link rel=next until
    ``depth`` sessions are behind: the cursor of the row at that depth."""
    consumed, cursor = 0, None
    while consumed < depth:
        query = f"limit={min(1000, depth - consumed)}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(
            f"{base}/interview-sessions?{query}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        r.raise_for_status()
        consumed += len(r.json())
        link = re.search(r'<([^>]+)>;\s*rel="next"', r.headers.get("link", ""))
        if link is None:
            raise SystemExit(f"no next link after {consumed} sessions (wanted {depth})")
        cursor = parse_qs(urlsplit(link.group(1)).query)["cursor"][0]
    assert cursor is not None
    return cursor


def validate(name: str, r: httpx.Response, size: Size, recent_days: int) -> str:
    """Each answer looks like what was seeded; a note when it does not."""
    body = r.json()
    if name in (W_FIRST, W_DEEP, W_FILTER, W_SEARCH):
        want = {W_FILTER: "paused"}.get(name)
        if not isinstance(body, list) or not body:
            return f"{name}: empty page"
        if want and any(s["status"] != want for s in body):
            return f"{name}: a session that is not {want}"
        if name == W_SEARCH and any(
            TERM not in (s["jobContext"]["description"] or "") for s in body
        ):
            return f"{name}: a session without {TERM}"
        if any(s["userId"] != HEAVY for s in body):
            return f"{name}: another user's session"
    elif name == W_ABSENT:
        if body != []:
            return f"{name}: {len(body)} sessions"
    elif name == W_DETAILS:
        if len(body["interactions"]) != size.details_interactions:
            return f"details: {len(body['interactions'])} interactions"
    elif name == W_ALL:
        if body["totalSessions"] != size.heavy:
            return f"analytics: totalSessions {body['totalSessions']} != {size.heavy}"
    elif name == W_RECENT:
        share = body["totalSessions"] / max(1, size.heavy)
        return f"last {recent_days} days: {body['totalSessions']} sessions ({share:.1%})"
    return ""


def measure(db: str, size: Size, rows: dict[str, int], seed_s: float, wrk: str) -> Step:
    step = Step(size.label, rows, seed_s)
    url = pg_url(pg_dsn()) if db == "postgresql" else f"sqlite+aiosqlite:///{SQLITE_PATH}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "JWT_SECRET": SECRET,
        "RATE_LIMITS": RATE_LIMITS,
        "LOG_LEVEL": "WARNING",
        "MAX_ACTIVE_SESSIONS": "1000000",
    }
    token = issue_token(Settings(jwt_secret=SECRET), HEAVY, ttl_seconds=6 * 3600)
    port = free_port()
    log = WORK / f"scale-{db}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*pinned(0), str(BIN / "interview-api"), "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base + "/health", proc, log)
            with httpx.Client() as client:
                plan: dict[str, Request | None] = {
                    W_FIRST: Request("GET", "/interview-sessions?limit=20", token=token)
                }
                step.deep_depth = size.deep
                if size.deep > 0:
                    t0 = time.monotonic()
                    cursor = deep_cursor(client, base, token, size.deep)
                    step.deep_walk_seconds = time.monotonic() - t0
                    plan[W_DEEP] = Request(
                        "GET", f"/interview-sessions?limit=20&cursor={cursor}", token=token
                    )
                else:
                    plan[W_DEEP] = None
                    step.notes.append("deep page: the heavy user has too few sessions")
                start = (datetime.now(UTC).date() - timedelta(days=29)).isoformat()
                plan.update(
                    {
                        W_FILTER: Request(
                            "GET", "/interview-sessions?limit=20&status=paused", token=token
                        ),
                        W_SEARCH: Request(
                            "GET", f"/interview-sessions?limit=20&q={TERM}", token=token
                        ),
                        W_ABSENT: Request(
                            "GET", f"/interview-sessions?limit=20&q={ABSENT}", token=token
                        ),
                        W_DETAILS: Request(
                            "GET", f"/interview-sessions/{_uuid(_md5('s', 0))}/details", token=token
                        ),
                        W_RECENT: Request(
                            "GET", f"/interview-sessions/analytics?startDate={start}", token=token
                        ),
                        W_ALL: Request("GET", "/interview-sessions/analytics", token=token),
                        W_GRAPHQL: Request("POST", "/graphql", GRAPHQL_PAGE, token),
                    }
                )
                for i, (name, req) in enumerate(plan.items()):
                    if req is None:
                        continue
                    m = step.workloads[name] = Measure()
                    r, error = check(client, base + req.path, req)
                    if r is None:
                        m.error = error
                        print(f"    {name:<40} ERROR {error}", flush=True)
                        continue
                    note = validate(name, r, size, 30)
                    if note:
                        step.notes.append(note)
                    m.alone_ms = alone(client, base + req.path, req)
                    script = lua_script(req, f"scale-{i}")
                    script.write_text(script.read_text() + LUA_SHOW_ERRORS)
                    # A slow workload (its sequential requests were its warm-up)
                    # runs long enough for several rounds of CONNECTIONS answers.
                    slow = m.alone_ms > SLOW_MS
                    if WARMUP and not slow:
                        run_wrk(wrk, base + req.path, script, WARMUP)
                        drain(proc.pid, db)
                    m.seconds = SECONDS
                    if slow:
                        wanted = m.alone_ms / 1000 * CONNECTIONS * 4
                        m.seconds = max(SECONDS, min(MAX_SECONDS, math.ceil(wanted)))
                    res, m.answers = run_wrk(wrk, base + req.path, script, m.seconds)
                    drain(proc.pid, db)
                    m.rps, m.p50, m.p99 = res["rps"], res["p50"], res["p99"]
                    m.requests = int(res["requests"])
                    m.non_2xx, m.timeouts = int(res["non_2xx"]), int(res["timeouts"])
                    print(
                        f"    {name:<40} {m.rps:>8,.1f} req/s  p50 {m.p50:>8.1f} ms  "
                        f"p99 {m.p99:>8.1f} ms  alone {m.alone_ms:>7.1f} ms"
                        + (f"  non-2xx {m.non_2xx}" if m.non_2xx else "")
                        + (f"  timeouts {m.timeouts}" if m.timeouts else ""),
                        flush=True,
                    )
        finally:
            _stop(proc)
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    if errors:
        step.notes.append(f"server log: {len(errors)} ERROR lines, first: {errors[0][:200]}")
    for note in step.notes:
        print(f"    note: {note}", flush=True)
    return step


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


# ---------------------------------------------------------------- report


@dataclass
class Target:
    name: str
    measured: str
    ok: bool | None  # None: could not be measured


def targets(results: dict[str, list[Step]]) -> list[Target]:
    """The goals, each PASS/FAIL; a workload whose timed run had answers that
    were not 2xx (or timed out) fails whatever its latency."""
    out: list[Target] = []

    def get(db: str, w: str, label: str = "100%") -> Measure | None:
        for step in results.get(db, []):
            m = step.workloads.get(w)
            if step.label == label and m is not None and m.error is None and m.p50 > 0:
                return m
        return None

    def bad(*ms: Measure) -> str:
        n = sum(m.non_2xx + m.timeouts for m in ms)
        return f" ({n} answers not 2xx or timed out)" if n else ""

    for db in results:
        first = get(db, W_FIRST)
        for w, limit in ((W_DEEP, 1.5), (W_FILTER, 2.0), (W_SEARCH, 2.0)):
            name = f"{db}: {w} p50 <= {limit}x first page's (100%)"
            m = get(db, w)
            if first is None or m is None:
                out.append(Target(name, "n/a", None))
                continue
            ratio = m.p50 / first.p50
            out.append(
                Target(
                    name,
                    f"{m.p50:.1f} / {first.p50:.1f} ms = {ratio:.2f}x{bad(m, first)}",
                    ratio <= limit and not bad(m, first),
                )
            )
    if "postgresql" in results:
        for w, limit in ((W_ALL, 250.0), (W_RECENT, 25.0)):
            name = f"postgresql: {w} p50 < {limit:.0f} ms (100%)"
            m = get("postgresql", w)
            if m is None:
                out.append(Target(name, "n/a", None))
                continue
            out.append(Target(name, f"{m.p50:.1f} ms{bad(m)}", m.p50 < limit and not bad(m)))
    for db in results:
        for w in (W_FIRST, W_DEEP, W_DETAILS):
            name = f"{db}: {w} p50 grows <= 1.5x from 1% to 100%"
            lo, hi = get(db, w, "1%"), get(db, w)
            if lo is None or hi is None:
                out.append(Target(name, "n/a", None))
                continue
            ratio = hi.p50 / lo.p50
            out.append(
                Target(
                    name,
                    f"{lo.p50:.1f} -> {hi.p50:.1f} ms = {ratio:.2f}x{bad(lo, hi)}",
                    ratio <= 1.5 and not bad(lo, hi),
                )
            )
    if "sqlite" in results:
        for w in WORKLOADS:
            name = f"sqlite: {w} p50 < 100 ms (100%)"
            m = get("sqlite", w)
            if m is None:
                out.append(Target(name, "n/a", None))
                continue
            out.append(Target(name, f"{m.p50:.1f} ms{bad(m)}", m.p50 < 100.0 and not bad(m)))
    return out


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )


def _cell(m: Measure | None) -> tuple[str, str, str]:
    if m is None:
        return ("n/a", "", "")
    if m.error is not None:
        return ("ERROR", m.error.split(":", 1)[0], "")
    flag = " (!)" if m.failed else ""
    return (f"{m.rps:,.0f}{flag}", f"{m.p50:.1f}", f"{m.p99:.1f}")


def tables(results: dict[str, list[Step]], goals: list[Target]) -> str:
    parts = []
    for db, steps in results.items():
        header = ("workload",)
        for s in steps:
            header += (f"{s.label} req/s", f"{s.label} p50 ms", f"{s.label} p99 ms")
        header += ("p50 growth 100%/1%",)
        rows = []
        for w in WORKLOADS:
            cells: tuple[str, ...] = (w,)
            for s in steps:
                cells += _cell(s.workloads.get(w))
            first, last = steps[0].workloads.get(w), steps[-1].workloads.get(w)
            ok = all(x is not None and not x.failed for x in (first, last))
            growth = f"{last.p50 / first.p50:.2f}x" if ok and first and last else "n/a"
            rows.append((*cells, growth))
        sizes_line = "; ".join(
            f"{s.label}: {s.rows['interview_sessions']:,} sessions, "
            f"{s.rows['interactions']:,} interactions, {s.rows['session_metrics']:,} metrics, "
            f"heavy user {s.rows['heavy']:,} sessions, "
            + (f"deep page at {s.deep_depth:,}, " if s.deep_depth > 0 else "no deep page, ")
            + f"details session {s.rows['details']:,} interactions, "
            f"seeded in {s.seed_seconds:.0f} s, {s.rows['bytes'] / 2**20:,.0f} MiB"
            for s in steps
        )
        alone_line = ", ".join(
            f"{w} {m.alone_ms:.1f}"
            for w in WORKLOADS
            if (m := steps[-1].workloads.get(w)) is not None and m.error is None
        )
        flagged = [
            f"{w} at {s.label}: "
            + (
                f"the check answered {m.error}"
                if m.error is not None
                else f"{m.non_2xx} of {m.requests} answers not 2xx, {m.timeouts} timeouts"
                + (f"; first: {m.answers[0][:160]}" if m.answers else "")
            )
            for s in steps
            for w, m in s.workloads.items()
            if m.failed
        ]
        notes = "".join(f"\n* (!) {f}" for f in flagged)
        if notes:
            notes = "\n" + notes
        parts.append(
            f"**{db}** ({sizes_line})\n\n{_table(header, rows)}{notes}\n\n"
            f"One request at a time (no concurrency), median of 5, ms, at "
            f"{steps[-1].label}: {alone_line}."
        )
    verdict = {True: "PASS", False: "FAIL", None: "n/a"}
    parts.append(
        _table(
            ("target", "measured", "result"),
            [(g.name, g.measured, verdict[g.ok]) for g in goals],
        )
    )
    return "\n\n".join(parts)


README_TEXT = """\
## Scale: cost curves

`make bench` then runs `python -m bench.scale` (`bench/scale.py`): the list,
details and analytics routes of the real server (`interview-api serve`, every
protection on, one process pinned to CPU 0) measured by wrk (pinned to CPU 1)
as one heavy user, while the database grows from 1% to 10% to 100% of its
full size, to see whether a request costs the same on a large database as on
a small one.

* **Data.** PostgreSQL: 1,000,000 sessions, 4,000,000 interactions and
  2,000,000 metrics over 10,000 users, the heavy user holding 100,000
  sessions (10%); SQLite: a tenth of that. Creation times are spread over the
  last two years (so the last 30 days hold about 1/24 of the rows); 10%
  of sessions are paused, 10% active, the rest completed; 1% carry the word
  `{term}` in their description; one session of the heavy user holds exactly
  500 interactions. `BENCH_SCALE` (default 1) multiplies every count
  (`BENCH_SCALE=0.01 make bench` for a quick run; a run below 1 writes
  its numbers to `bench/.work/` only, not here).
* **Seeding.** The schema comes from the project's migrations; the rows are
  written by bulk SQL at each size, never through the API: PostgreSQL
  `INSERT ... SELECT ... FROM generate_series(...)`, SQLite batched
  `executemany`, filling the derived columns (`interview_type`,
  `search_text`, `question_type`) as the application does. Each step tops up
  the rows the previous one lacks, then runs `VACUUM (ANALYZE)` (PostgreSQL)
  or `ANALYZE` (SQLite) and starts a new server process.
* **Workloads.** First page (`limit=20`); a page 50,000 rows deep (or
  heavy user's sessions - 20 when fewer), reached by following
  `Link: rel="next"` with `limit=1000`, then timed with its cursor; the
  paused sessions; a search matching 1% of the user's sessions, and one
  matching none of them (`q={absent}`); the details
  of the session with 500 interactions; analytics over the last 30 days and
  over all of the user's sessions; GraphQL `sessionsConnection(first: 20)`.
  Each is checked once for a correct answer, timed alone (the median of five
  sequential requests: "one request at a time" below), warmed up for
  {warmup} s, then measured for {seconds} s with
  `wrk -t1 -c{connections} --timeout {timeout}`: req/s, p50 and p99 are wrk's,
  under that concurrency. A workload slower than {slow:.0f} ms alone gets no
  warm-up (its sequential requests were one) and a longer run (4 x
  {connections} x its time alone, at most {max_seconds} s) so that it completes
  a few rounds of requests. After every wrk run the script waits until the
  server process and PostgreSQL are idle: wrk leaves requests in flight when
  it stops, and they would slow down the next workload.

Latest run: {when}, `BENCH_SCALE={scale}`, {machine}, {code}; the scale part
(seeding included) took {duration}. Raw numbers: `bench/scale-results.json`.

{tables}
"""


def report(
    results: dict[str, list[Step]], duration: float, machine: str, when: str, code: str
) -> tuple[str, dict[str, Any]]:
    goals = targets(results)
    text = tables(results, goals)
    minutes = f"{duration / 60:.1f} minutes"
    section = README_TEXT.format(
        term=TERM,
        absent=ABSENT,
        warmup=WARMUP,
        seconds=SECONDS,
        connections=CONNECTIONS,
        timeout=WRK_TIMEOUT,
        slow=SLOW_MS,
        max_seconds=MAX_SECONDS,
        code=code,
        when=when,
        scale=SCALE,
        machine=machine,
        duration=minutes,
        tables=text,
    )
    raw = {
        "when": when,
        "scale": SCALE,
        "machine": machine,
        "code": code,
        "wrk": f"-t1 -c{CONNECTIONS} -d{SECONDS}s --timeout {WRK_TIMEOUT} (warm-up {WARMUP}s)",
        "duration_seconds": round(duration, 1),
        "databases": {
            db: [
                {
                    "size": s.label,
                    "rows": s.rows,
                    "seed_seconds": round(s.seed_seconds, 1),
                    "deep_depth": s.deep_depth,
                    "deep_walk_seconds": round(s.deep_walk_seconds, 2),
                    "notes": s.notes,
                    "workloads": {
                        w: {
                            "rps": round(m.rps, 1),
                            "p50_ms": m.p50,
                            "p99_ms": m.p99,
                            "requests": m.requests,
                            "non_2xx": m.non_2xx,
                            "timeouts": m.timeouts,
                            "alone_ms": round(m.alone_ms, 2),
                            "seconds": m.seconds,
                            "error": m.error,
                        }
                        | {"non_2xx_answers": m.answers}
                        for w, m in s.workloads.items()
                    },
                }
                for s in steps
            ]
            for db, steps in results.items()
        },
        "targets": [{"target": g.name, "measured": g.measured, "pass": g.ok} for g in goals],
    }
    print()
    print(text)
    return section, raw


NOTES = re.compile(r"<!-- scale-notes -->.*?<!-- /scale-notes -->", re.S)


def write_readme(section: str) -> None:
    """The section between the scale markers; a hand-written block between
    ``<!-- scale-notes -->`` markers inside it is kept as it is."""
    text = README.read_text() if README.exists() else ""
    kept = NOTES.search(text)
    if kept is not None:
        section = section.rstrip() + "\n\n" + kept.group(0)
    block = f"<!-- scale -->\n{section.rstrip()}\n<!-- /scale -->"
    if "<!-- scale -->" in text:
        text = re.sub(r"<!-- scale -->.*?<!-- /scale -->", lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


# ---------------------------------------------------------------- main


def code_state() -> str:
    """Which code was measured: the commit, and whether app/ differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--", "app").splitlines() if line]
    if changed:
        return f"code at commit {head} plus uncommitted changes to {len(changed)} files in app/"
    return f"code at commit {head}"


def load(raw: dict[str, Any]) -> dict[str, list[Step]]:
    """Results back from bench/scale-results.json (``--report``)."""
    return {
        db: [
            Step(
                s["size"],
                s["rows"],
                s["seed_seconds"],
                s["deep_depth"],
                s["deep_walk_seconds"],
                s["notes"],
                {
                    w: Measure(
                        rps=m["rps"],
                        p50=m["p50_ms"],
                        p99=m["p99_ms"],
                        requests=m["requests"],
                        non_2xx=m["non_2xx"],
                        timeouts=m["timeouts"],
                        alone_ms=m["alone_ms"],
                        seconds=m["seconds"],
                        error=m["error"],
                        answers=m["non_2xx_answers"],
                    )
                    for w, m in s["workloads"].items()
                },
            )
            for s in steps
        ]
        for db, steps in raw["databases"].items()
    }


def main() -> None:
    if sys.argv[1:] == ["--report"]:
        # Render the README section again from the last full run's raw numbers.
        raw = json.loads(RESULTS.read_text())
        section, _ = report(
            load(raw), raw["duration_seconds"], raw["machine"], raw["when"], raw["code"]
        )
        write_readme(section)
        return
    started = time.monotonic()
    code = code_state()
    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    # Every row's time is relative to this instant: an hour back, so no row
    # (not even the 500 interactions of the newest session) is in the future.
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    results: dict[str, list[Step]] = {}
    for db in DATABASES:
        print(f"{db}: fresh database, migrations ...", flush=True)
        if db == "postgresql":
            asyncio.run(pg_create())
        else:
            sqlite_create()
        prev = None
        for size in sizes(db):
            print(
                f"  {size.label}: seeding to {size.sessions:,} sessions, "
                f"{size.interactions:,} interactions, {size.metrics:,} metrics ...",
                flush=True,
            )
            t0 = time.monotonic()
            if db == "postgresql":
                asyncio.run(pg_seed(prev, size, anchor))
                rows = asyncio.run(pg_counts())
            else:
                sqlite_seed(prev, size, anchor)
                rows = sqlite_counts()
            seed_s = time.monotonic() - t0
            print(f"  {size.label}: seeded in {seed_s:.1f} s: {rows}", flush=True)
            results.setdefault(db, []).append(measure(db, size, rows, seed_s, wrk))
            prev = size
    duration = time.monotonic() - started
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section, raw = report(results, duration, machine, when, code)
    print(f"\nscale benchmark took {duration / 60:.1f} minutes", flush=True)
    if SCALE == 1.0 and set(DATABASES) == set(FULL):
        RESULTS.write_text(json.dumps(raw, indent=2) + "\n")
        write_readme(section)
        print(f"wrote {RESULTS.relative_to(ROOT)} and the scale section of bench/README.md")
    else:
        out = WORK / f"scale-results-{SCALE:g}.json"
        out.write_text(json.dumps(raw, indent=2) + "\n")
        (WORK / f"scale-readme-{SCALE:g}.md").write_text(section)
        print(f"BENCH_SCALE={SCALE:g}: wrote {out.relative_to(ROOT)} (README untouched)")


if __name__ == "__main__":
    sys.exit(main())
