"""Answers written by PostgreSQL: sessions' lists (and whole roots) as JSON in the query.

The SQL for a :class:`app.queries.projection.Projection`: one
``json_build_object`` per row with the answer's keys in the projection's order
(``json``, not ``jsonb``, which would sort them); each session's lists as
``json_agg`` subqueries in the order the ordinary reads use, for many
sessions at once (:func:`children_statement`); a root's whole answer, one
session with its lists (:func:`session_statement`) or a user's newest
sessions with theirs (:func:`sessions_statement`); each keeps the rule of
the read it stands for (only the user's sessions, the same order and limit).

Each leaf is written as :func:`app.queries.projection.write` writes it: enum
members by name, timestamps RFC 3339 UTC with a ``Z`` (microseconds only when
not zero), whole floats with their ``.0``; value objects stored in JSONB
columns are rebuilt key by key (a key absent from a stored document reads as
the field's default). The repository compacts the text, so the answer is byte
for byte what the standard executor writes, except floats outside 1e-4..1e15,
which PostgreSQL writes in its own exponent notation (the same number).

Keys and column names are the code's own (GraphQL names, record fields),
quoted as SQL literals; values are never inlined: the only parameters are ids,
the user, a limit and a status. A statement is built once per projection and
kept (bounded, least recently used out), so a document's plan reuses its SQL
and asyncpg's prepared statement.
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import BindParameter, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Uuid

from app.db.models import interactions_table, metrics_table, sessions_table
from app.domain.records import Session
from app.queries.projection import Children, Kind, Projection, fields_of

# "YYYY-MM-DDTHH:MI:SS" then ".ffffff" unless whole seconds, then "Z".
_TS = "to_char({v} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
_US = "to_char({v} AT TIME ZONE 'UTC', '.US')"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _json_lit(value: Any) -> str:
    return _lit(msgspec.json.encode(value).decode()) + "::jsonb"


def _enum(expr_text: str, members: type[enum.Enum]) -> str:
    """Stored value (text) -> the member's name; NULL stays NULL."""
    whens = " ".join(f"WHEN {_lit(str(m.value))} THEN {_lit(m.name)}" for m in members)
    return f"(CASE {expr_text} {whens} END)"


class _Names:
    """Fresh aliases for nested subqueries."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def _object(doc: str, record: type[msgspec.Struct], p: Projection, names: _Names) -> str:
    """A value object stored as a JSONB document ``doc``, rebuilt key by key."""
    parts: list[str] = []
    fields = fields_of(record)
    for key, name, sub in p.fields:
        stored, kind = fields[name]
        assert not isinstance(sub, Children)  # only sessions have child lists
        parts.append(f"{_lit(key)}, {_in_doc(doc, stored, kind, sub, names)}")
    # json, not jsonb: jsonb would sort the keys.
    return f"json_build_object({', '.join(parts)})"


def _in_doc(doc: str, stored: str, kind: Kind, sub: Projection | None, names: _Names) -> str:
    """One key of a JSONB document, as jsonb (or text for enums)."""
    raw = f"({doc} -> {_lit(stored)})"
    has_default = kind.default is not msgspec.NODEFAULT and kind.default is not None
    if kind.shape == "leaf":
        if isinstance(kind.type, type) and issubclass(kind.type, enum.Enum):
            value = f"({doc} ->> {_lit(stored)})"
            if has_default:
                value = f"COALESCE({value}, {_lit(str(kind.default.value))})"
            return _enum(value, kind.type)
        if kind.type is datetime:
            raise ValueError("timestamps inside documents are not projected")
        return f"COALESCE({raw}, {_json_lit(kind.default)})" if has_default else raw
    if kind.shape == "struct":
        assert sub is not None
        return (
            f"(CASE WHEN jsonb_typeof({raw}) = 'object' "
            f"THEN {_object(raw, kind.type, sub, names)} END)"
        )
    return _list(raw, kind, sub, names)


def _list(array: str, kind: Kind, sub: Projection | None, names: _Names) -> str:
    """A JSONB array: leaves as stored, value objects rebuilt in order."""
    item: Kind = kind.type
    if item.shape == "leaf" and not (
        isinstance(item.type, type) and issubclass(item.type, enum.Enum)
    ):
        # A key absent from the document reads as the field's default list.
        default = kind.default if isinstance(kind.default, list) else []
        body, empty = array, _json_lit(default)
    elif item.shape == "struct":
        assert sub is not None
        a = names("a")
        built = _object(f"{a}.e", item.type, sub, names)
        empty = "'[]'::json"
        # Names and keys are the code's own, quoted; no value is inlined.
        body = (
            f"(SELECT COALESCE(json_agg({built} "  # noqa: S608
            f"ORDER BY {a}.o), {empty}) "
            f"FROM jsonb_array_elements({array}) WITH ORDINALITY AS {a}(e, o))"
        )
    else:
        raise ValueError("lists of enums are not projected")
    if kind.optional:  # None stays null
        return f"(CASE WHEN jsonb_typeof({array}) = 'array' THEN {body} END)"
    return f"(CASE WHEN jsonb_typeof({array}) = 'array' THEN {body} ELSE {empty} END)"


def _column(col: str, kind: Kind, sub: Projection | None, names: _Names) -> str:
    """A column of a row, written as the projection writes it."""
    if kind.shape == "leaf":
        t = kind.type
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return _enum(col, t)
        if t is float:  # a whole float as Python writes it: 1.0, not 1
            return (
                f"(CASE WHEN {col} = trunc({col}) AND abs({col}) < 1e15 "
                f"THEN (trunc({col})::bigint::text || '.0')::json ELSE to_json({col}) END)"
            )
        if t is datetime:
            ts, us = _TS.format(v=col), _US.format(v=col)
            return (
                f"({ts} || (CASE WHEN {col} = date_trunc('second', {col}) THEN '' "
                f"ELSE {us} END) || 'Z')"
            )
        return col
    if kind.shape == "struct":
        assert sub is not None
        built = _object(col, kind.type, sub, names)
        return f"(CASE WHEN jsonb_typeof({col}) = 'object' THEN {built} END)"
    return _list(col, kind, sub, names)


# Each child kind: its table and the order the ordinary read returns it in.
CHILD_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "interactions": (interactions_table.name, ("timestamp", "id")),
    "metrics": (metrics_table.name, ("created_at", "id")),
}


def _row(alias: str, record: type[msgspec.Struct], p: Projection, names: _Names) -> str:
    """A row of ``record``'s table (``alias``) as one JSON object."""
    fields = fields_of(record)
    parts = []
    for key, name, sub in p.fields:
        if isinstance(sub, Children):
            parts.append(f"{_lit(key)}, {_children(alias, sub, names)}")
            continue
        _stored, kind = fields[name]
        parts.append(f"{_lit(key)}, {_column(f'{alias}.{name}', kind, sub, names)}")
    return f"json_build_object({', '.join(parts)})"


