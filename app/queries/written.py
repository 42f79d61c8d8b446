"""Answers written as JSON by the storage: sessions' lists, and whole roots.

A compiled GraphQL plan whose selection of a session's ``interactions`` or
``metrics`` only copies stored fields (a :class:`~app.queries.projection.Children`)
has the JSON written here, for many sessions at once, in the order the
ordinary reads use, only for the caller's own sessions (a session missing or
someone else's: ``[]``); a root with such lists (``session``, ``sessions``)
has its whole answer written (:func:`written_session`,
:func:`written_sessions`; measured: ~1.3-1.5x the details read that writes
the root in Python and only its lists here, bench/README.md):

* PostgreSQL builds it in one statement (app/queries/sql.py);
* SQLite's JSON functions re-read each stored document once per key, so
  there the records are read as usual and written by the projection's
  Python writer (app/queries/projection.py), about twice as fast.

tests/graphql/test_written.py checks both against the standard executor on
samples that set every field.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from app.domain.ports import Database
from app.domain.records import SessionStatus
from app.queries.projection import Children, Projection, child_kinds, write, write_one
from app.queries.sql import children_statement, session_statement, sessions_statement

Written = dict[uuid.UUID, tuple[str, ...]]


async def written_lists(
    db: Database,
    dialect: str,
    user_id: str,
    session_ids: Sequence[uuid.UUID],
    parts: tuple[Children, ...],
) -> Written:
    """Per session (every key present), per part, its list as a JSON array."""
    if dialect == "postgresql":

        async def in_sql(uow: Any) -> Written:
            rows = await uow.ex.rows(
                children_statement(parts), {"ids": list(session_ids), "user_id": user_id}
            )
            return {
                r["session_id"]: tuple(_compact(r[f"j{n}"]) for n in range(len(parts)))
                for r in rows
            }

        found = await db.read(in_sql)
    else:

        async def in_python(uow: Any) -> Written:
            lists = await _lists(uow, (p.kind for p in parts), session_ids, user_id)
            return {
                sid: tuple(write(lists[p.kind].get(sid, []), p.projection) for p in parts)
                for sid in session_ids
            }

        found = await db.read(in_python)
    empty = tuple("[]" for _ in parts)
    return {sid: found.get(sid, empty) for sid in session_ids}


async def _lists(uow: Any, kinds: Any, session_ids: Sequence[uuid.UUID], user_id: str) -> Any:
    lists: dict[str, Any] = {}
    for kind in set(kinds):
        repository = uow.interactions if kind == "interactions" else uow.metrics
        lists[kind] = await repository.list_for_sessions(session_ids, user_id)
    return lists


async def written_session(
    db: Database, dialect: str, user_id: str, session_id: uuid.UUID, projection: Projection
) -> str | None:
    """The user's session as one JSON object; None if missing or someone else's
    (the resolver then answers with the error)."""

    async def work(uow: Any) -> str | None:
        if dialect == "postgresql":
            params = {"id": session_id, "user_id": user_id}
            rows = await uow.ex.rows(session_statement(projection), params)
            return _compact(rows[0]["j"]) if rows else None
        found = await uow.sessions.get(session_id)
        if found is None or found.user_id != user_id:
            return None
        kinds = (kind for kind, _c in child_kinds(projection))
        return write_one(found, projection, await _lists(uow, kinds, [found.id], user_id))

    return await db.read(work)  # (one statement, or one SQLite snapshot)


async def written_sessions(
    db: Database,
    dialect: str,
    user_id: str,
    projection: Projection,
    *,
    limit: int,
    status: SessionStatus | None,
) -> str:
    """The user's newest ``limit`` sessions (of ``status``) as one JSON array."""

    async def work(uow: Any) -> str:
        if dialect == "postgresql":
            params: dict[str, Any] = {"user_id": user_id, "limit": limit}
            if status is not None:
                params["status"] = status.value
            statement = sessions_statement(projection, status is not None)
            return _compact((await uow.ex.rows(statement, params))[0]["j"])
        found = await uow.sessions.list_for_user(user_id, limit=limit, status=status)
        kinds = (kind for kind, _c in child_kinds(projection))
        ids = [s.id for s in found]
        return write(found, projection, await _lists(uow, kinds, ids, user_id))

    return await db.read(work)  # (one statement, or one SQLite snapshot)


def _compact(text: str) -> str:
    """JSON PostgreSQL wrote, without its whitespace (as the rest of the answer)."""
    result: str = msgspec.json.format(text, indent=-1)
    return result
