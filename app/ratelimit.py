"""Per-user rate limits with the ``limits`` package (async API, moving window).

Every configured window is checked before any is spent, so a request refused by
the burst limit does not use up the minute budget. The moving window is exact:
at most N requests in any span of the window's length.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


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


def make_storage(uri: str) -> object:
    if uri.startswith(("redis://", "rediss://")):
        # limits' default async Redis client (coredis) fails on first use here; redis-py works.
        return storage_from_string("async+" + uri, implementation="redispy")
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
