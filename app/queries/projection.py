"""Projections: the fields of a record a reader writes, as JSON, under its own names.

A GraphQL plan whose selection only copies stored fields (a session's
interactions or metrics; a session with its lists) asks for the answer
*written*: a :class:`Projection` names, in answer order, each output key and
the record field it shows, with a nested projection for a value object (or a
list of them) and :class:`Children` for a session's list. The storage writes
the JSON in the order the ordinary read returns the rows, and the answer
embeds it as it is: no per-field completion by the executor. PostgreSQL
builds it in the query (:mod:`app.queries.sql`); elsewhere :func:`write`
writes it from the records read as usual (SQLite, and the in-memory fakes),
with one Python function per record type and projection, generated once
(about twice as fast as SQLite's own JSON functions building the same text,
which re-read each stored document for every key).

Leaves are written as every face of the GraphQL API writes them: enum members
by their name, datetimes in RFC 3339 UTC with a ``Z`` (microseconds only when
not zero), UUIDs as text, numbers, strings and booleans as they are. Only
records whose fields are these kinds can be projected (:func:`check`).
"""

from __future__ import annotations

import enum
import functools
import keyword
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from app.domain.records import write_datetime


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


Lists = dict[str, dict[uuid.UUID, list[Any]]]


def _dt(value: datetime | None) -> datetime | str | None:
    # msgspec writes a UTC datetime exactly as write_datetime does.
    if value is None or value.tzinfo is UTC:
        return value
    return write_datetime(value)


def _name(value: enum.Enum | None) -> str | None:
    return None if value is None else value._name_


class _Writer:
    """Python source for the functions that turn records into the
    projection's dicts (one per record type and projection, compiled once):
    each key read by attribute and converted by its kind, no per-field
    dispatch at run time. msgspec then writes the dicts (UUIDs and UTC
    datetimes as the API writes them)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.done: dict[tuple[type, Projection], str] = {}

    def function(self, record: type, projection: Projection, *, top: bool) -> str:
        known = self.done.get((record, projection))
        if known is not None:
            return known
        fn = f"_w{len(self.done)}"
        self.done[(record, projection)] = fn
        fields = fields_of(record)
        items = []
        for key, name, sub in projection.fields:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise NotProjectable(f"{record.__name__}.{name}")
            if isinstance(sub, Children):
                child = self.function(sub.record, sub.projection, top=True)
                value = f"[{child}(c, lists) for c in lists[{name!r}].get(r.id, ())]"
            else:
                value = self.value(f"r.{name}", fields[name][1], sub)
            items.append(f"{key!r}: {value}")
        args = "r, lists=None" if top else "r"
        self.lines.append(f"def {fn}({args}):\n    return {{{', '.join(items)}}}\n")
        return fn

    def value(self, ref: str, kind: Kind, sub: Projection | Children | None) -> str:
        assert not isinstance(sub, Children)
        if kind.shape == "leaf":
            t = kind.type
            if isinstance(t, type) and issubclass(t, enum.Enum):
                return f"_name({ref})" if kind.optional else f"{ref}._name_"
            if t is datetime:
                return f"_dt({ref})"
            return ref  # str, int, float, bool, UUID: msgspec writes them
        if kind.shape == "struct":
            assert sub is not None
            fn = self.function(kind.type, sub, top=False)
            built = f"{fn}({ref})"
        else:
            item: Kind = kind.type
            if item.shape == "struct":
                assert sub is not None
                fn = self.function(item.type, sub, top=False)
                built = f"[{fn}(x) for x in {ref}]"
            else:
                each = self.value("x", item, None)
                built = ref if each == "x" else f"[{each} for x in {ref}]"
        return f"(None if {ref} is None else {built})" if kind.optional else built


_COMPILED: dict[tuple[type, Projection], Any] = {}


def _compiled(record: type, projection: Projection) -> Any:
    found = _COMPILED.get((record, projection))
    if found is not None:
        return found
    if len(_COMPILED) >= 512:  # plans are bounded too; this only caps it
        _COMPILED.clear()
    writer = _Writer()
    top = writer.function(record, projection, top=True)
    scope: dict[str, Any] = {"_dt": _dt, "_name": _name}
    # The source names only the code's own fields and keys (repr-quoted).
    exec("".join(writer.lines), scope)  # noqa: S102
    _COMPILED[(record, projection)] = scope[top]
    return scope[top]


def project(record: Any, projection: Projection, lists: Lists | None = None) -> dict[str, Any]:
    """One record as the projection writes it; ``lists``: per child kind, the
    children of each session (for :class:`Children` entries)."""
    result: dict[str, Any] = _compiled(type(record), projection)(record, lists)
    return result


def child_kinds(projection: Projection) -> list[tuple[str, Children]]:
    """The child lists a (session) projection writes."""
    return [(name, sub) for _k, name, sub in projection.fields if isinstance(sub, Children)]


def write(records: list[Any], projection: Projection, lists: Lists | None = None) -> str:
    """Records (of one type) as one JSON array, in their order."""
    if not records:
        return "[]"
    fn = _compiled(type(records[0]), projection)
    return msgspec.json.encode([fn(r, lists) for r in records]).decode()


def write_one(record: Any, projection: Projection, lists: Lists | None = None) -> str:
    """One record as a JSON object."""
    return msgspec.json.encode(project(record, projection, lists)).decode()
