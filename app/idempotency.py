"""Safe retries: ``Idempotency-Key`` on every write, REST and GraphQL alike.

The pipeline hands a keyed write here (an authenticated ``POST``/``PUT``/
``DELETE`` under ``/interview-sessions``, or a ``POST /graphql`` with the key in
the header or in ``extensions.idempotencyKey``). For the key of that user:

1. The request runs in one database transaction that this module opens and
   holds (``Database.transaction()``): it hands it to the request explicitly
   (``scope["state"]["database"]``; each face builds the request's service
   over it, app/domain/service.py ``Service.within``), so every unit of work
   of the request, every mutation of a GraphQL document and the reads of its
   answer, runs in it. When the answer is made, the key with the answer
   (status, body, kept headers) is written as the transaction's last row and
   it commits: the request's changes, its key and its stored answer commit
   together or not at all. A process killed at any moment leaves either
   nothing (the retry runs afresh) or everything (the retry replays).
2. A key that another request committed first (PostgreSQL: its row's
   primary key makes this one wait for that commit, then fail; SQLite: one
   writer at a time) rolls this request back; the stored answer is then
   replayed byte for byte with ``Idempotent-Replayed: true`` if the method,
   path and body (a SHA-256 fingerprint) are the same, else 422. A repeat
   while the first is still running in this process: 409 at once (the only
   "in progress": nothing of a running request is committed).
3. An answer a client may retry for real (429, 5xx; for GraphQL, an answer
   with such an error, or a query) is not stored, and nothing the request
   changed is kept: it is rolled back, and the retry runs afresh. A
   database that fails meanwhile answers as it does for an unkeyed request
   (REST 503, GraphQL ``SERVICE_UNAVAILABLE``); nothing is stored.

Keys live ``IDEMPOTENCY_TTL`` (24 h); an expired row is taken over by the next
request with its key, and the pruner deletes older ones in small batches
(app/db/maintenance.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.context import REQUEST_DATABASE, error_bytes, replay
from app.domain.ports import Database, Retry, UnitOfWork
from app.domain.records import KeyedAnswer
from app.errors import KEY_IN_PROGRESS, DomainError
from app.metrics import IDEMPOTENT_REPLAYS

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(rb"^[\x21-\x7e]{1,255}$")
BAD_KEY = "Idempotency-Key must be 1 to 255 visible ASCII characters"
MISMATCH = (
    "Idempotency-Key was already used for a different request "
    "(another method, path or body); use a new key for a new request"
)
# The answer headers a replay repeats; the pipeline adds its own (request id,
# rate limits, CORS) to every answer, replays included.
KEPT_HEADERS = frozenset({b"content-type", b"location", b"allow"})
# GraphQL answers are 200 even when the request failed for a reason worth a retry.
RETRYABLE_CODES = frozenset({"SERVICE_UNAVAILABLE", "RATE_LIMITED", "INTERNAL_SERVER_ERROR"})

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class Idempotency:
    def __init__(
        self, database: Database, ttl: timedelta, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.database = database
        self.ttl = ttl
        self.clock = clock or (lambda: datetime.now(UTC))
        self.running: set[tuple[str, str]] = set()  # (user, key) in this process

    @staticmethod
    def valid(key: bytes) -> bool:
        return KEY_PATTERN.match(key) is not None

    async def handle(
        self,
        app: App,
        scope: dict[str, Any],
        receive: Receive,
        body: bytes,
        send: Send,
        *,
        user_id: str,
        key: str,
        graphql: bool,
    ) -> None:
        """Answer the request once per key: ``body`` was read already (from
        ``receive``, which is handed on for what comes after it)."""
        method, path = scope["method"], scope["path"]
        now = self.clock()
        record = KeyedAnswer(
            user_id=user_id,
            key=key,
            method=method,
            path=path,
            fingerprint=_fingerprint(method, path, scope.get("query_string", b""), body),
            created_at=now,
        )
        mine = (user_id, key)
        if mine in self.running:
            await _send(send, 409, error_bytes(409, KEY_IN_PROGRESS))
            return
        self.running.add(mine)
        try:
            answer = await self._run(app, scope, receive, body, record, graphql)
        except DomainError as exc:  # the database failed: nothing was committed
            answer = _failed(exc, graphql)
        finally:
            self.running.discard(mine)
        if answer is None:  # the key is another request's
            answer = await self._again(record, graphql)
        await _send(send, answer.status, answer.body, answer.headers)

    async def _run(
        self,
        app: App,
        scope: dict[str, Any],
        receive: Receive,
        body: bytes,
        record: KeyedAnswer,
        graphql: bool,
    ) -> Captured | None:
        """The request in its transaction; its answer, or None when the key
        turned out to be taken (nothing was committed). An optimistic
        transaction that cannot commit what the request did (``Retry``) runs
        it once more in one that is not."""
        before = dict(scope.get("state") or {})
        for optimistic in (True, False):
            tx = self.database.transaction(optimistic=optimistic)
            try:
                state = {**before, REQUEST_DATABASE: tx}
                captured = Captured()
                await app({**scope, "state": state}, replay(body, receive), captured.send)
                scope.setdefault("state", {}).update(state)  # what the faces noted (the log)
                if tx.retry:
                    continue
                if not self._worth_storing(captured, graphql, state):
                    # Rolled back (closing the transaction): the retry runs afresh.
                    # A key stored before is still answered as such.
                    found = await self._find(record)
                    return captured if found is None else None
                stored = msgspec.structs.replace(
                    record,
                    status=captured.status,
                    headers=[
                        [k.decode("latin-1"), v.decode("latin-1")]
                        for k, v in captured.headers
                        if k.lower() in KEPT_HEADERS
                    ],
                    body=captured.body,
                )
                expired_before = record.created_at - self.ttl
                committed = await tx.commit(stored, expired_before=expired_before)
                return captured if committed else None
            except Retry:
                if not optimistic:
                    raise
            finally:
                await tx.close()
        raise Retry()  # (a transaction that is not optimistic never asks for another)

    async def _again(self, record: KeyedAnswer, graphql: bool) -> Captured:
        """The answer to a key another request holds."""
        try:
            found = await self._find(record)
        except DomainError as exc:
            return _failed(exc, graphql)
        out = Captured()
        if found is None:  # committed and expired since, or pruned: rare
            out.set(409, error_bytes(409, KEY_IN_PROGRESS))
        elif (found.method, found.path, found.fingerprint) != (
            record.method,
            record.path,
            record.fingerprint,
        ):
            out.set(422, error_bytes(422, MISMATCH))
        else:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in found.headers or ()]
            headers.append((b"idempotent-replayed", b"true"))
            out.set(found.status or 409, found.body or b"", headers)
            IDEMPOTENT_REPLAYS.inc()
        return out

    async def _find(self, record: KeyedAnswer) -> KeyedAnswer | None:
        async def work(uow: UnitOfWork) -> KeyedAnswer | None:
            return await uow.idempotency.find(record.user_id, record.key)

        found = await self.database.read(work)
        if found is None or found.created_at < record.created_at - self.ttl:
            return None
        return found

    def _worth_storing(self, answer: Captured, graphql: bool, state: dict[str, Any]) -> bool:
        """Whether an answer is kept: not when the client may retry it."""
        if answer.status == 429 or answer.status >= 500:
            return False
        if not graphql:
            return True
        if state.get("operation_type") != "mutation":
            return False  # a query (or a document that never ran): nothing to guard
        try:
            errors = msgspec.json.decode(answer.body).get("errors") or []
        except (msgspec.DecodeError, AttributeError):
            return False
        return not any(
            (e.get("extensions") or {}).get("code") in RETRYABLE_CODES
            for e in errors
            if isinstance(e, dict)
        )


def _failed(exc: DomainError, graphql: bool) -> Captured:
    """A database failure, answered as an unkeyed request's would be."""
    out = Captured()
    message = exc.message if isinstance(exc.message, str) else "; ".join(exc.message)
    if graphql:
        error = {
            "message": message,
            "extensions": {"code": exc.code, "statusCode": exc.status_code},
        }
        out.set(200, msgspec.json.encode({"data": None, "errors": [error]}))
    else:
        out.set(exc.status_code, error_bytes(exc.status_code, exc.message))
    return out


class Captured:
    """The application's answer, kept whole to be stored before it is sent."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        self.chunks: list[bytes] = []

    def set(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.status = status
        self.chunks = [body]
        if headers is not None:
            self.headers = headers

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"
            ]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def _fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    # Each part after its length (8 bytes, big-endian), hashed in one call.
    parts = (method.encode(), path.encode(), query, body)
    return hashlib.sha256(b"".join(len(p).to_bytes(8, "big") + p for p in parts)).hexdigest()


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    if headers is None:
        headers = [(b"content-type", b"application/json")]
    headers = [*headers, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
