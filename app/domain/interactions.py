"""Interactions: recorded questions, the suggested answers, the user's choice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec

from app.domain.base import Clock, ServiceBase, ensure_owner, given, new_id, owned, settable, utcnow
from app.domain.paging import Cursors, Page, PageRequest, Position, assemble, page_request
from app.domain.ports import Database, UnitOfWork
from app.domain.records import (
    CreateInteraction,
    Interaction,
    Principal,
    SessionEventType,
    SessionStatus,
    UpdateInteraction,
)
from app.domain.validation import parse_uuid
from app.errors import COMPLETED_NO_INTERACTIONS, INTERACTION_NOT_FOUND, BadRequest, NotFound


def _position(i: Interaction) -> Position:
    return Position(i.timestamp, i.id)


class InteractionService(ServiceBase):
    def __init__(self, db: Database, cursors: Cursors, clock: Clock = utcnow) -> None:
        super().__init__(db, clock)
        self.cursors = cursors

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
            await self.emit(
                uow,
                SessionEventType.INTERACTION_CREATED,
                user.user_id,
                sid,
                session=session,
                interaction=interaction,
            )
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

    def scope(self, session_id: uuid.UUID) -> str:
        """The list an interaction cursor belongs to: one session's."""
        return f"interactions:{session_id}"

    def page_request(
        self, session_id: uuid.UUID, first: int | None, after: str | None
    ) -> PageRequest:
        """A checked request for a page of one session's interactions."""
        return page_request(self.cursors, self.scope(session_id), first=first, after=after)

    async def page(
        self, user: Principal, session_id: str | uuid.UUID, req: PageRequest
    ) -> Page[Interaction]:
        """One page of a session's interactions, oldest first."""
        sid = parse_uuid(session_id)

        async def work(uow: UnitOfWork) -> list[Interaction]:
            owned(user, await uow.sessions.get(sid))
            return await uow.interactions.page(sid, req)

        rows = await self.db.read(work, consistent=True)
        return assemble(rows, req, self.cursors, self.scope(sid), _position)

    async def first_pages(
        self, user: Principal, session_ids: Sequence[uuid.UUID], size: int
    ) -> dict[uuid.UUID, Page[Interaction]]:
        """Batch read for DataLoaders: the first page of each of the user's sessions."""

        async def work(uow: UnitOfWork) -> dict[uuid.UUID, list[Interaction]]:
            return await uow.interactions.first_of_sessions(session_ids, user.user_id, size + 1)

        found = await self.db.read(work)
        request = PageRequest(size)
        return {
            sid: assemble(rows, request, self.cursors, self.scope(sid), _position)
            for sid, rows in found.items()
        }

    async def counts(
        self, user: Principal, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        async def work(uow: UnitOfWork) -> dict[uuid.UUID, int]:
            return await uow.interactions.counts(session_ids, user.user_id)

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
            updated = msgspec.structs.replace(current, **changes) if changes else current
            if updated == current:  # a no-op writes nothing and tells no one
                return current
            await uow.interactions.save(updated, changes)
            await self.emit(
                uow,
                SessionEventType.INTERACTION_UPDATED,
                user.user_id,
                updated.session_id,
                session=await uow.sessions.get(updated.session_id),
                interaction=updated,
            )
            return updated

        return await self.db.write(work)
