"""Mutation resolvers: validate the input as REST would, call the service."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain import records as r
from app.resolvers.context import Info
from app.resolvers.inputs import command
from app.schema.inputs import (
    CreateInteractionInput,
    CreateSessionInput,
    RecordMetricsInput,
    UpdateInteractionInput,
    UpdateSessionInput,
)
from app.schema.types import Interaction, InterviewSession, SessionMetric

Status = r.SessionStatus
SessionId = Annotated[strawberry.ID, strawberry.argument(description="The session's id (UUID)")]
InteractionId = Annotated[
    strawberry.ID, strawberry.argument(description="The interaction's id (UUID)")
]
NewSession = Annotated[CreateSessionInput, strawberry.argument(description="The role and settings")]
SessionChanges = Annotated[
    UpdateSessionInput, strawberry.argument(description="The fields to replace")
]
NewInteraction = Annotated[
    CreateInteractionInput, strawberry.argument(description="The question and suggestions")
]
InteractionChanges = Annotated[
    UpdateInteractionInput, strawberry.argument(description="The fields to set or clear")
]
NewMetrics = Annotated[RecordMetricsInput, strawberry.argument(description="The sample's values")]


@strawberry.type(description="What you can change: sessions, their interactions and metrics")
class Mutation:
    @strawberry.mutation(graphql_type=InterviewSession, description="A new, active session")
    async def create_session(self, info: Info, input: NewSession) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.create(ctx.user(), command(r.CreateSession, input))

    @strawberry.mutation(
        graphql_type=InterviewSession,
        description="Replaces each field given; a status change follows the state machine",
    )
    async def update_session(self, info: Info, id: SessionId, input: SessionChanges) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.update(ctx.user(), id, command(r.UpdateSession, input))

    @strawberry.mutation(
        graphql_type=InterviewSession,
        description="Start or resume a paused session (counts toward MAX_ACTIVE_SESSIONS)",
    )
    async def start_session(self, info: Info, id: SessionId) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.set_status(ctx.user(), id, Status.ACTIVE)

    @strawberry.mutation(graphql_type=InterviewSession, description="Pause an active session")
    async def pause_session(self, info: Info, id: SessionId) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.set_status(ctx.user(), id, Status.PAUSED)

    @strawberry.mutation(
        graphql_type=InterviewSession, description="Complete a session (final; sets endedAt)"
    )
    async def complete_session(self, info: Info, id: SessionId) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.set_status(ctx.user(), id, Status.COMPLETED)

    @strawberry.mutation(description="Deletes the session with its interactions and metrics")
    async def delete_session(self, info: Info, id: SessionId) -> bool:
        ctx = info.context
        await ctx.service.sessions.delete(ctx.user(), id)
        return True

    @strawberry.mutation(
        graphql_type=Interaction, description="Record a question (not in a completed session)"
    )
    async def create_interaction(self, info: Info, input: NewInteraction) -> r.Interaction:
        ctx = info.context
        cmd = command(r.CreateInteraction, input)
        return await ctx.service.interactions.create(ctx.user(), cmd)

    @strawberry.mutation(graphql_type=Interaction, description="Feedback or the chosen answer")
    async def update_interaction(
        self,
        info: Info,
        id: InteractionId,
        input: InteractionChanges,
    ) -> r.Interaction:
        ctx = info.context
        cmd = command(r.UpdateInteraction, input)
        return await ctx.service.interactions.update(ctx.user(), id, cmd)

    @strawberry.mutation(
        graphql_type=SessionMetric, description="Record a performance sample (any session status)"
    )
    async def record_metrics(self, info: Info, input: NewMetrics) -> r.Metric:
        ctx = info.context
        return await ctx.service.metrics.record(ctx.user(), command(r.RecordMetrics, input))
