"""Projections: the fields of a record a reader writes, as JSON, under its own names.

A GraphQL plan whose selection only copies stored fields (a session's
interactions or metrics; a session with its lists) asks for the answer
*written*: a :class:`Projection` names, in answer order, each output key and
the record field it shows, with a nested projection for a value object (or a
list of them) and :class:`Children` for a session's list. The storage writes
the JSON in the order the ordinary read returns the rows, and the answer
embeds it as it is: no record, no per-field completion in Python. PostgreSQL
builds it in the query (:mod:`app.db.projection`); elsewhere :func:`write`
writes it from the records (the in-memory fakes, and SQLite's side of the
port, which the server's plans do not use: their own builders are faster).

Leaves are written as every face of the GraphQL API writes them: enum members
by their name, datetimes in RFC 3339 UTC with a ``Z`` (microseconds only when
not zero), UUIDs as text, numbers, strings and booleans as they are. Only
records whose fields are these kinds can be projected (:func:`check`).
"""

from __future__ import annotations

import enum
import functools
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec


@dataclass(frozen=True, slots=True)
class Projection:
    """``fields``: (output key, record field, nested projection or None), in
    answer order; a session's child list is (output key, kind, :class:`Children`)."""

    fields: tuple[tuple[str, str, Projection | Children | None], ...]


@dataclass(frozen=True, slots=True)
class Children:
    """A session's ``interactions`` or ``metrics`` (``kind``), oldest first,
    each written with ``projection`` (``record``: the child record type)."""

    kind: str
    record: type[msgspec.Struct]
    projection: Projection


CHILD_KINDS = ("interactions", "metrics")


class NotProjectable(Exception):
    """A field whose value a projection cannot write."""


@dataclass(frozen=True, slots=True)
class Kind:
    """What a record field holds: ``leaf`` (str, int, float, bool, uuid,
    datetime, an enum), ``struct`` or ``list`` (of a leaf or a struct)."""

    shape: str  # "leaf" | "struct" | "list"
    type: Any  # the leaf's Python type, the struct class, or the list item's Kind
    optional: bool
    default: Any  # msgspec.NODEFAULT when the field has none


LEAVES = (str, int, float, bool, uuid.UUID, datetime)


def _kind(tp: Any, default: Any) -> Kind:
    optional = False
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise NotProjectable(f"a union {tp}")
        tp, optional = args[0], True
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) is list:
        [item] = typing.get_args(tp)
        return Kind("list", _kind(item, msgspec.NODEFAULT), optional, default)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return Kind("struct", tp, optional, default)
    if isinstance(tp, type) and (tp in LEAVES or issubclass(tp, enum.Enum)):
        return Kind("leaf", tp, optional, default)
    raise NotProjectable(f"a field of type {tp}")


@functools.cache
def fields_of(record: type[msgspec.Struct]) -> dict[str, tuple[str, Kind]]:
    """Field name -> (stored JSON name, kind), for every field of ``record``."""
    hints = typing.get_type_hints(record, include_extras=True)
    out: dict[str, tuple[str, Kind]] = {}
    for f in msgspec.structs.fields(record):
        default = f.default
        if default is msgspec.NODEFAULT and f.default_factory is not msgspec.NODEFAULT:
            default = f.default_factory()
        try:
            out[f.name] = (f.encode_name, _kind(hints[f.name], default))
        except NotProjectable:
            continue  # only a projection that names it is refused
    return out


def kind_of(record: type[msgspec.Struct], field: str) -> Kind:
    found = fields_of(record).get(field)
    if found is None:
        raise NotProjectable(f"{record.__name__}.{field}")
    return found[1]


def check(record: type[msgspec.Struct], projection: Projection, *, nested: bool = False) -> None:
    """Raise :class:`NotProjectable` unless every field can be written: leaves
    of a value object (stored as a document) and items of a list of leaves
    are plain (str, int, float, bool; enums too inside a value object)."""
    plain = (str, int, float, bool)
    for _key, name, sub in projection.fields:
        if isinstance(sub, Children):
            if nested or name != sub.kind or sub.kind not in CHILD_KINDS:
                raise NotProjectable(f"{record.__name__}: a child list {name} here")
            check(sub.record, sub.projection)
            continue
        kind = kind_of(record, name)
        inner = kind.type if kind.shape == "list" else kind
        if (sub is None) != (inner.shape == "leaf"):
            raise NotProjectable(f"{record.__name__}.{name}: selection and value disagree")
        if kind.shape == "list" and inner.shape == "leaf" and inner.type not in plain:
            raise NotProjectable(f"{record.__name__}.{name}: a list of {inner.type}")
        if nested and kind.shape == "leaf" and inner.type in (uuid.UUID, datetime):
            raise NotProjectable(f"{record.__name__}.{name}: {inner.type} inside a document")
        if isinstance(sub, Projection):
            check(inner.type, sub, nested=True)


# ---------------------------------------------------------------- written in Python


def write_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as the API writes every timestamp."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _leaf(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return write_datetime(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _value(value: Any, sub: Projection | None) -> Any:
    if value is None:
        return None
    if type(value) is list:
        return [_value(v, sub) for v in value]
    if sub is None:
        return _leaf(value)
    return project(value, sub)


Lists = dict[str, dict[uuid.UUID, list[Any]]]


def project(record: Any, projection: Projection, lists: Lists | None = None) -> dict[str, Any]:
    """One record as the projection writes it; ``lists``: per child kind, the
    children of each session (for :class:`Children` entries)."""
    out: dict[str, Any] = {}
    for key, name, sub in projection.fields:
        if isinstance(sub, Children):
            assert lists is not None
            out[key] = [project(c, sub.projection) for c in lists[name].get(record.id, [])]
        else:
            out[key] = _value(getattr(record, name), sub)
    return out


def child_kinds(projection: Projection) -> list[tuple[str, Children]]:
    """The child lists a (session) projection writes."""
    return [(name, sub) for _k, name, sub in projection.fields if isinstance(sub, Children)]


def write(records: list[Any], projection: Projection, lists: Lists | None = None) -> str:
    """Records as one JSON array, in their order."""
    return msgspec.json.encode([project(r, projection, lists) for r in records]).decode()


def write_one(record: Any, projection: Projection, lists: Lists | None = None) -> str:
    """One record as a JSON object."""
    return msgspec.json.encode(project(record, projection, lists)).decode()
