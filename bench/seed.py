"""Seed a benchmark database through the project's own service.

Deterministic: the same users, sessions, interactions and metrics every run.

* ``bench-user-0`` .. ``bench-user-{N-1}``: 10-100 sessions each, a few
  interactions and metrics on some of them (the realistic background).
* ``bench-details``: one session with 20 interactions and 10 metrics.
* ``bench-batch``: 50 sessions with 3 interactions and 2 metrics each.
* ``bench-analytics``: 100 sessions over 30 days, completed ones with
  durations, classified interactions and metrics.
* ``bench-writer``: one active session that receives the write workload.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.config import Settings
from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    Difficulty,
    GeneratedResponse,
    JobContext,
    Principal,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
    ResponseStructure,
    SessionSettings,
    SessionStatus,
)
from app.domain.service import Service

START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
TYPES = list(QuestionType)


class Clock:
    """Moves forward a little on every call, so rows get distinct, realistic times."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=7)
        return self.now

    def jump(self, to: datetime) -> None:
        self.now = to


@dataclass
class Seeded:
    details_session: str
    writer_session: str
    users: list[str]


def _job(rng: random.Random, i: int) -> JobContext:
    return JobContext(
        title=f"Software Engineer {i}",
        company=rng.choice(["Tech Corp", "Acme", "Initech", "Globex"]),
        description="Full-stack development role" if i % 2 else None,
        requirements=rng.sample(["Python", "SQL", "React", "Go", "Kubernetes", "AWS"], 3),
        interview_type=rng.choice(TYPES),
        seniority=rng.choice(list(Difficulty)),
    )


def _interaction(rng: random.Random, sid: str, k: int) -> CreateInteraction:
    return CreateInteraction(
        session_id=sid,
        question=f"Question {k}: tell me about a time you shipped something hard.",
        question_classification=QuestionClassification(
            type=rng.choice(TYPES), category="experience", difficulty=Difficulty.MID
        ),
        generated_responses=[
            GeneratedResponse(
                id=f"response-{k}-{j}",
                content="I have 3 years of experience with React and led a migration...",
                structure=rng.choice(list(ResponseStructure)),
                estimated_duration=45,
                confidence=0.9,
                tags=["experience", "technical"],
            )
            for j in range(2)
        ],
    )


def _metric(rng: random.Random, sid: str) -> RecordMetrics:
    t = rng.randint(300, 1500)
    g = rng.randint(300, 1500)
    return RecordMetrics(
        session_id=sid,
        transcription_latency_ms=t,
        response_generation_ms=g,
        total_latency_ms=t + g,
        transcription_accuracy=round(rng.uniform(0.85, 0.99), 2),
        user_satisfaction=rng.randint(3, 5),
    )


async def _sessions(
    svc: Service,
    rng: random.Random,
    user: Principal,
    n: int,
    interactions: int,
    metrics: int,
    clock: Clock,
    every: int = 1,
) -> list[str]:
    ids = []
    for i in range(n):
        s = await svc.sessions.create(
            user, CreateSession(job_context=_job(rng, i), settings=SessionSettings())
        )
        sid = str(s.id)
        if i % every == 0:
            for k in range(interactions):
                await svc.interactions.create(user, _interaction(rng, sid, k))
            for _ in range(metrics):
                await svc.metrics.record(user, _metric(rng, sid))
        final = SessionStatus.COMPLETED if i % 3 else SessionStatus.PAUSED
        await svc.sessions.set_status(user, sid, final)
        ids.append(sid)
    return ids


async def seed(database_url: str, background_users: int = 20) -> Seeded:
    await upgrade(database_url)
    clock = Clock(START)
    settings = Settings(database_url=database_url, jwt_secret="x" * 32)
    db = Database(settings)
    svc = Service.build(db, max_active_sessions=1000, clock=clock)
    rng = random.Random(20261127)
    try:
        users = []
        for u in range(background_users):
            name = f"bench-user-{u}"
            users.append(name)
            await _sessions(svc, rng, Principal(name), rng.randint(10, 100), 2, 1, clock, every=4)

        details_user = Principal("bench-details")
        [details] = await _sessions(svc, rng, details_user, 1, 20, 10, clock)

        await _sessions(svc, rng, Principal("bench-batch"), 50, 3, 2, clock)

        analytics_user = Principal("bench-analytics")
        for day in range(30):
            clock.jump(START + timedelta(days=day))
            await _sessions(svc, rng, analytics_user, 3 + (day % 2), 2, 2, clock)

        writer = await svc.sessions.create(
            Principal("bench-writer"), CreateSession(job_context=_job(rng, 0))
        )
        return Seeded(details_session=details, writer_session=str(writer.id), users=users)
    finally:
        await db.dispose()
