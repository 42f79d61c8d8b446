"""A canary schema with everything compiled plans do not model.

An interface, a union, a permission class, a field extension, a renamed enum
value, a custom DateTime serializer, sync resolvers and a list field holding a
string: for each, the plan compiler refuses the document (the standard
executor answers), or the plan fails closed at run time, and the answer of
the endpoint is byte for byte the standard executor's.
"""

from __future__ import annotations

import asyncio
import enum
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.types.scalar import ScalarDefinition

from app.domain.records import Principal
from app.resolvers.context import build_context
from app.resolvers.documents import Documents
from app.resolvers.endpoint import GraphQLEndpoint
from app.resolvers.plan_rules import Fallback
from app.resolvers.plans import CompiledQueries
from app.resolvers.schema import Schema

WHEN = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


class Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


class Upper(FieldExtension):
    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return str(await next_(source, info, **kwargs)).upper()


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = strawberry.enum_value("blue", name="AZURE")


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Item(Node):
    name: str
    when: datetime
    tags: list[str]

    @strawberry.field
    def sync_upper(self) -> str:
        return self.name.upper()

    @strawberry.field(permission_classes=[Deny])
    async def secret(self) -> str:
        return "the secret"

    @strawberry.field(extensions=[Upper()])
    async def shout(self) -> str:
        return self.name


@strawberry.type
class Other:
    title: str


Result = Annotated[Item | Other, strawberry.union("Result")]


def _items() -> list[Item]:
    return [
        Item(id=strawberry.ID("1"), name="one", when=WHEN, tags=["a"]),
        Item(id=strawberry.ID("2"), name="two", when=WHEN, tags="not a list"),  # type: ignore[arg-type]
    ]


@strawberry.type
class Query:
    @strawberry.field
    async def items(self, info: strawberry.Info) -> list[Item]:
        return _items()[:1]

    @strawberry.field
    async def broken_items(self, info: strawberry.Info) -> list[Item]:
        return _items()

    @strawberry.field
    async def node(self, info: strawberry.Info) -> Node:
        return _items()[0]

    @strawberry.field
    async def results(self, info: strawberry.Info) -> list[Result]:
        return [_items()[0], Other(title="t")]

    @strawberry.field
    async def color(self, info: strawberry.Info) -> Color:
        return Color.BLUE

    @strawberry.field
    def sync_items(self, info: strawberry.Info) -> list[Item]:
        return _items()[:1]

    @strawberry.field
    async def bad_list(self, info: strawberry.Info) -> list[str]:
        return "abc"  # type: ignore[return-value]


CUSTOM_DATETIME = ScalarDefinition(
    name="DateTime",
    description=None,
    specified_by_url=None,
    serialize=lambda v: "a custom serializer",
    parse_value=None,
    parse_literal=None,
    origin=datetime,
)

CASES = {
    "{ items { id name tags } }": "compiled",
    "{ items { ... on Node { id } name } }": "refused",
    "{ items { ...N } } fragment N on Node { id }": "refused",
    "{ node { id } }": "refused",
    "{ results { ... on Item { id } } }": "refused",
    "{ items { secret } }": "refused",
    "{ items { shout } }": "refused",
    "{ color }": "refused",
    "{ items { when } }": "refused",
    "{ items { syncUpper } }": "refused",
    "{ syncItems { id } }": "refused",
    "{ badList }": "falls back",
    "{ brokenItems { id tags } }": "falls back",
}


@pytest.fixture(scope="module")
def canary() -> Schema:
    return Schema(query=Query, scalar_overrides={datetime: CUSTOM_DATETIME})


def endpoint(schema: Schema, compiled: bool) -> GraphQLEndpoint:
    return GraphQLEndpoint(
        schema,
        None,  # type: ignore[arg-type]  (the canary's resolvers use no service)
        max_body_bytes=1 << 20,
        plans=CompiledQueries(schema) if compiled else None,
    )


async def answer(ep: GraphQLEndpoint, query: str) -> tuple[int, bytes]:
    body = json.dumps({"query": query}).encode()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", b"application/json")],
        "state": {"principal": Principal("canary"), "request_id": "canary"},
    }
    a = await ep.answer_http(scope, receive)
    return a.status, a.body


@pytest.mark.parametrize(("query", "expected"), CASES.items())
async def test_each_unmodelled_feature_is_refused_or_identical(canary, query, expected):
    plans = CompiledQueries(canary)
    prepared = Documents(canary).get(query)
    assert not prepared.errors, prepared.errors
    operation = prepared.operation(None)
    assert not isinstance(operation, str)
    plan = plans.plan(query, prepared.document, operation)
    assert isinstance(plan, str) == (expected == "refused"), query
    if expected == "falls back":
        assert plan is not None
        context = build_context(None, Principal("canary"), "-")  # type: ignore[arg-type]
        with pytest.raises(Fallback):
            await plan.execute(context, {})  # type: ignore[arg-type]

    fast, slow = endpoint(canary, True), endpoint(canary, False)
    assert await answer(fast, query) == await answer(slow, query)
    assert fast.plans is not None
    assert fast.plans.answered == (1 if expected == "compiled" else 0)


def test_plans_turn_off_for_a_schema_extension_they_do_not_know(caplog):
    from strawberry.extensions import SchemaExtension

    class Unknown(SchemaExtension):
        pass

    schema = Schema(query=Query, extensions=[Unknown])
    plans = CompiledQueries(schema)
    assert not plans.enabled
    assert any("extensions they do not model (Unknown)" in r.message for r in caplog.records)


# ---------------------------------------------------------------- failures inside a plan

EVENTS: list[str] = []


@strawberry.type
class FailingQuery:
    @strawberry.field
    async def slow(self, info: strawberry.Info) -> str | None:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            EVENTS.append("slow cancelled")
            raise
        EVENTS.append("slow finished")
        return "slow"

    @strawberry.field
    async def boom(self, info: strawberry.Info) -> str | None:
        await asyncio.sleep(0)
        raise RuntimeError("a bug")


async def test_a_failing_plan_cancels_its_work_logs_once_and_the_standard_executor_answers(
    caplog,
):
    schema = Schema(query=FailingQuery)
    fast, slow = endpoint(schema, True), endpoint(schema, False)
    EVENTS.clear()
    status, body = await answer(fast, "{ slow boom }")
    # The plan's "slow" was cancelled; the standard executor's ran to the end.
    assert EVENTS == ["slow cancelled", "slow finished"]
    EVENTS.clear()
    assert (status, body) == await answer(slow, "{ slow boom }")
    assert b"INTERNAL_SERVER_ERROR" in body and b"a bug" not in body
    assert fast.plans is not None and fast.plans.failed == 1
    await answer(fast, "{ slow boom }")
    assert fast.plans.failed == 2
    logged = [r for r in caplog.records if "a compiled plan failed" in r.getMessage()]
    assert len(logged) == 1  # at most once a second
    assert "request canary" in logged[0].getMessage()
