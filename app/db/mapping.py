"""Records <-> rows, by name, derived from the record and the table.

One :class:`RowMap` per stored record: its columns are the record's fields
that the table has (in the record's order), plus *derived* columns the
database keeps for its own queries (a search text, an indexed copy of a JSON
value), each computed from the record by a function given here. A row is read
by column name, never by position, and a record is written field by field
without a hand-written list: adding a field to a record and a column to its
table is all the repository needs. ``tests/test_shapes.py`` checks that every
column is a field or a derived column, and every field a column.

JSON columns hold value objects (``JobContext``, lists of responses); they
come back as text on the raw asyncpg path and as decoded documents through
SQLAlchemy, and either way become the record's own types here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import JSON, Column, Table

R = TypeVar("R", bound=msgspec.Struct)


class _Json:
    """A JSON column's value as the field's type, from text or a decoded document."""

    __slots__ = ("decode", "kind")

    def __init__(self, kind: Any) -> None:
        self.kind = kind
        self.decode = msgspec.json.Decoder(kind).decode

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        if type(value) is str:
            return self.decode(value)
        return msgspec.convert(value, self.kind)


def _enum_of(kind: Any) -> type[enum.Enum] | None:
    """The enum class of ``E`` or ``E | None``."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    for arg in getattr(kind, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return arg
    return None


def _is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSON) or isinstance(getattr(column.type, "impl", None), JSON)


def _stored(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, msgspec.Struct | list | dict):
        return msgspec.to_builtins(value)
    return value


class RowMap(Generic[R]):
    """How one record type is stored in one table."""

    def __init__(
        self,
        record: type[R],
        table: Table,
        derived: Mapping[str, Callable[[R], Any]] | None = None,
    ) -> None:
        self.record = record
        self.table = table
        self.derived = dict(derived or {})
        hints = {f.name: f.type for f in msgspec.structs.fields(record)}
        self.fields: tuple[str, ...] = tuple(name for name in hints if name in table.c)
        missing = set(hints) - set(self.fields)
        if missing:
            raise TypeError(f"{record.__name__} fields without a column: {sorted(missing)}")
        self.columns: tuple[Column[Any], ...] = tuple(table.c[name] for name in self.fields)
        env: dict[str, Any] = {"Record": record}
        args = []
        for name in self.fields:
            column = table.c[name]
            if _is_json(column):
                env[f"c_{name}"] = _Json(hints[name])
                args.append(f"{name}=c_{name}(row[{name!r}])")
            elif (kind := _enum_of(hints[name])) is not None:
                env[f"e_{name}"] = {m.value: m for m in kind}
                if kind is hints[name]:
                    args.append(f"{name}=e_{name}[row[{name!r}]]")
                else:  # optional
                    args.append(f"{name}=(None if (v := row[{name!r}]) is None else e_{name}[v])")
            else:
                args.append(f"{name}=row[{name!r}]")
        joined = ",\n        ".join(args)
        # Generated once per record type: inspect with ``print(rowmap.source)``.
        self.source = f"def from_row(row):\n    return Record(\n        {joined},\n    )\n"
        exec(compile(self.source, f"<row map of {record.__name__}>", "exec"), env)  # noqa: S102
        self.from_row: Callable[[Any], R] = env["from_row"]
        # The other way, for INSERT: a JSON column's value object and an enum
        # become builtins (_stored); any other column's value goes as it is.
        values = [
            f"{name!r}: _stored(record.{name})"
            if _is_json(table.c[name]) or _enum_of(hints[name]) is not None
            else f"{name!r}: record.{name}"
            for name in self.fields
        ]
        values += [f"{name!r}: d_{name}(record)" for name in self.derived]
        env.update({f"d_{name}": derive for name, derive in self.derived.items()})
        env["_stored"] = _stored
        self.to_row_source = "def to_row(record):\n    return {{\n        {},\n    }}\n".format(
            ",\n        ".join(values)
        )
        exec(  # noqa: S102
            compile(self.to_row_source, f"<row map of {record.__name__}, to rows>", "exec"), env
        )
        self.to_row: Callable[[R], dict[str, Any]] = env["to_row"]

    def values(self, record: R, fields: Iterable[str]) -> dict[str, Any]:
        """The named fields' values, and every derived column (for UPDATE)."""
        row = {name: _stored(getattr(record, name)) for name in fields}
        for name, derive in self.derived.items():
            row[name] = derive(record)
        return row
