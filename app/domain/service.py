"""The one domain service both faces call, assembled from its parts."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta

from app.domain.analytics import AnalyticsService
from app.domain.base import Clock, utcnow
from app.domain.interactions import InteractionService
from app.domain.live import LiveService
from app.domain.metrics import MetricService
from app.domain.paging import Cursors
from app.domain.ports import Database, EventBus, Waiter
from app.domain.sessions import SessionService

DEFAULT_RETENTION = timedelta(days=7)


class NoBus:
    """No subscribers to wake (scripts, the benchmark's seeding)."""

    def published(self, user_id: str, seq: int) -> None:
        return None

    def waiter(self, user_id: str) -> Waiter:
        raise RuntimeError("this service has no event bus: nothing can subscribe")


@dataclass(frozen=True, slots=True)
class Service:
    db: Database
    sessions: SessionService
    interactions: InteractionService
    metrics: MetricService
    analytics: AnalyticsService
    live: LiveService

    @classmethod
    def build(
        cls,
        db: Database,
        *,
        max_active_sessions: int,
        cursor_secret: bytes = b"",
        bus: EventBus | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        clock: Clock = utcnow,
    ) -> Service:
        cursors = Cursors(cursor_secret)
        events: EventBus = bus if bus is not None else NoBus()
        service = cls(
            db=db,
            sessions=SessionService(
                db, max_active=max_active_sessions, cursors=cursors, clock=clock
            ),
            interactions=InteractionService(db, cursors, clock),
            metrics=MetricService(db, clock),
            analytics=AnalyticsService(db, clock),
            live=LiveService(db, cursors, events, retention=retention, clock=clock),
        )
        for part in (service.sessions, service.interactions, service.metrics):
            part.bus = events
        return service

    def within(self, db: Database) -> Service:
        """The same service over another database: a request's own transaction
        (app/idempotency.py), so its units of work commit together."""
        parts = {
            name: copy.copy(getattr(self, name))
            for name in ("sessions", "interactions", "metrics", "analytics", "live")
        }
        for part in parts.values():
            part.db = db
        return Service(db=db, **parts)

    async def healthy(self) -> bool:
        return await self.db.ping()
