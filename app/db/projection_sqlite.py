"""Projections written by SQLite: the statements of :mod:`app.db.projection`,
with SQLite's JSON functions.

The same three statements (a session's child lists for many sessions, one
session with its lists, a user's newest sessions with theirs), the same rules
(only the user's sessions, the same order and limit), the answer byte for
byte what the standard executor writes. SQLite's own writing of each leaf
differs from Python's, so each is written explicitly:

* ``json_object`` keeps the keys in the projection's order; child lists are
  ``json_group_array`` over a subquery in the ordinary reads' order (SQLite
  keeps an ordered subquery's order in an aggregate over it, and never
  flattens one into an aggregate); JSON built in a subquery keeps its JSON
  subtype in the expression around it (no ``json()`` re-parse is needed);
* UUIDs are stored as 32 hex digits and written with their dashes; timestamps
  are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC) and written RFC 3339 with
  a ``Z``, microseconds only when not zero; booleans are stored as 0/1;
* floats stored in columns are written by ``interview_json_float`` (msgspec,
  as the answer writes them: SQLite's own text keeps 15 digits), registered on
  every SQLite connection (:func:`register_functions`); numbers inside stored
  documents are copied as stored (``->`` keeps their text, which msgspec
  wrote);
* value objects stored as JSON documents are rebuilt key by key, a key absent
  from the document reading as the field's default, enums by their names.

Keys and column names are the code's own, quoted as SQL literals; values are
never inlined: the parameters are ids (a JSON array for many), the user, a
limit and a status.
"""

from __future__ import annotations

import enum
import functools
import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import BindParameter, TextClause, bindparam, text
from sqlalchemy.types import Uuid

from app.db.models import sessions_table
from app.db.projection import CHILD_TABLES, _enum, _lit, _Names
from app.domain.projection import Children, Kind, Projection, fields_of
from app.domain.records import Session

FLOAT_FUNCTION = "interview_json_float"
_encode = msgspec.json.encode


def _json_float(value: Any) -> str | None:
    return None if value is None else _encode(float(value)).decode()


def register_functions(dbapi_connection: Any) -> None:
    """The SQL functions these statements call, on one SQLite connection."""
    dbapi_connection.create_function(FLOAT_FUNCTION, 1, _json_float, deterministic=True)


def _json_lit(value: Any) -> str:
    return f"json({_lit(_encode(value).decode())})"


def _path(key: str) -> str:
    return _lit(f"$.{key}")


def _object(doc: str, record: type[msgspec.Struct], p: Projection, names: _Names) -> str:
    """A value object stored as a JSON document ``doc``, rebuilt key by key."""
    parts: list[str] = []
    fields = fields_of(record)
    for key, name, sub in p.fields:
        stored, kind = fields[name]
        assert not isinstance(sub, Children)  # only sessions have child lists
        parts.append(f"{_lit(key)}, {_in_doc(doc, stored, kind, sub, names)}")
    return f"json_object({', '.join(parts)})"


def _in_doc(doc: str, stored: str, kind: Kind, sub: Projection | None, names: _Names) -> str:
    """One key of a JSON document, as JSON (or text for enums)."""
    raw = f"({doc} -> {_path(stored)})"
    has_default = kind.default is not msgspec.NODEFAULT and kind.default is not None
    if kind.shape == "leaf":
        if isinstance(kind.type, type) and issubclass(kind.type, enum.Enum):
            value = f"({doc} ->> {_path(stored)})"
            if has_default:
                value = f"COALESCE({value}, {_lit(str(kind.default.value))})"
            return _enum(value, kind.type)
        if kind.type is datetime:
            raise ValueError("timestamps inside documents are not projected")
        return f"COALESCE({raw}, {_json_lit(kind.default)})" if has_default else raw
    if kind.shape == "struct":
        assert sub is not None
        return (
            f"(CASE WHEN json_type({doc}, {_path(stored)}) = 'object' "
            f"THEN {_object(raw, kind.type, sub, names)} END)"
        )
    return _list(doc, stored, kind, sub, names)


def _list(doc: str, stored: str, kind: Kind, sub: Projection | None, names: _Names) -> str:
    """A JSON array (the document ``doc``'s key ``stored``, or the whole
    column when ``stored`` is empty): leaves as stored, value objects rebuilt
    in order."""
    path = _path(stored) if stored else "'$'"
    array = f"({doc} -> {path})"
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
        built = _object(f"{a}.value", item.type, sub, names)
        empty = "json('[]')"
        # Names and keys are the code's own, quoted; no value is inlined.
        body = (
            f"(SELECT json_group_array({built}) FROM "  # noqa: S608
            f"(SELECT value FROM json_each({doc}, {path}) ORDER BY key) AS {a})"
        )
    else:
        raise ValueError("lists of enums are not projected")
    typed = f"json_type({doc}, {path}) = 'array'"
    if kind.optional:  # None stays null
        return f"(CASE WHEN {typed} THEN {body} END)"
    return f"(CASE WHEN {typed} THEN {body} ELSE {empty} END)"


