"""Per-user rate limits with the ``limits`` package (async API, moving window).

Every configured window is checked before any is spent, so a request refused by
the burst limit does not use up the minute budget. The moving window is exact:
at most N requests in any span of the window's length.

Storages: ``memory://`` (:class:`LeanMemoryStorage`, one process) and
``redis://`` (limits' redis-py storage, shared by processes; one Lua script
checks and hits all windows atomically, on limits' own key names and layout).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

PRUNE_EVERY_SECONDS = 1.0
log = logging.getLogger(__name__)

# KEYS: one list per window, newest timestamp first (limits' layout).
# ARGV: now, then limit and length in seconds per window.
# Returns: allowed (1/0), then per window: hits in it before this one, its start.
_ALL_WINDOWS_LUA = """
local now = tonumber(ARGV[1])
local out = {1}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local expiry = tonumber(ARGV[2 * i + 1])
  local low, high, found = 0, limit - 1, -1
  while low <= high do
    local mid = math.floor((low + high) / 2)
    local stamp = tonumber(redis.call('lindex', KEYS[i], mid))
    if stamp and stamp > now - expiry then found = mid; low = mid + 1 else high = mid - 1 end
  end
  local count = found + 1
  local start = now
  if count > 0 then start = tonumber(redis.call('lindex', KEYS[i], found)) end
  if count >= limit then out[1] = 0 end
  out[#out + 1] = count
  out[#out + 1] = string.format('%.17g', start)
end
if out[1] == 1 then
  for i = 1, #KEYS do
    local limit = tonumber(ARGV[2 * i])
    redis.call('lpush', KEYS[i], now)
    redis.call('ltrim', KEYS[i], 0, limit - 1)
    redis.call('expire', KEYS[i], tonumber(ARGV[2 * i + 1]))
  end
end
return out
"""


class Verdict:
    __slots__ = ("allowed", "limit", "remaining", "reset")

    def __init__(self, allowed: bool, limit: int, remaining: int, reset: int) -> None:
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.reset = reset

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset),
        ]
        if not self.allowed:
            out.append((b"retry-after", b"%d" % max(self.reset, 1)))
        return out

    def message(self) -> str:
        return f"Rate limit exceeded: retry in {max(self.reset, 1)} seconds"


class LeanMemoryStorage(MemoryStorage):
    """limits' async in-process storage with a cheaper moving window.

    Upstream keeps each window as a newest-first list of entry objects, so
    every hit inserts at the front (a copy of the whole window: 60,000 entries
    for a busy minute) and a background task hops to a thread per key to prune.
    Here a window is an oldest-first list of timestamps: a hit appends, a count
    is one binary search, and expired timestamps are dropped inline at most once
    a second. The answers are the moving window's: at most N hits in any span of
    the window's length. Only the moving-window methods are replaced.
    """

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions, **options)
        self.windows: dict[str, tuple[float, list[float]]] = {}
        self._last_prune = 0.0

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire_now(key, limit, expiry, amount)

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self.window_now(key, expiry)

    async def reset(self) -> int | None:
        self.windows.clear()
        return await super().reset()

    async def clear(self, key: str) -> None:
        self.windows.pop(key, None)
        await super().clear(key)

    def acquire_now(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take ``amount`` places in the window if it has them. Nothing in here
        awaits, so on one event loop it is atomic without a lock."""
        if amount > limit:
            return False
        now = time.time()
        stamps = self.windows.setdefault(key, (float(expiry), []))[1]
        if len(stamps) - bisect.bisect_right(stamps, now - expiry) + amount > limit:
            return False
        stamps.extend([now] * amount)
        self.prune_if_due(now)
        return True

    def window_now(self, key: str, expiry: int) -> tuple[float, int]:
        """(start of the window, hits in it), as limits' get_moving_window."""
        now = time.time()
        window = self.windows.get(key)
        if window:
            stamps = window[1]
            first = bisect.bisect_right(stamps, now - expiry)
            if first < len(stamps):
                return stamps[first], len(stamps) - first
        return now, 0

    def prune_if_due(self, now: float) -> None:
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        for key, (expiry, stamps) in list(self.windows.items()):
            del stamps[: bisect.bisect_right(stamps, now - expiry)]
            if not stamps:
                del self.windows[key]


def make_storage(uri: str) -> object:
    if uri.startswith(("redis://", "rediss://")):
        # limits' default async Redis client (coredis) fails on first use here; redis-py works.
        return storage_from_string("async+" + uri, implementation="redispy")
    if uri.startswith("memory://"):
        return LeanMemoryStorage()
    return storage_from_string("async+" + uri)


class RateLimiter:
    """The budget of each client, checked and spent in one step.

    A shared store (Redis) is bounded: each check gets ``timeout`` seconds; a
    store that fails or does not answer in time is not asked again for
    ``breaker_seconds`` (requests go through unlimited meanwhile: an unreachable
    Redis must not take the API down, nor add its timeout to every request),
    and that is logged once per outage.
    """

    def __init__(
        self,
        rate_limits: str,
        storage_uri: str,
        namespace: str = "interview-api",
        *,
        timeout: float = 0.25,
        breaker_seconds: float = 10.0,
    ) -> None:
        self.items: list[RateLimitItem] = parse_many(rate_limits)
        self.storage = make_storage(storage_uri)
        self.timeout = timeout
        self.breaker_seconds = breaker_seconds
        self.open_until = 0.0  # monotonic: the store is not asked before then
        # limits' moving-window strategy over this storage: also the check that
        # the storage supports moving windows at all (it raises otherwise).
        self.strategy = MovingWindowRateLimiter(self.storage)  # type: ignore[arg-type]
        self.namespace = namespace
        self._window_keys: dict[str, list[tuple[int, str, int]]] = {}
        self._script: Any = None

    async def hit(self, key: str) -> Verdict | None:
        """The verdict, or None: the shared store is failing, the request is not limited."""
        if isinstance(self.storage, LeanMemoryStorage):
            return await self._hit_in_memory(self.storage, key)
        if self.open_until:
            if time.monotonic() < self.open_until:
                return None
            self.open_until = 0.0
            log.warning("rate limit storage: trying it again")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._hit(key)
        except Exception as exc:
            self.open_until = time.monotonic() + self.breaker_seconds
            why = f"no answer within {self.timeout}s" if isinstance(exc, TimeoutError) else exc
            log.error(
                "rate limit storage failed (%r); requests are not limited for %ss",
                why,
                self.breaker_seconds,
            )
            return None

    def _windows_of(self, key: str) -> list[tuple[int, str, int]]:
        """(limit, storage key, seconds) per configured window, memoised per client."""
        windows = self._window_keys.get(key)
        if windows is None:
            if len(self._window_keys) >= 100_000:
                self._window_keys.clear()
            windows = [
                (item.amount, item.key_for(self.namespace, key), item.get_expiry())
                for item in self.items
            ]
            self._window_keys[key] = windows
        return windows

    async def _hit_in_memory(self, storage: LeanMemoryStorage, key: str) -> Verdict:
        """``_hit`` on the in-process storage, inlined: nothing awaits between the
        check and the hit, so no other request can slip in between."""
        now = time.time()
        stores = storage.windows
        seen = []
        for limit, skey, expiry in self._windows_of(key):
            window = stores.get(skey)
            start, count = now, 0
            if window is not None:
                stamps = window[1]
                first = bisect.bisect_right(stamps, now - expiry)
                count = len(stamps) - first
                if count:
                    start = stamps[first]
            if count >= limit:
                return Verdict(False, limit, 0, math.ceil(start + expiry - now))
            seen.append((limit, skey, expiry, start, count))
        best: tuple[int, int, int] | None = None
        for limit, skey, expiry, start, count in seen:
            window = stores.get(skey)
            if window is None:
                window = stores[skey] = (float(expiry), [])
            window[1].append(now)
            remaining = limit - count - 1
            if best is None or remaining < best[1]:
                best = (limit, remaining, math.ceil(start + expiry - now))
        storage.prune_if_due(now)
        assert best is not None
        return Verdict(True, *best)

    async def _hit(self, key: str) -> Verdict:
        """Every window checked and, only if all have room, hit: in one script on
        Redis, so processes racing for the last places cannot spend a window for
        a request another window then refuses. The lists are limits' own
        moving-window lists (newest first), under limits' key names."""
        bridge = self.storage.bridge  # type: ignore[attr-defined]
        if self._script is None:
            self._script = bridge.get_connection().register_script(_ALL_WINDOWS_LUA)
        windows = self._windows_of(key)
        keys = [bridge.prefixed_key(skey) for _limit, skey, _expiry in windows]
        args: list[float] = [time.time()]
        for limit, _skey, expiry in windows:
            args += [limit, expiry]
        allowed, *flat = await self._script(keys, args)
        best: tuple[int, int, int] | None = None
        for (limit, _skey, expiry), count, start in zip(
            windows, flat[0::2], flat[1::2], strict=True
        ):
            count = int(count)
            reset = max(math.ceil(float(start) + expiry - args[0]), 0)
            if not allowed and count >= limit:
                return Verdict(False, limit, 0, reset)
            remaining = max(limit - count - 1, 0)
            if best is None or remaining < best[1]:
                best = (limit, remaining, reset)
        assert best is not None
        return Verdict(True, *best)

    async def reset(self) -> None:
        await self.storage.reset()  # type: ignore[attr-defined]
