"""Interactions: recorded questions, the suggested answers, the user's choice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec

from app.domain.base import ServiceBase, ensure_owner, given, new_id, owned, settable
from app.domain.ports import UnitOfWork
from app.domain.records import (
    CreateInteraction,
    Interaction,
    Principal,
    SessionStatus,
    UpdateInteraction,
)
from app.domain.validation import parse_uuid
from app.errors import COMPLETED_NO_INTERACTIONS, INTERACTION_NOT_FOUND, BadRequest, NotFound


class InteractionService(ServiceBase):
    async def create(self, user: Principal, cmd: CreateInteraction) -> Interaction:
        sid = parse_uuid(cmd.session_id)
        interaction = Interaction(
            **settable(cmd), id=new_id(), session_id=sid, timestamp=self.clock()
        )

        async def work(uow: UnitOfWork) -> Interaction:
            # A shared row lock: concurrent inserts proceed together, but a racing
            # "complete" waits, so nothing lands in a session after it completed.
            session = owned(user, await uow.sessions.get(sid, share=True))
            if session.status is SessionStatus.COMPLETED:
                raise BadRequest(COMPLETED_NO_INTERACTIONS)
            await uow.interactions.add(interaction)
            return interaction

        return await self.db.write(work)

    async def list_for_session(
        self, user: Principal, session_id: str | uuid.UUID
    ) -> list[Interaction]:
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> list[Interaction]:
            owned(user, await uow.sessions.get(sid))
            return await uow.interactions.list_for_session(sid)

        return await self.db.read(work)

    async def for_sessions(
        self, user: Principal, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Interaction]]:
        """Batch read for DataLoaders: one statement, only the user's sessions."""

        async def work(uow: UnitOfWork) -> dict[uuid.UUID, list[Interaction]]:
            return await uow.interactions.list_for_sessions(session_ids, user.user_id)

        return await self.db.read(work)

    async def update(
        self, user: Principal, interaction_id: str | uuid.UUID, cmd: UpdateInteraction
    ) -> Interaction:
        iid = parse_uuid(interaction_id)

        async def work(uow: UnitOfWork) -> Interaction:
            found = await uow.interactions.get_with_owner(iid)
            if found is None:
                raise NotFound(INTERACTION_NOT_FOUND)
            current, owner = found
            ensure_owner(user, owner)
            changes = given(cmd)
            if not changes:
                return current
            updated = msgspec.structs.replace(current, **changes)
            await uow.interactions.save(updated, changes)
            return updated

        return await self.db.write(work)
