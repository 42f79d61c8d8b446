"""Metrics: performance samples recorded for a session, in any status."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.domain.base import ServiceBase, new_id, owned, settable
from app.domain.ports import UnitOfWork
from app.domain.records import Metric, Principal, RecordMetrics, SessionEventType
from app.domain.validation import parse_uuid


class MetricService(ServiceBase):
    async def record(self, user: Principal, cmd: RecordMetrics) -> Metric:
        sid = parse_uuid(cmd.session_id)
        metric = Metric(**settable(cmd), id=new_id(), session_id=sid, created_at=self.clock())

        async def work(uow: UnitOfWork) -> Metric:
            session = owned(user, await uow.sessions.get(sid, share=True))
            await uow.metrics.add(metric)
            await self.emit(
                uow,
                SessionEventType.METRICS_RECORDED,
                user.user_id,
                sid,
                session=session,
                metric=metric,
            )
            return metric

        return await self.db.write(work)

    async def list_for_session(self, user: Principal, session_id: str | uuid.UUID) -> list[Metric]:
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> list[Metric]:
            owned(user, await uow.sessions.get(sid))
            return await uow.metrics.list_for_session(sid)

        return await self.db.read(work)

    async def for_sessions(
        self, user: Principal, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Metric]]:
        """Batch read for DataLoaders: one statement, only the user's sessions."""

        async def work(uow: UnitOfWork) -> dict[uuid.UUID, list[Metric]]:
            return await uow.metrics.list_for_sessions(session_ids, user.user_id)

        return await self.db.read(work)
