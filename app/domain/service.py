"""The one domain service both faces call, assembled from its parts."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.analytics import AnalyticsService
from app.domain.base import Clock, utcnow
from app.domain.interactions import InteractionService
from app.domain.metrics import MetricService
from app.domain.paging import Cursors
from app.domain.ports import Database
from app.domain.sessions import SessionService


@dataclass(frozen=True, slots=True)
class Service:
    db: Database
    sessions: SessionService
    interactions: InteractionService
    metrics: MetricService
    analytics: AnalyticsService

    @classmethod
    def build(
        cls,
        db: Database,
        *,
        max_active_sessions: int,
        cursor_secret: bytes = b"",
        clock: Clock = utcnow,
    ) -> Service:
        cursors = Cursors(cursor_secret)
        return cls(
            db=db,
            sessions=SessionService(
                db, max_active=max_active_sessions, cursors=cursors, clock=clock
            ),
            interactions=InteractionService(db, cursors, clock),
            metrics=MetricService(db, clock),
            analytics=AnalyticsService(db, clock),
        )

    async def healthy(self) -> bool:
        return await self.db.ping()
