"""The PostgreSQL read path's compiled-statement cache stays bounded."""

from __future__ import annotations

import itertools

from app.db import executor
from tests.api import Api


async def test_cache_size_stays_constant_over_1000_varied_requests(client, new_user, backend):
    api = Api(client, new_user())
    s = await api.new_session()
    await api.new_interaction(s["id"])
    statuses = itertools.cycle(["active", "paused", "completed"])
    sizes = []
    for n in range(1000):
        kind = n % 5
        if kind == 0:
            await api.list_sessions(limit=1 + n % 997)
        elif kind == 1:
            await api.get(s["id"] if n % 2 else f"00000000-0000-4000-8000-{n:012d}")
        elif kind == 2:
            await api.details(s["id"])
        elif kind == 3:
            await api.analytics(startDate=f"2024-01-{1 + n % 28:02d}")
        else:
            await api.graphql(
                "query($s: SessionStatus) { sessions(status: $s) { id interactions { id } } }",
                {"s": next(statuses).upper()},
            )
        if n in (199, 999):
            sizes.append(len(executor._compiled))
    assert sizes[0] == sizes[1] <= executor.STATEMENT_CACHE_SIZE
    if backend == "postgres":
        assert sizes[0] > 0  # the raw read path was used, and cached
