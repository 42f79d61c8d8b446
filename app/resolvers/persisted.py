"""Persisted queries: Apollo's automatic persisted queries, and trusted documents.

Automatic persisted queries (APQ): a client sends ``extensions.persistedQuery =
{"version": 1, "sha256Hash": H}`` without the ``query``; a known hash runs the
stored document, an unknown one answers ``PersistedQueryNotFound``
(``PERSISTED_QUERY_NOT_FOUND``), and the client sends hash and query together,
which stores the document once its SHA-256 is checked. The store is a bounded
LRU in memory, shared through Redis when ``GRAPHQL_APQ_STORAGE`` (by default
``RATE_LIMIT_STORAGE``) points at one, with the LRU in front of it.

Trusted documents (``GRAPHQL_TRUSTED_DOCUMENTS``: a JSON manifest
``{"<sha256 hex>": "<document>"}`` as GraphQL Code Generator and the Relay
compiler write it): only those documents run, by hash or by identical text;
anything else is refused with ``PERSISTED_QUERY_NOT_ALLOWED``. Introspection
follows ``GRAPHQL_INTROSPECTION``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("app.graphql.persisted")

_HASH = re.compile(r"^[0-9a-f]{64}$")
NOT_FOUND = "PersistedQueryNotFound"
NOT_ALLOWED = "This document is not one of the trusted documents"


class PersistedError(Exception):
    """The persisted-query protocol's own answers (not errors of the document)."""

    def __init__(self, message: str, code: str, *, request_error: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        # True: the request itself is malformed (a 4xx whatever the media type).
        self.request_error = request_error


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Store(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, document: str) -> None: ...


class MemoryStore:
    """A bounded LRU of documents (by count; each at most MAX_QUERY_CHARS)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._docs: OrderedDict[str, str] = OrderedDict()

    async def get(self, key: str) -> str | None:
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
        return doc

    async def put(self, key: str, document: str) -> None:
        self._docs[key] = document
        self._docs.move_to_end(key)
        while len(self._docs) > self.size:
            self._docs.popitem(last=False)


class RedisStore:
    """Documents shared by every process through Redis (a TTL bounds them), with
    a local LRU in front. A failing Redis is a miss, never an error: the client
    then sends the whole document again."""

    TTL_SECONDS = 7 * 24 * 3600
    PREFIX = "interview-api:apq:"

    def __init__(self, url: str, local: MemoryStore) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.local = local
        self._logged = -1e9

    async def get(self, key: str) -> str | None:
        doc = await self.local.get(key)
        if doc is not None:
            return doc
        try:
            raw = await self.client.get(self.PREFIX + key)
        except Exception as exc:
            self._failed(exc)
            return None
        if raw is None:
            return None
        doc = raw.decode() if isinstance(raw, bytes) else str(raw)
        await self.local.put(key, doc)
        return doc

    async def put(self, key: str, document: str) -> None:
        await self.local.put(key, document)
        try:
            await self.client.set(self.PREFIX + key, document, ex=self.TTL_SECONDS)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged > 10:
            self._logged = now
            log.warning("persisted-query store (Redis) failed; serving from memory: %r", exc)


def load_manifest(path: str) -> dict[str, str]:
    """A trusted-documents manifest, every hash checked against its document."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a manifest is a JSON object of sha256 -> document")
    for key, doc in data.items():
        if not isinstance(doc, str) or sha256(doc) != key.lower():
            raise ValueError(f"{path}: {key!r} is not the SHA-256 of its document")
    return {k.lower(): v for k, v in data.items()}


class PersistedQueries:
    def __init__(
        self,
        store: Store,
        trusted: dict[str, str] | None = None,
        *,
        max_chars: int,
    ) -> None:
        self.store = store
        self.trusted = trusted
        self.trusted_texts = frozenset(trusted.values()) if trusted else frozenset()
        self.max_chars = max_chars

    async def resolve(
        self, query: str | None, extensions: dict[str, Any] | None
    ) -> tuple[str | None, bool]:
        """The document to run and whether it came from a trusted manifest or a
        hash; raises :class:`PersistedError` for the protocol's answers."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query, self.trusted is not None and query in self.trusted_texts
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedError(
                "Unsupported persistedQuery: only version 1 is", "BAD_REQUEST", request_error=True
            )
        key = persisted.get("sha256Hash")
        if not isinstance(key, str) or not _HASH.match(key.lower()):
            raise PersistedError(
                "persistedQuery.sha256Hash must be a SHA-256 in hex",
                "BAD_REQUEST",
                request_error=True,
            )
        key = key.lower()
        if query is not None:
            if sha256(query) != key:
                raise PersistedError(
                    "provided sha does not match query", "BAD_REQUEST", request_error=True
                )
            if self.trusted is not None:
                return query, key in self.trusted
            if len(query) <= self.max_chars:
                await self.store.put(key, query)
            return query, False
        if self.trusted is not None:
            doc = self.trusted.get(key)
            if doc is None:
                raise PersistedError(NOT_ALLOWED, "PERSISTED_QUERY_NOT_ALLOWED")
            return doc, True
        doc = await self.store.get(key)
        if doc is None:
            raise PersistedError(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")
        return doc, False