def _children(parent: str, children: Children, names: _Names) -> str:
    """The parent row's children as a JSON array, oldest first ([] when none)."""
    table, order = CHILD_TABLES[children.kind]
    c = names("c")
    obj = _row(c, children.record, children.projection, names)
    ordering = ", ".join(f"{c}.{col}" for col in order)
    # Names and keys are the code's own, quoted; no value is inlined.
    return (
        f"COALESCE((SELECT json_agg({obj} ORDER BY {ordering}) "  # noqa: S608
        f"FROM {table} AS {c} WHERE {c}.session_id = {parent}.id), '[]'::json)"
    )


_IDS = bindparam("ids", type_=ARRAY(Uuid()))


@functools.lru_cache(maxsize=256)
def children_statement(parts: tuple[Children, ...]) -> TextClause:
    """``(session_id, j0, j1, ...)`` for each of the user's sessions among
    ``ids``: per part, the session's children as a JSON array."""
    names = _Names()
    columns = ", ".join(f"{_children('p', c, names)}::text AS j{n}" for n, c in enumerate(parts))
    sql = (
        f"SELECT p.id AS session_id, {columns} FROM {sessions_table.name} AS p "  # noqa: S608
        "WHERE p.id = ANY(:ids) AND p.user_id = :user_id"
    )
    # Every session by its key: PostgreSQL's generic plan is the custom one
    # (planning this statement was a third of its CPU for a details read).
    return text(sql).bindparams(_IDS, bindparam("user_id")).execution_options(generic_plans=True)


@functools.lru_cache(maxsize=256)
def session_statement(projection: Projection) -> TextClause:
    """``j``: the user's session ``id`` as one JSON object (no row: none such).
    One row by its key, and its children by their session's: a generic plan
    is the custom one, and planning this statement costs more than running
    it, so PostgreSQL may keep one (``generic_plans``)."""
    obj = _row("s", Session, projection, _Names())
    sql = (
        f"SELECT {obj}::text AS j FROM {sessions_table.name} AS s "  # noqa: S608
        "WHERE s.id = :id AND s.user_id = :user_id"
    )
    return (
        text(sql)
        .bindparams(bindparam("id", type_=Uuid()), bindparam("user_id"))
        .execution_options(generic_plans=True)
    )


@functools.lru_cache(maxsize=256)
def sessions_statement(projection: Projection, by_status: bool) -> TextClause:
    """``j``: the user's newest ``limit`` sessions (of ``status``) as one JSON
    array, newest first, as ``SessionRepository.list_for_user`` orders them."""
    obj = _row("s", Session, projection, _Names())
    status = " AND status = :status" if by_status else ""
    sql = (
        f"SELECT COALESCE(json_agg({obj} ORDER BY s.created_at DESC, s.id DESC), "  # noqa: S608
        f"'[]'::json)::text AS j FROM (SELECT * FROM {sessions_table.name} "
        f"WHERE user_id = :user_id{status} ORDER BY created_at DESC, id DESC LIMIT :limit) AS s"
    )
    binds: list[BindParameter[Any]] = [bindparam("user_id"), bindparam("limit")]
    if by_status:
        binds.append(bindparam("status"))
    # One walk of (user_id[, status], created_at, id) for any user and status,
    # and the children by their session's key (see session_statement).
    return text(sql).bindparams(*binds).execution_options(generic_plans=True)
