"""The bare baseline: Litestar + raw asyncpg + msgspec, no auth, no limits.

It answers the same query with the same JSON as GET /interview-sessions?limit=10,
so the service's REST route can be measured against the least a Python
handler on this stack can do. Run: uvicorn bench.baseline:app (DATABASE_URL).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, get

DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres").replace(
    "postgresql+asyncpg://", "postgresql://"
)
USER = os.environ.get("BASELINE_USER", "bench-user-0")

SQL = (
    "SELECT id, user_id, job_context, status, settings, started_at, ended_at, created_at "
    "FROM interview_sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
)


class JobContext(msgspec.Struct, rename="camel"):
    title: str
    company: str
    description: str | None = None
    requirements: list[str] = []
    interview_type: str | None = None
    seniority: str | None = None


class Settings(msgspec.Struct, rename="camel"):
    transcription_enabled: bool = True
    response_generation: bool = True
    confidence_threshold: float = 0.8
    preferred_language: str = "en"
    enabled_features: list[str] = []


class Session(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    user_id: str
    job_context: JobContext
    status: str
    settings: Settings
    started_at: datetime
    ended_at: datetime | None
    created_at: datetime


pool: Any = None


async def startup() -> None:
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=2, max_size=10)


async def shutdown() -> None:
    await pool.close()


@get("/interview-sessions")
async def sessions(limit: int = 10) -> list[Session]:
    rows = await pool.fetch(SQL, USER, limit)
    return [
        Session(
            id=r[0],
            user_id=r[1],
            job_context=msgspec.json.decode(r[2], type=JobContext),
            status=r[3],
            settings=msgspec.json.decode(r[4], type=Settings),
            started_at=r[5],
            ended_at=r[6],
            created_at=r[7],
        )
        for r in rows
    ]


app = Litestar([sessions], on_startup=[startup], on_shutdown=[shutdown], logging_config=None)
