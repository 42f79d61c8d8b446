"""What an operator relies on (operations.md), wired here: readiness and the
drain on SIGTERM, the pool gauges, and waiting for the database at start.

* ``GET /ready`` (app/rest/health.py) asks :meth:`Readiness.reason`: 200 when
  the database answers, its migrations are at head and the process is not
  draining; otherwise 503 with the reason.
* SIGTERM (or SIGINT): ``/ready`` answers 503 at once; requests are still
  served for ``SHUTDOWN_DRAIN_SECONDS`` (so a load balancer notices first);
  then WebSockets close with 1001 and SSE streams end, and uvicorn stops
  accepting and lets the requests in flight finish (``SHUTDOWN_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.config import Settings
from app.db.migrate import current_revision, head_revision, upgrade_sync
from app.metrics import DB_POOL_CONNECTIONS

log = logging.getLogger("app")


class Readiness:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.head = head_revision()
        self.draining = False

    async def reason(self) -> str | None:
        """Why this process should get no traffic now, or None."""
        if self.draining:
            return "draining: the server is shutting down"
        try:
            revision = await current_revision(self.db)
        except Exception:
            return "database unavailable"
        if revision != self.head:
            return f"migrations are not at head ({revision or 'none'}, code needs {self.head})"
        return None


def install_graceful_shutdown(
    readiness: Readiness, drain_seconds: float, close: Callable[[], Awaitable[None]]
) -> None:
    """On SIGTERM/SIGINT: not ready at once, keep serving ``drain_seconds``,
    close the live connections (1001), then let uvicorn's own handler stop the
    server (which waits for requests in flight). A second signal stops at
    once. Only in the main thread of a server process (uvicorn installs its
    handlers before the app starts)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            if readiness.draining:  # a second signal: stop now
                previous(signum, frame)
                return
            readiness.draining = True

            async def drain_then_stop() -> None:
                if drain_seconds > 0:
                    log.info("draining for %.1f s before stopping", drain_seconds)
                    await asyncio.sleep(drain_seconds)
                try:
                    await asyncio.wait_for(close(), 2.0)
                except Exception:
                    log.exception("closing live connections at shutdown failed")
                previous(signum, frame)

            loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_stop()))

        signal.signal(sig, handler)


def pool_gauges(db: Any) -> Callable[[], None]:
    """Sets ``db_pool_connections`` from the PostgreSQL pools (SQLite has none
    to tell); called before each scrape and every few seconds."""
    pools = [p for p in (getattr(db, "reads", None), getattr(db, "writes", None)) if p]

    def refresh() -> None:
        if not pools:
            return
        DB_POOL_CONNECTIONS.labels("in_use").set(sum(p.busy for p in pools))
        DB_POOL_CONNECTIONS.labels("idle").set(sum(len(p.idle) for p in pools))

    return refresh


async def refresh_every(refresh: Callable[[], None], seconds: float = 5.0) -> None:
    while True:
        refresh()
        await asyncio.sleep(seconds)


def _where(url: str) -> str:
    """The database's host (or file), never its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return parsed.database or "sqlite"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def _reason(exc: BaseException, url: str) -> str:
    from sqlalchemy.engine import make_url

    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    password = make_url(url).password
    if password:
        line = line.replace(str(password), "***")
    return line[:300]


def migrate_when_ready(settings: Settings) -> None:
    """Apply migrations, waiting up to ``DB_STARTUP_TIMEOUT`` for a PostgreSQL
    that does not answer yet (one line per try); then exit non-zero with one
    line naming the host and the reason. SQLite: at once."""
    url = settings.database_url
    deadline = time.monotonic() + settings.db_startup_timeout
    while True:
        try:
            upgrade_sync(url)
            return
        except Exception as exc:
            reason = _reason(exc, url)
            if settings.is_sqlite or time.monotonic() >= deadline:
                raise SystemExit(
                    f"interview-api: database at {_where(url)} is not usable: {reason}"
                ) from None
            left = deadline - time.monotonic()
            log.warning(
                "database at %s does not answer yet (%s); retrying for %.0f s more",
                _where(url),
                reason,
                left,
            )
            time.sleep(min(1.0, max(left, 0.0)))
