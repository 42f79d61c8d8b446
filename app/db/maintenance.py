"""Background upkeep of the tables that only grow: old events (and keys).

Each pass deletes in small batches, each its own short transaction, so a
prune never holds writers back; several processes may prune at once (on
PostgreSQL they skip the rows another process is deleting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("app.maintenance")

BATCH = 1000


class Pruner:
    def __init__(
        self,
        database: Any,
        jobs: list[tuple[str, timedelta, Callable[[Any, datetime, int], Awaitable[int]]]],
        every: float = 60.0,
    ) -> None:
        self.database = database
        self.jobs = jobs  # (name, retention, prune(uow, before, limit))
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def run_once(self) -> dict[str, int]:
        done: dict[str, int] = {}
        for name, retention, prune in self.jobs:
            before = datetime.now(UTC) - retention
            total = 0
            while True:

                async def work(uow: Any, before: datetime = before, prune: Any = prune) -> int:
                    n: int = await prune(uow, before, BATCH)
                    return n

                n = await self.database.write(work)
                total += n
                if n < BATCH:
                    break
                await asyncio.sleep(0)  # let waiting writers in between batches
            done[name] = total
        return done

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                pruned = await self.run_once()
                if any(pruned.values()):
                    log.info("pruned %s", pruned)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pruning failed, will retry: %r", exc)
