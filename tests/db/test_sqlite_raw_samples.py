"""SQLite's raw read path against SQLAlchemy's connections, as in
test_sqlite_raw.py, on records whose every field is set (tests/full_samples.py:
the round-trip samples, and every value at the bounds the command structs
declare), written through the service."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from msgspec import inspect as mi

from app.domain import records as r
from app.domain.paging import Page, PageRequest, SessionFilter
from app.domain.service import Service
from tests.conftest import as_principal
from tests.db.test_sqlite_raw import both as both  # the fixture: raw reads, SQLAlchemy's
from tests.full_samples import STATUSES, VARIANTS, fields_never_set

ACTIONS = {"complete": r.SessionStatus.COMPLETED, "pause": r.SessionStatus.PAUSED}


def _command(kind: type[msgspec.Struct], body: dict[str, Any], sid: Any = None) -> Any:
    if sid is not None:
        body = {**body, "sessionId": str(sid)}
    return msgspec.convert(body, kind)


def _plain(value: Any) -> Any:
    if isinstance(value, Page):  # (its cursors are made on demand)
        return value.items, value.has_next, value.end_cursor
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


async def test_every_read_agrees_with_sqlalchemys_on_every_field(both):
    raw, plain = both
    user = as_principal("u-raw-samples")
    service = Service.build(raw, max_active_sessions=10)
    reference = Service.build(plain, max_active_sessions=10)
    sids = []
    for seed, (name, variant) in enumerate(VARIANTS.items()):
        s = await service.sessions.create(
            user, _command(r.CreateSession, variant(r.CreateSession, seed))
        )
        for k in range(2):
            i = await service.interactions.create(
                user, _command(r.CreateInteraction, variant(r.CreateInteraction, seed + k), s.id)
            )
            await service.interactions.update(
                user, i.id, _command(r.UpdateInteraction, variant(r.UpdateInteraction, seed + k))
            )
            await service.metrics.record(
                user, _command(r.RecordMetrics, variant(r.RecordMetrics, seed + k), s.id)
            )
        if STATUSES[name]:
            await service.sessions.set_status(user, s.id, ACTIONS[STATUSES[name]])
        sids.append(s.id)
    details = [msgspec.to_builtins(await service.sessions.details(user, sid)) for sid in sids]
    assert fields_never_set(details, mi.type_info(r.SessionDetails)) == []
    title = details[0]["jobContext"]["title"]

    calls = [
        *(lambda s, sid=sid: s.sessions.get(user, sid) for sid in sids),
        *(lambda s, sid=sid: s.sessions.details(user, sid) for sid in sids),
        lambda s: s.sessions.list_sessions(user, limit=10),
        lambda s: s.sessions.active(user),
        lambda s: s.sessions.page(user, SessionFilter(), PageRequest(2)),
        lambda s: s.sessions.page(
            user, SessionFilter(status=(r.SessionStatus.COMPLETED,)), PageRequest(5)
        ),
        lambda s: s.sessions.page(user, SessionFilter(search=title[:5].lower()), PageRequest(5)),
        lambda s: s.sessions.page(
            user, SessionFilter(interview_type=r.QuestionType.CULTURAL), PageRequest(5)
        ),
        lambda s: s.interactions.for_sessions(user, sids),
        lambda s: s.metrics.for_sessions(user, sids),
        lambda s: s.interactions.counts(user, sids),
        lambda s: s.interactions.page(user, sids[0], PageRequest(1)),
        lambda s: s.interactions.first_pages(user, sids, 1),
        lambda s: s.analytics.for_user(user, date(2000, 1, 1), None),
    ]
    for call in calls:
        assert _plain(await call(service)) == _plain(await call(reference))
