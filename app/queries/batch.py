"""Keys asked for in one turn of the event loop, read with one call.

What a DataLoader does, without a framework: every ``get`` of one turn is
gathered, and the next turn calls ``load`` once with all their keys (each
key once: a repeat gets the first answer). One :class:`Batch` lives as long
as one request or one subscription event (app/queries/reads.py), so nothing
read is kept beyond it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batch(Generic[K, V]):
    __slots__ = ("asked", "load", "running", "waiting")

    def __init__(self, load: Callable[[Sequence[K]], Awaitable[dict[K, V]]]) -> None:
        self.load = load
        self.asked: dict[K, asyncio.Future[V]] = {}
        self.waiting: list[K] = []
        self.running: set[asyncio.Task[None]] = set()

    def get(self, key: K) -> asyncio.Future[V]:
        found = self.asked.get(key)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self.asked[key] = future
        if not self.waiting:
            loop.call_soon(self._dispatch)
        self.waiting.append(key)
        return future

    def _dispatch(self) -> None:
        keys, self.waiting = self.waiting, []
        task = asyncio.ensure_future(self._run(keys))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, keys: list[K]) -> None:
        try:
            found = await self.load(keys)
        except BaseException as exc:
            for key in keys:
                future = self.asked[key]
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key in keys:
            future = self.asked[key]
            if not future.done():
                future.set_result(found[key])
