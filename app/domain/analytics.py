"""Analytics over a window of UTC days, computed by the database."""

from __future__ import annotations

from datetime import date

from app.domain.base import ServiceBase
from app.domain.paging import window
from app.domain.ports import UnitOfWork
from app.domain.records import Analytics, Principal


class AnalyticsService(ServiceBase):
    async def for_user(
        self, user: Principal, start: date | None = None, end: date | None = None
    ) -> Analytics:
        lo, hi = window(start, end)

        async def work(uow: UnitOfWork) -> Analytics:
            return await uow.analytics.compute(user.user_id, lo, hi)

        return await self.db.read(work, consistent=True)
