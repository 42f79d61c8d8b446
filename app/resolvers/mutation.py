"""Mutation resolvers: validate the input as REST would, call the service."""

from __future__ import annotations

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


@strawberry.type
class Mutation:
    @strawberry.mutation(graphql_type=InterviewSession, description="A new, active session")
    async def create_session(self, info: Info, input: CreateSessionInput) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.create(ctx.user(), command(r.CreateSession, input))

    @strawberry.mutation(
        graphql_type=InterviewSession,
        description="Replaces each field given; a status change follows the state machine",
    )
    async def update_session(
        self, info: Info, id: strawberry.ID, input: UpdateSessionInput
    ) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.update(ctx.user(), id, command(r.UpdateSession, input))

    @strawberry.mutation(graphql_type=InterviewSession, description="Start or resume")
    async def start_session(self, info: Info, id: strawberry.ID) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.set_status(ctx.user(), id, Status.ACTIVE)

    @strawberry.mutation(graphql_type=InterviewSession)
    async def pause_session(self, info: Info, id: strawberry.ID) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.set_status(ctx.user(), id, Status.PAUSED)

    @strawberry.mutation(graphql_type=InterviewSession)
    async def complete_session(self, info: Info, id: strawberry.ID) -> r.Session:
        ctx = info.context
        return await ctx.service.sessions.set_status(ctx.user(), id, Status.COMPLETED)

    @strawberry.mutation(description="Deletes the session with its interactions and metrics")
    async def delete_session(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context
        await ctx.service.sessions.delete(ctx.user(), id)
        return True

    @strawberry.mutation(graphql_type=Interaction)
    async def create_interaction(self, info: Info, input: CreateInteractionInput) -> r.Interaction:
        ctx = info.context
        cmd = command(r.CreateInteraction, input)
        return await ctx.service.interactions.create(ctx.user(), cmd)

    @strawberry.mutation(graphql_type=Interaction, description="Feedback or the chosen answer")
    async def update_interaction(
        self, info: Info, id: strawberry.ID, input: UpdateInteractionInput
    ) -> r.Interaction:
        ctx = info.context
        cmd = command(r.UpdateInteraction, input)
        return await ctx.service.interactions.update(ctx.user(), id, cmd)

    @strawberry.mutation(graphql_type=SessionMetric)
    async def record_metrics(self, info: Info, input: RecordMetricsInput) -> r.Metric:
        ctx = info.context
        return await ctx.service.metrics.record(ctx.user(), command(r.RecordMetrics, input))
