"""Persisted queries: Apollo's automatic persisted queries, and trusted documents.

Automatic persisted queries (APQ): a client sends ``extensions.persistedQuery =
{"version": 1, "sha256Hash": H}`` without the ``query``; a known hash runs the
stored document, an unknown one answers ``PersistedQueryNotFound``
(``PERSISTED_QUERY_NOT_FOUND``), and the client sends hash and query together,
which stores the document once its SHA-256 is checked. The store is a bounded
LRU in memory, shared through Redis when ``GRAPHQL_APQ_STORAGE`` (by default
``RATE_LIMIT_STORAGE``) points at one, with the LRU in front of it.

Persisted documents by id (the GraphQL-over-HTTP proposal): ``documentId``
(``sha256:<hex>`` or a bare hex id) instead of the ``query``, looked up in the
trusted manifest, or else in the APQ store.

Trusted documents (``GRAPHQL_TRUSTED_DOCUMENTS``: a manifest as GraphQL Code
Generator, the Relay compiler or Apollo's manifest generator write it, see
:func:`load_manifest`): only those documents run, by id or by identical text;
anything else is refused with ``PERSISTED_QUERY_NOT_ALLOWED``. Introspection
follows ``GRAPHQL_INTROSPECTION``. Every transport (HTTP and the WebSocket)
resolves documents here (:mod:`app.resolvers.documents`).
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


# A document's id by the length of its hex digest (GraphQL Code Generator's
# client preset writes sha1 unless told sha256; Relay's compiler md5 by default).
_DIGESTS = {32: "md5", 40: "sha1", 64: "sha256"}
_ID = re.compile(r"^(?:(sha256|sha1|md5):)?([0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$")


def _hexdigest(algorithm: str, text: str) -> str:
    return hashlib.new(algorithm, text.encode("utf-8"), usedforsecurity=False).hexdigest()


def document_key(document_id: str) -> str | None:
    """A document id as a manifest key (its hex digest, lower case): ``sha256:<hex>``,
    ``sha1:<hex>``, ``md5:<hex>`` or the bare hex; None when it is none of these
    (or its prefix names another digest than its length)."""
    match = _ID.match(document_id.strip().lower())
    if match is None:
        return None
    algorithm, digest = match.groups()
    if algorithm is not None and _DIGESTS[len(digest)] != algorithm:
        return None
    return str(digest)


def load_manifest(path: str) -> dict[str, str]:
    """A trusted-documents manifest, every id checked against its document.

    Accepted: a JSON object of id -> document, as GraphQL Code Generator's
    client preset (sha1 or sha256 ids) and Relay's compiler (md5, sha1 or
    sha256) write it, ids bare or prefixed (``sha256:``); and Apollo's
    persisted-query manifest (``{"format": "apollo-persisted-query-manifest",
    "operations": [{"id", "body"}, ...]}``, sha256 ids)."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict) and data.get("format") == "apollo-persisted-query-manifest":
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ValueError(f"{path}: an Apollo manifest lists its operations")
        data = {op.get("id"): op.get("body") if isinstance(op, dict) else None for op in operations}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a manifest is a JSON object of document id -> document")
    manifest: dict[str, str] = {}
    for key, doc in data.items():
        digest = document_key(key) if isinstance(key, str) else None
        if digest is None or not isinstance(doc, str):
            raise ValueError(f"{path}: {key!r} is not a document id (a sha256, sha1 or md5 in hex)")
        if _hexdigest(_DIGESTS[len(digest)], doc) != digest:
            algorithm = _DIGESTS[len(digest)].upper().replace("SHA", "SHA-")
            raise ValueError(f"{path}: {key!r} is not the {algorithm} of its document")
        manifest[digest] = doc
    return manifest


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
        self,
        query: str | None,
        extensions: dict[str, Any] | None,
        document_id: str | None = None,
    ) -> tuple[str | None, bool]:
        """The document to run and whether it came from a trusted manifest or a
        hash; raises :class:`PersistedError` for the protocol's answers."""
        if document_id is not None:
            return await self._by_id(query, document_id)
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query, self.trusted is not None and query in self.trusted_texts
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedError(
                "Unsupported persistedQuery: only version 1 is", "BAD_REQUEST", request_error=True
            )
        key = persisted.get("sha256Hash")
        if (
            query is None
            and self.trusted is not None
            and isinstance(key, str)
            and not _HASH.match(key.lower())
            and (manifest_key := document_key(key)) is not None
        ):
            # Trusted documents: the id as the manifest names it, whatever the
            # field is called (GraphQL Code Generator's documented clients put
            # ``__meta__.hash`` here: ``sha256:<hex>``, or a sha1).
            return await self._stored(manifest_key)
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
        return await self._stored(key)

    async def _by_id(self, query: str | None, document_id: str) -> tuple[str, bool]:
        """GraphQL over HTTP's persisted documents: ``documentId`` instead of
        the ``query``, from the trusted manifest or else the APQ store."""
        if query is not None:
            raise PersistedError(
                "Send either documentId or query, not both", "BAD_REQUEST", request_error=True
            )
        key = document_key(document_id)
        if key is None:
            raise PersistedError(
                "documentId must be sha256:<hex> (or a bare sha256, sha1 or md5 in hex)",
                "BAD_REQUEST",
                request_error=True,
            )
        return await self._stored(key)

    async def _stored(self, key: str) -> tuple[str, bool]:
        if self.trusted is not None:
            doc = self.trusted.get(key)
            if doc is None:
                raise PersistedError(NOT_ALLOWED, "PERSISTED_QUERY_NOT_ALLOWED")
            return doc, True
        doc = await self.store.get(key) if len(key) == 64 else None
        if doc is None:
            raise PersistedError(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")
        return doc, False
