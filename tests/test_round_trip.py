"""Every settable field of every record is stored and read back, through both
faces, on both databases.

The values are generated from the command structs themselves (every field
set, within its limits), so a field added to a record and its commands is
covered here without touching this file: a table without its column, a
GraphQL type or input without the field, or a mapping that drops it fails.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from msgspec import inspect as mi

from app.domain import records as r
from tests.api import Api


def sample(t: mi.Type, seed: int, graphql: bool = False) -> Any:
    """A valid, non-default JSON value of type ``t`` (enum names for GraphQL)."""
    if isinstance(t, mi.UnionType):
        t = next(x for x in t.types if not isinstance(x, mi.NoneType))
    if isinstance(t, mi.StrType):
        text = f"value {seed} é"
        if t.max_length is not None:
            text = text[: t.max_length]
        return text.ljust(t.min_length or 0, "x")
    if isinstance(t, mi.BoolType):
        return seed % 2 == 0
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else 0
        high = t.le if t.le is not None else low + 1000
        return min(low + 1 + seed, high)
    if isinstance(t, mi.FloatType):
        low = t.ge if t.ge is not None else 0.0
        high = t.le if t.le is not None else 1000.0
        return round(low + (high - low) * 0.37, 2)
    if isinstance(t, mi.EnumType):
        members = list(t.cls)
        member = members[(seed + 1) % len(members)]
        return member.name if graphql else member.value
    if isinstance(t, mi.ListType):
        n = min(2, t.max_length if t.max_length is not None else 2)
        return [sample(t.item_type, seed + k, graphql) for k in range(n)]
    if isinstance(t, mi.StructType):
        return {
            f.encode_name: sample(f.type, seed + k, graphql)
            for k, f in enumerate(t.fields)
            if f.name != "session_id"
        }
    raise AssertionError(f"no sample for {t}")


def full(command: type[msgspec.Struct], seed: int, graphql: bool = False) -> dict[str, Any]:
    return sample(mi.type_info(command), seed, graphql)  # type: ignore[no-any-return]


def selection(struct: type[msgspec.Struct]) -> str:
    """Every field of a record, as a GraphQL selection (nested structs expanded)."""
    parts = []
    for f in mi.type_info(struct).fields:  # type: ignore[union-attr]
        t = f.type
        if isinstance(t, mi.UnionType):
            t = next(x for x in t.types if not isinstance(x, mi.NoneType))
        if isinstance(t, mi.ListType):
            t = t.item_type
        if isinstance(t, mi.StructType):
            parts.append(f"{f.encode_name} {{ {selection(t.cls)} }}")
        else:
            parts.append(f.encode_name)
    return " ".join(parts)


def as_rest(value: Any, t: mi.Type) -> Any:
    """A GraphQL answer (enum names) in REST form (enum values), by type."""
    if value is None:
        return None
    if isinstance(t, mi.UnionType):
        t = next(x for x in t.types if not isinstance(x, mi.NoneType))
    if isinstance(t, mi.EnumType):
        return t.cls[value].value
    if isinstance(t, mi.ListType):
        return [as_rest(v, t.item_type) for v in value]
    if isinstance(t, mi.StructType):
        by_name = {f.encode_name: f.type for f in t.fields}
        return {k: as_rest(v, by_name[k]) if k in by_name else v for k, v in value.items()}
    return value


def as_graphql_input(value: Any, t: mi.Type) -> Any:
    """A REST value (enum values) as GraphQL input (enum names), by type; null stays null."""
    if value is None:
        return None
    if isinstance(t, mi.UnionType):
        t = next(x for x in t.types if not isinstance(x, mi.NoneType))
    if isinstance(t, mi.EnumType):
        return t.cls(value).name
    if isinstance(t, mi.ListType):
        return [as_graphql_input(v, t.item_type) for v in value]
    if isinstance(t, mi.StructType):
        by_name = {f.encode_name: f.type for f in t.fields}
        return {k: as_graphql_input(v, by_name[k]) for k, v in value.items()}
    return value


def subset(sent: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    return {k: got[k] for k in sent}


@pytest.fixture
def api(client, new_user):
    return Api(client, new_user())


async def read_back(api: Api, kind: str, record: type[msgspec.Struct], sid: str, rid: str) -> Any:
    """The record as REST and GraphQL show it now (GraphQL in REST form)."""
    info = mi.type_info(record)
    if kind == "session":
        rest = (await api.get(sid)).json()
        query = f"query($id: ID!) {{ session(id: $id) {{ {selection(record)} }} }}"
        gql = (await api.graphql(query, {"id": sid}))["data"]["session"]
        return rest, as_rest(gql, info)
    field = "interactions" if kind == "interaction" else "metrics"
    path = f"/interview-sessions/{sid}/{field}"
    [rest] = [x for x in (await api.request("GET", path)).json() if x["id"] == rid]
    query = f"query($id: ID!) {{ session(id: $id) {{ {field} {{ {selection(record)} }} }} }}"
    items = (await api.graphql(query, {"id": sid}))["data"]["session"][field]
    [gql] = [x for x in items if x["id"] == rid]
    return rest, as_rest(gql, info)


async def test_sessions_round_trip_through_rest(api):
    sent = full(r.CreateSession, 1)
    created = (await api.create_session(**sent)).json()
    rest, gql = await read_back(api, "session", r.Session, created["id"], created["id"])
    assert subset(sent, created) == sent
    assert rest == gql == created
    update = full(r.UpdateSession, 7)
    update["status"] = "paused"
    updated = (await api.update(created["id"], update)).json()
    rest, gql = await read_back(api, "session", r.Session, created["id"], created["id"])
    assert subset(update, updated) == update
    assert rest == gql == updated


async def test_sessions_round_trip_through_graphql(api):
    sent = full(r.CreateSession, 3)
    variables = {"i": as_graphql_input(sent, mi.type_info(r.CreateSession))}
    body = await api.graphql(
        "mutation($i: CreateSessionInput!) { createSession(input: $i) { id } }", variables
    )
    sid = body["data"]["createSession"]["id"]
    rest, gql = await read_back(api, "session", r.Session, sid, sid)
    assert subset(sent, rest) == sent
    assert rest == gql
    update = full(r.UpdateSession, 5)
    update["status"] = "completed"
    variables = {"id": sid, "i": as_graphql_input(update, mi.type_info(r.UpdateSession))}
    await api.graphql(
        "mutation($id: ID!, $i: UpdateSessionInput!) { updateSession(id: $id, input: $i) { id } }",
        variables,
    )
    rest, gql = await read_back(api, "session", r.Session, sid, sid)
    assert subset(update, rest) == update
    assert rest == gql


@pytest.mark.parametrize("face", ["rest", "graphql"])
async def test_interactions_round_trip(api, face):
    sid = (await api.new_session())["id"]
    sent = full(r.CreateInteraction, 2)
    update = full(r.UpdateInteraction, 4)
    if face == "rest":
        iid = (await api.new_interaction(sid, **sent))["id"]
        assert (await api.update_interaction(iid, update)).status_code == 200
    else:
        created = await api.graphql(
            "mutation($i: CreateInteractionInput!) { createInteraction(input: $i) { id } }",
            {"i": {**as_graphql_input(sent, mi.type_info(r.CreateInteraction)), "sessionId": sid}},
        )
        iid = created["data"]["createInteraction"]["id"]
        await api.graphql(
            "mutation($id: ID!, $i: UpdateInteractionInput!) "
            "{ updateInteraction(id: $id, input: $i) { id } }",
            {"id": iid, "i": as_graphql_input(update, mi.type_info(r.UpdateInteraction))},
        )
    rest, gql = await read_back(api, "interaction", r.Interaction, sid, iid)
    assert subset(sent, rest) == sent
    assert subset(update, rest) == update
    assert rest == gql


@pytest.mark.parametrize("face", ["rest", "graphql"])
async def test_metrics_round_trip(api, face):
    sid = (await api.new_session())["id"]
    sent = full(r.RecordMetrics, 3)
    if face == "rest":
        mid = (await api.new_metric(sid, **sent))["id"]
    else:
        body = await api.graphql(
            "mutation($i: RecordMetricsInput!) { recordMetrics(input: $i) { id } }",
            {"i": {**as_graphql_input(sent, mi.type_info(r.RecordMetrics)), "sessionId": sid}},
        )
        mid = body["data"]["recordMetrics"]["id"]
    rest, gql = await read_back(api, "metric", r.Metric, sid, mid)
    assert subset(sent, rest) == sent
    assert rest == gql


def test_the_samples_set_every_field_to_a_non_default_value():
    # Otherwise a field that is silently dropped (and read back as its default)
    # would pass the round trip.
    for command in (r.CreateSession, r.CreateInteraction, r.UpdateInteraction, r.RecordMetrics):
        value = msgspec.convert(full(command, 1) | _session_id(command), command)
        for f in msgspec.structs.fields(command):
            default = f.default if f.default is not msgspec.NODEFAULT else None
            if f.default_factory is not msgspec.NODEFAULT:
                default = f.default_factory()
            if f.name != "session_id":
                assert getattr(value, f.name) not in (default, msgspec.UNSET), f.name


def _session_id(command: type) -> dict[str, str]:
    names = {f.name for f in msgspec.structs.fields(command)}
    return {"sessionId": "00000000-0000-0000-0000-000000000000"} if "session_id" in names else {}
