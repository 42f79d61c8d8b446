"""A long subscription keeps no per-event state: the objects an event's
execution builds are freed with it (graphql-core 3.3's per-event executors
shared a cache that kept them alive for the subscription's lifetime)."""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator

import strawberry
from graphql.execution.collect_fields import FieldDetails
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.resolvers.schema import ExecutionContext


@strawberry.type
class Inner:
    value: int


@strawberry.type
class Event:
    seq: int
    inner: Inner
    items: list[Inner]


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self, n: int) -> AsyncGenerator[Event, None]:
        for i in range(n):
            yield Event(seq=i, inner=Inner(value=i), items=[Inner(value=i), Inner(value=-i)])


DOC = "subscription ($n: Int!) { events(n: $n) { seq inner { value } items { value } } }"


def alive_field_details() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, FieldDetails))


async def live_objects_after(executor: type, events: int) -> int:
    """FieldDetails alive while the subscription is still open, after ``events``."""
    schema = strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=executor
    )
    stream = await schema.subscribe(DOC, variable_values={"n": events + 1})
    seen = 0
    async for result in stream:  # type: ignore[union-attr]
        assert result.errors is None and result.data is not None
        assert result.data["events"]["seq"] == seen
        seen += 1
        if seen == events:
            count = alive_field_details()  # the subscription is still open here
    await stream.aclose()  # type: ignore[union-attr]
    return count


async def test_a_subscription_s_memory_does_not_grow_with_its_events():
    small = await live_objects_after(ExecutionContext, 10)
    large = await live_objects_after(ExecutionContext, 400)
    assert large - small < 20, (small, large)


async def test_without_the_fix_the_cache_grows_per_event():
    """The check above can fail: graphql-core's own per-event executors grow.
    (If this fails, graphql-core no longer shares the cache between events:
    app.resolvers.schema.ExecutionContext's override can go.)"""
    small = await live_objects_after(StrawberryGraphQLCoreExecutionContext, 10)
    large = await live_objects_after(StrawberryGraphQLCoreExecutionContext, 400)
    assert large - small > 390, (small, large)


async def uncollected_executors_after_a_query(executor: type) -> int:
    """Executors still alive after a finished query, with the collector off:
    only a reference cycle keeps one."""
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    gc.collect()
    gc.disable()
    try:
        result = await schema.execute("{ ok }", root_value=Query())
        assert result.errors is None and result.data == {"ok": True}
        del result
        return sum(1 for o in gc.get_objects() if isinstance(o, executor))
    finally:
        gc.enable()


async def test_an_execution_is_freed_without_the_garbage_collector():
    """graphql-core binds its resolver helpers to the executor (a cycle per
    execution); ours reach it through a weak reference."""
    assert await uncollected_executors_after_a_query(ExecutionContext) == 0
    assert await uncollected_executors_after_a_query(StrawberryGraphQLCoreExecutionContext) >= 1
