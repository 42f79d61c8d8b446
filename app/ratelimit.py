"""Per-user rate limits with the ``limits`` package (async API, moving window).

Every configured window is checked before any is spent, so a request refused by
the burst limit does not use up the minute budget. The moving window is exact:
at most N requests in any span of the window's length.
"""

from __future__ import annotations

import bisect
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.storage.memory import Entry
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

PRUNE_EVERY_SECONDS = 1.0


class Verdict:
    __slots__ = ("allowed", "limit", "remaining", "reset")

    def __init__(self, allowed: bool, limit: int, remaining: int, reset: int) -> None:
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.reset = reset

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(max(self.reset, 1)).encode()))
        return out

    def message(self) -> str:
        return f"Rate limit exceeded: retry in {max(self.reset, 1)} seconds"


class LeanMemoryStorage(MemoryStorage):
    """limits' async in-process storage, with cheaper housekeeping.

    Upstream starts a task on every hit that prunes expired entries by hopping
    to a worker thread once per key; at a thousand requests a second that is
    most of the limiter's cost. Here expired entries are pruned inline, at most
    once a second. Counting is untouched: the moving window itself ignores
    expired entries, pruning only frees memory.
    """

    _last_prune = 0.0

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        await self._MemoryStorage__schedule_expiry()
        return self.acquire_now(key, limit, expiry, amount)

    def acquire_now(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Upstream's acquire_entry without its per-key asyncio.Lock: nothing in
        here awaits, so on one event loop it is atomic already."""
        if amount > limit:
            return False
        events = self.events.setdefault(key, [])
        now = time.time()
        entry = events[limit - amount] if len(events) > limit - amount else None
        if entry is not None and entry.atime >= now - expiry:
            return False
        events[:0] = [Entry(expiry)] * amount
        return True

    def window_now(self, key: str, expiry: int) -> tuple[float, int]:
        """Upstream's get_moving_window, synchronously: (window start, entries in it)."""
        now = time.time()
        events = self.events.get(key)
        if events:
            oldest = bisect.bisect_left(events, -(now - expiry), key=lambda e: -e.atime)
            return events[oldest - 1].atime, oldest
        return now, 0

    async def prune_if_due(self) -> None:
        await self._MemoryStorage__schedule_expiry()

    async def _MemoryStorage__schedule_expiry(self) -> None:  # overrides the private hook
        now = time.time()
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = now
            self._prune(now)

    def _prune(self, now: float) -> None:
        for key in list(self.events):
            events = self.events[key]  # newest first
            del events[bisect.bisect_left(events, -now, key=lambda e: -e.expiry) :]
            if not events:
                del self.events[key]
                self.locks.pop(key, None)
        for key in [k for k, at in self.expirations.items() if at <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)


def make_storage(uri: str) -> object:
    if uri.startswith(("redis://", "rediss://")):
        # limits' default async Redis client (coredis) fails on first use here; redis-py works.
        return storage_from_string("async+" + uri, implementation="redispy")
    if uri.startswith("memory://"):
        return LeanMemoryStorage()
    return storage_from_string("async+" + uri)


class RateLimiter:
    def __init__(
        self, rate_limits: str, storage_uri: str, namespace: str = "interview-api"
    ) -> None:
        self.items: list[RateLimitItem] = parse_many(rate_limits)
        self.storage = make_storage(storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)  # type: ignore[arg-type]
        self.namespace = namespace

    async def hit(self, key: str) -> Verdict:
        if isinstance(self.storage, LeanMemoryStorage):
            return await self._hit_in_memory(self.storage, key)
        return await self._hit(key)

    async def _hit_in_memory(self, storage: LeanMemoryStorage, key: str) -> Verdict:
        """The same algorithm as ``_hit`` on the in-process storage, without awaits
        between the check and the hit (so no other request can slip in)."""
        await storage.prune_if_due()
        now = time.time()
        keys = [(item, item.key_for(self.namespace, key), item.get_expiry()) for item in self.items]
        windows = []
        for item, skey, expiry in keys:
            start, count = storage.window_now(skey, expiry)
            if count >= item.amount:
                return Verdict(False, item.amount, 0, math.ceil(start + expiry - now))
            windows.append((start, count))
        tightest: Verdict | None = None
        for (item, skey, expiry), (start, count) in zip(keys, windows, strict=True):
            storage.acquire_now(skey, item.amount, expiry)
            remaining = item.amount - count - 1
            if tightest is None or remaining < tightest.remaining:
                tightest = Verdict(True, item.amount, remaining, math.ceil(start + expiry - now))
        assert tightest is not None
        return tightest

    async def _hit(self, key: str) -> Verdict:
        now = time.time()
        stats = []
        for item in self.items:
            window = await self.strategy.get_window_stats(item, self.namespace, key)
            if window.remaining < 1:
                return Verdict(False, item.amount, 0, math.ceil(window.reset_time - now))
            stats.append((item, window))
        tightest: Verdict | None = None
        for item, window in stats:
            if not await self.strategy.hit(item, self.namespace, key):
                # Lost a race with a concurrent request for the last slot.
                fresh = await self.strategy.get_window_stats(item, self.namespace, key)
                return Verdict(False, item.amount, 0, math.ceil(fresh.reset_time - now))
            remaining = max(window.remaining - 1, 0)
            reset = math.ceil(window.reset_time - now)
            if tightest is None or remaining < tightest.remaining:
                tightest = Verdict(True, item.amount, remaining, reset)
        assert tightest is not None
        return tightest

    async def reset(self) -> None:
        await self.storage.reset()  # type: ignore[attr-defined]
