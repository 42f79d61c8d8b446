"""Safe retries: ``Idempotency-Key`` on every write, REST and GraphQL alike.

The pipeline hands a keyed write here (an authenticated ``POST``/``PUT``/
``DELETE`` under ``/interview-sessions``, or a ``POST /graphql`` with the key in
the header or in ``extensions.idempotencyKey``). For the key of that user:

1. A stored answer for the same method, path and body (a SHA-256 fingerprint)
   is replayed byte for byte, with ``Idempotent-Replayed: true``; nothing runs.
   The same key with another method, path or body: 422. A key whose request
   is still running: 409 (in this process at once; across processes once the
   other's transaction has committed).
2. Otherwise the request runs with a :class:`app.context.Claim`. Its first
   write transaction runs the change and stays open until the answer is
   known; then the key, with the answer, is inserted as that transaction's
   last statement and it commits (app/db/engine.py): the key, the change and
   the answer commit together or not at all, in one transaction. A guarded
   write (PostgreSQL) holds back its one statement instead, and writes the
   key with the answer in it; if the rows it read changed meanwhile nothing
   is written and the request runs again with transactions (``Rerun``). The primary
   key makes a racing claim (another process) wait for that transaction, then
   fail: its change is rolled back and it answers as in 1. A request that
   uses the database again after its write commits the change with the key
   first, and stores its answer right after, without waiting for the WAL
   flush on PostgreSQL (``Database.write_one``).
3. An answer that changed nothing is stored too, except 429 and 5xx (and,
   for GraphQL, an answer with such an error), which a client may retry for
   real; GraphQL queries are never stored. A change whose commit fails is
   answered 503 (or 409) and nothing is stored: the retry runs again.

Keys live ``IDEMPOTENCY_TTL`` (24 h); the pruner deletes older ones in small
batches (app/db/maintenance.py). A process that dies between committing a
change and storing its answer (the second form of 2) leaves the key "in
progress" (409) until then.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.context import Claim, Rerun, claim_var, error_bytes, replay
from app.domain.ports import Database, UnitOfWork
from app.domain.records import KeyedAnswer
from app.errors import KEY_IN_PROGRESS, DomainError

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
RETRYABLE_CODES = frozenset({"SERVICE_UNAVAILABLE", "TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR"})

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
        """Answer the request once per key: ``body`` was read already, ``receive``
        hands it to the application again."""
        method, path = scope["method"], scope["path"]
        fingerprint = _fingerprint(method, path, scope.get("query_string", b""), body)
        now = self.clock()
        expired_before = now - self.ttl
        mine = (user_id, key)
        if mine in self.running:
            await _send(send, 409, error_bytes(409, KEY_IN_PROGRESS))
            return
        self.running.add(mine)
        # What the request's state held before the app ran (a run again starts
        # from it: the app keeps its own per-request state there too).
        before = dict(scope.get("state") or {})
        try:
            # No lookup first: a new key (the common case) costs no extra round
            # trip. A key that has a row already shows itself when the write
            # claims it (claim.taken), or when the answer is stored (False), or
            # is looked up for the few answers that are not stored.
            claim = Claim(
                KeyedAnswer(
                    user_id=user_id,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=fingerprint,
                    created_at=now,
                ),
                expired_before,
            )
            answer = await self._run(app, scope, receive, claim)
            while claim.pending is not None:  # the change, with its key and answer
                try:
                    await claim.pending.settle(self._keyed(claim, answer))
                except Rerun:
                    # A guarded change held back found its rows changed: nothing
                    # was written, the answer is void. The request again, with
                    # transactions (a claim that is not optimistic: no second Rerun).
                    claim = Claim(claim.answer, expired_before, optimistic=False)
                    scope = {**scope, "state": dict(before)}
                    answer = await self._run(app, scope, replay(body, receive), claim)
                    continue
                except DomainError as exc:  # nothing committed: a retry runs again
                    await _send(send, exc.status_code, error_bytes(exc.status_code, exc.message))
                    return
                if claim.held:
                    await _send(send, answer.status, answer.body, answer.headers)
                    return
                # Taken: another request committed the key first; this change
                # was rolled back, so the answer made for it is not sent.
                found = await self._find(user_id, key, expired_before)
                if found is not None:
                    await self._answer_again(found, method, path, fingerprint, send)
                else:
                    await _send(send, 409, error_bytes(409, KEY_IN_PROGRESS))
                return
            if claim.held:
                await self._store(claim, answer)
            else:
                if claim.taken:  # the key has a row: this request changed nothing
                    seen = True
                elif self._worth_storing(answer, graphql, scope):
                    seen = not await self._store(claim, answer)
                else:  # not stored (429, 5xx, a GraphQL query): is the key in use?
                    seen = answer.status < 500 and answer.status != 429
                if seen:
                    found = await self._find(user_id, key, expired_before)
                    if found is not None:
                        await self._answer_again(found, method, path, fingerprint, send)
                        return
            await _send(send, answer.status, answer.body, answer.headers)
        finally:
            self.running.discard(mine)

    async def _find(self, user_id: str, key: str, expired_before: datetime) -> KeyedAnswer | None:
        async def work(uow: UnitOfWork) -> KeyedAnswer | None:
            return await uow.idempotency.find(user_id, key)

        found = await self.database.read(work)
        if found is None or found.created_at < expired_before:
            return None
        return found

    async def _answer_again(
        self, found: KeyedAnswer, method: str, path: str, fingerprint: str, send: Send
    ) -> None:
        if (found.method, found.path, found.fingerprint) != (method, path, fingerprint):
            await _send(send, 422, error_bytes(422, MISMATCH))
        elif found.status is None:
            await _send(send, 409, error_bytes(409, KEY_IN_PROGRESS))
        else:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in found.headers or ()]
            headers.append((b"idempotent-replayed", b"true"))
            await _send(send, found.status, found.body or b"", headers)

    async def _run(
        self, app: App, scope: dict[str, Any], receive: Receive, claim: Claim
    ) -> Captured:
        captured = Captured()
        token = claim_var.set(claim)
        try:
            await app(scope, receive, captured.send)
        except BaseException:
            if claim.pending is not None:
                await claim.pending.abandon()
            raise
        finally:
            claim_var.reset(token)
        return captured

    def _worth_storing(self, answer: Captured, graphql: bool, scope: dict[str, Any]) -> bool:
        """An answer that changed nothing: stored unless the client may retry it."""
        if answer.status == 429 or answer.status >= 500:
            return False
        if not graphql:
            return True
        if (scope.get("state") or {}).get("graphql_operation") != "mutation":
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

    @staticmethod
    def _keyed(claim: Claim, answer: Captured) -> KeyedAnswer:
        return msgspec.structs.replace(
            claim.answer,
            status=answer.status,
            headers=[
                [k.decode("latin-1"), v.decode("latin-1")]
                for k, v in answer.headers
                if k.lower() in KEPT_HEADERS
            ],
            body=answer.body,
        )

    async def _store(self, claim: Claim, answer: Captured) -> bool:
        """False when the key turned out to have a row already."""
        stored = self._keyed(claim, answer)

        async def work(uow: UnitOfWork) -> bool:
            return await uow.idempotency.answer(stored, claimed=claim.held)

        try:
            return await self.database.write_one(work)  # one statement: no transaction
        except DomainError as exc:  # the database went away: the answer still goes out
            log.warning("could not store the answer of an Idempotency-Key: %r", exc)
            return True


class Captured:
    """The application's answer, kept whole to be stored before it is sent."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

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