_UUID_PARTS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def _uuid(col: str) -> str:
    parts = " || '-' || ".join(f"substr({col}, {a}, {n})" for a, n in _UUID_PARTS)
    return f"(CASE WHEN {col} IS NOT NULL THEN lower({parts}) END)"


def _timestamp(col: str) -> str:
    return (
        f"(CASE WHEN {col} IS NOT NULL THEN substr({col}, 1, 10) || 'T' || substr({col}, 12, 8)"
        f" || (CASE WHEN substr({col}, 21, 6) IN ('', '000000') THEN '' "
        f"ELSE '.' || substr({col}, 21, 6) END) || 'Z' END)"
    )


def _column(col: str, kind: Kind, sub: Projection | None, names: _Names) -> str:
    """A column of a row, written as the projection writes it."""
    if kind.shape == "leaf":
        t = kind.type
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return _enum(col, t)
        if t is float:
            return f"json({FLOAT_FUNCTION}({col}))"
        if t is bool:
            return (
                f"(CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN json('true') "
                "ELSE json('false') END)"
            )
        if t is uuid.UUID:
            return _uuid(col)
        if t is datetime:
            return _timestamp(col)
        return col
    if kind.shape == "struct":
        assert sub is not None
        built = _object(col, kind.type, sub, names)
        return f"(CASE WHEN json_type({col}) = 'object' THEN {built} END)"
    return _list(col, "", kind, sub, names)


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
    return f"json_object({', '.join(parts)})"


def _children(parent: str, children: Children, names: _Names) -> str:
    """The parent row's children as a JSON array, oldest first ([] when none)."""
    table, order = CHILD_TABLES[children.kind]
    c = names("c")
    obj = _row(c, children.record, children.projection, names)
    ordering = ", ".join(f"{col}" for col in order)
    # Names and keys are the code's own, quoted; no value is inlined.
    return (
        f"(SELECT json_group_array({obj}) FROM "  # noqa: S608
        f"(SELECT * FROM {table} WHERE session_id = {parent}.id ORDER BY {ordering}) AS {c})"
    )


@functools.lru_cache(maxsize=256)
def children_statement(parts: tuple[Children, ...]) -> TextClause:
    """``(session_id, j0, j1, ...)`` for each of the user's sessions among
    ``ids`` (a JSON array of their stored ids): per part, the children."""
    names = _Names()
    columns = ", ".join(f"{_children('p', c, names)} AS j{n}" for n, c in enumerate(parts))
    sql = (
        f"SELECT p.id AS session_id, {columns} FROM {sessions_table.name} AS p "  # noqa: S608
        "WHERE p.id IN (SELECT value FROM json_each(:ids)) AND p.user_id = :user_id"
    )
    return text(sql).bindparams(bindparam("ids"), bindparam("user_id"))


def ids_param(ids: Any) -> str:
    """The ``ids`` of :func:`children_statement`: the stored form of each id."""
    return _encode([i.hex for i in ids]).decode()


@functools.lru_cache(maxsize=256)
def session_statement(projection: Projection) -> TextClause:
    """``j``: the user's session ``id`` as one JSON object (no row: none such)."""
    obj = _row("s", Session, projection, _Names())
    sql = (
        f"SELECT {obj} AS j FROM {sessions_table.name} AS s "  # noqa: S608
        "WHERE s.id = :id AND s.user_id = :user_id"
    )
    return text(sql).bindparams(bindparam("id", type_=Uuid()), bindparam("user_id"))


@functools.lru_cache(maxsize=256)
def sessions_statement(projection: Projection, by_status: bool) -> TextClause:
    """``j``: the user's newest ``limit`` sessions (of ``status``) as one JSON
    array, newest first, as ``SessionRepository.list_for_user`` orders them."""
    obj = _row("s", Session, projection, _Names())
    status = " AND status = :status" if by_status else ""
    sql = (
        f"SELECT json_group_array({obj}) AS j FROM "  # noqa: S608
        f"(SELECT * FROM {sessions_table.name} WHERE user_id = :user_id{status} "
        "ORDER BY created_at DESC, id DESC LIMIT :limit) AS s"
    )
    binds: list[BindParameter[Any]] = [bindparam("user_id"), bindparam("limit")]
    if by_status:
        binds.append(bindparam("status"))
    return text(sql).bindparams(*binds)
