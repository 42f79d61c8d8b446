"""Data whose every field is set, for the differential tests of the fast paths.

The values come from the command structs (``full`` of tests/test_round_trip.py,
and two variants at the bounds the structs declare), so a field added to a
record and its commands is part of every comparison without touching a test:
:func:`fields_never_set` checks that nothing was left null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import inspect as mi

from app.domain import records as r
from tests.api import Api
from tests.test_round_trip import full

TEXT = 'aé€𝄞"\\<'  # 1 to 4 bytes in UTF-8, and characters JSON and HTML escape


def text(n: int) -> str:
    return (TEXT * (n // len(TEXT) + 1))[:n]


def _bare(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        [t] = [x for x in t.types if not isinstance(x, mi.NoneType)]
    return t


def at_bounds(t: mi.Type, high: bool, seed: int = 0) -> Any:
    """A valid JSON value of ``t`` with every part at a bound the struct
    declares: the longest strings, the largest numbers, the last enum members
    (``high``); or the shortest, smallest and first. Lists hold one item (two
    when high), so their items are set too."""
    t = _bare(t)
    if isinstance(t, mi.StrType):
        if high:
            return text(t.max_length if t.max_length is not None else 300)
        return text(t.min_length or 0)
    if isinstance(t, mi.BoolType):
        return high
    if isinstance(t, mi.IntType):
        if high:
            return t.le if t.le is not None else 2**31 - 1
        return t.ge if t.ge is not None else 0
    if isinstance(t, mi.FloatType):
        if high:
            return t.le if t.le is not None else 1e15
        return t.ge if t.ge is not None else 0.0
    if isinstance(t, mi.EnumType):
        members = list(t.cls)
        return (members[-1] if high else members[0]).value
    if isinstance(t, mi.ListType):
        n = 2 if high else 1
        return [at_bounds(t.item_type, high, seed + k) for k in range(n)]
    if isinstance(t, mi.StructType):
        return {
            f.encode_name: at_bounds(f.type, high, seed) for f in t.fields if f.name != "session_id"
        }
    raise AssertionError(f"no value at the bounds of {t}")


Variant = Callable[[type[msgspec.Struct], int], dict[str, Any]]
VARIANTS: dict[str, Variant] = {
    "samples": full,
    "high": lambda command, seed: at_bounds(mi.type_info(command), True, seed),
    "low": lambda command, seed: at_bounds(mi.type_info(command), False, seed),
}
# One session per variant, in a status of its own (completed: endedAt is set).
STATUSES = {"samples": "complete", "high": "pause", "low": None}


async def seed_every_field(api: Api, interactions: int = 2, metrics: int = 2) -> list[str]:
    """One session per variant, each with interactions (recorded, then updated)
    and metrics, every field of each set: returns the session ids."""
    ids = []
    for seed, (name, variant) in enumerate(VARIANTS.items()):
        s = await api.new_session(**variant(r.CreateSession, seed))
        for k in range(interactions):
            i = await api.new_interaction(s["id"], **variant(r.CreateInteraction, seed + k))
            res = await api.update_interaction(i["id"], variant(r.UpdateInteraction, seed + k))
            assert res.status_code == 200, res.text
        for k in range(metrics):
            await api.new_metric(s["id"], **variant(r.RecordMetrics, seed + k))
        if STATUSES[name]:
            await api.set_status(s["id"], STATUSES[name])
        ids.append(s["id"])
    return ids


def fields_never_set(values: list[Any], t: mi.Type, path: str = "") -> list[str]:
    """The fields of records of type ``t`` (nested ones too) that are null, or
    an empty list, in every one of ``values`` (JSON, REST form)."""
    t = _bare(t)
    if isinstance(t, mi.ListType):
        return fields_never_set([x for v in values for x in v], t.item_type, path + "[]")
    if not isinstance(t, mi.StructType):
        return []
    missing = []
    for f in t.fields:
        name = f"{path}.{f.encode_name}" if path else f.encode_name
        inner = [v[f.encode_name] for v in values if v.get(f.encode_name) not in (None, [])]
        if not inner:
            missing.append(name)
        else:
            missing += fields_never_set(inner, f.type, name)
    return missing


async def details_of_every_field(api: Api, ids: list[str]) -> list[dict[str, Any]]:
    """The sessions' details (REST), checked to set every field of the records."""
    details = []
    for sid in ids:
        res = await api.details(sid)
        assert res.status_code == 200, res.text
        details.append(res.json())
    assert fields_never_set(details, mi.type_info(r.SessionDetails)) == []
    return details
