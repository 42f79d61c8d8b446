"""Analytics over a window of UTC days, computed by the database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from app.domain.base import ServiceBase
from app.domain.ports import UnitOfWork
from app.domain.records import Analytics, Principal
from app.errors import BadRequest

WINDOW_ORDER_MESSAGE = "startDate must not be after endDate"


def window(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """Both days inclusive: [start 00:00Z, end+1 00:00Z)."""
    if start is not None and end is not None and start > end:
        raise BadRequest(WINDOW_ORDER_MESSAGE)
    lo = None if start is None else datetime.combine(start, time.min, UTC)
    # The last representable day has no "next day": it bounds nothing.
    hi = (
        None
        if end is None or end == date.max
        else datetime.combine(end + timedelta(days=1), time.min, UTC)
    )
    return lo, hi


class AnalyticsService(ServiceBase):
    async def for_user(
        self, user: Principal, start: date | None = None, end: date | None = None
    ) -> Analytics:
        lo, hi = window(start, end)

        async def work(uow: UnitOfWork) -> Analytics:
            return await uow.analytics.compute(user.user_id, lo, hi)

        return await self.db.read(work, consistent=True)
