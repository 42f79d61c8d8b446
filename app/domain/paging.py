"""Keyset pagination: page requests, opaque cursors the server can verify, filters.

A cursor names a position in one list (``sessions`` of a user, or the
``interactions`` of a session): the sort key of a row, the list it belongs to
and who may use it, signed with an HMAC. A tampered cursor, one of another
list or another user, is refused (400) instead of answering a wrong page. The
database pages by ``(sort key, id)`` comparisons (never OFFSET), so a page
costs the same at the millionth row as at the first, and rows inserted while
a client pages neither shift nor repeat what it sees.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar

from app.domain.records import QuestionType, SessionStatus
from app.errors import BadRequest

T = TypeVar("T")

DEFAULT_PAGE = 20
MAX_PAGE = 100
BAD_CURSOR = "Invalid cursor: it is not one this list gave you"
FIRST_AND_LAST = "Use first (with after) or last (with before), not both"
SEARCH_MAX = 200


WINDOW_ORDER_MESSAGE = "startDate must not be after endDate"


def window(
    start: date | None, end: date | None, names: tuple[str, str] = ("startDate", "endDate")
) -> tuple[datetime | None, datetime | None]:
    """Both days inclusive: [start 00:00Z, end+1 00:00Z)."""
    if start is not None and end is not None and start > end:
        raise BadRequest(
            WINDOW_ORDER_MESSAGE
            if names == ("startDate", "endDate")
            else f"{names[0]} must not be after {names[1]}"
        )
    lo = None if start is None else datetime.combine(start, time.min, UTC)
    # The last representable day has no "next day": it bounds nothing.
    hi = (
        None
        if end is None or end == date.max
        else datetime.combine(end + timedelta(days=1), time.min, UTC)
    )
    return lo, hi


def page_size_message(name: str, maximum: int = MAX_PAGE) -> str:
    return f"{name}: must be an integer between 1 and {maximum}"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a row sorts: its sort key, then its id."""

    at: datetime
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PageRequest:
    """``size`` rows after (forward) or before (backward) a position."""

    size: int
    after: Position | None = None
    before: Position | None = None
    backward: bool = False


@dataclass(frozen=True, slots=True)
class SessionFilter:
    status: tuple[SessionStatus, ...] = ()
    created_from: datetime | None = None  # inclusive, UTC
    created_to: datetime | None = None  # exclusive, UTC (the day after the last)
    search: str | None = None  # lower case; matched as a substring
    interview_type: QuestionType | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Rows in list order, each with its cursor, and what lies beyond."""

    items: list[T]
    cursors: Sequence[str]
    has_next: bool
    has_previous: bool
    # Filled on demand by the face (GraphQL totalCount): None until asked.
    total: int | None = field(default=None)

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


class Cursors:
    """Signs and checks cursors. ``scope`` binds a cursor to its list and its
    user (or session); the signature makes any change detectable."""

    VERSION = b"1"

    def __init__(self, secret: bytes) -> None:
        key = hashlib.sha256(b"interview-api cursors\x00" + secret).digest()
        # The keyed state once; each signature copies it (a third cheaper than
        # hmac.new, which pads the key again every time).
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, payload: bytes) -> bytes:
        h = self._hmac.copy()
        h.update(payload)
        return h.digest()[:12]

    def encode(self, scope: str, position: Position) -> str:
        micros = _micros(position.at)
        payload = b"|".join(
            (self.VERSION, _scope_hash(scope), str(micros).encode(), position.id.hex.encode())
        )
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def encode_number(self, scope: str, number: int) -> str:
        """A cursor for a position that is one number (an event's ``seq``)."""
        payload = b"|".join((b"n", _scope_hash(scope), str(number).encode()))
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def decode_number(self, scope: str, cursor: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, mac = raw[:-12], raw[-12:]
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise ValueError("signature")
            kind, scoped, number = payload.split(b"|")
            if kind != b"n" or not hmac.compare_digest(scoped, _scope_hash(scope)):
                raise ValueError("scope")
            return int(number)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(BAD_CURSOR) from None

    def decode(self, scope: str, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, mac = raw[:-12], raw[-12:]
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise ValueError("signature")
            version, scoped, micros, hex_id = payload.split(b"|")
            if version != self.VERSION or not hmac.compare_digest(scoped, _scope_hash(scope)):
                raise ValueError("scope")
            return Position(_from_micros(int(micros)), uuid.UUID(hex_id.decode()))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(BAD_CURSOR) from None


@functools.lru_cache(maxsize=1024)
def _scope_hash(scope: str) -> bytes:
    return hashlib.sha256(scope.encode()).hexdigest()[:16].encode()


class _LazyCursors(Sequence[str]):
    """A page's cursors, signed only when asked for: a REST page needs only
    the last one (for ``Link: rel="next"``), a connection one per edge."""

    __slots__ = ("_cursors", "_done", "_positions", "_scope")

    def __init__(self, cursors: Cursors, scope: str, positions: list[Position]) -> None:
        self._cursors = cursors
        self._scope = scope
        self._positions = positions
        self._done: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        if isinstance(index, slice):  # pragma: no cover - not used
            raise TypeError("cursor slices are not supported")
        i = range(len(self._positions))[index]  # IndexError and negatives as a list
        cursor = self._done.get(i)
        if cursor is None:
            cursor = self._done[i] = self._cursors.encode(self._scope, self._positions[i])
        return cursor


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    delta = at.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def page_request(
    cursors: Cursors,
    scope: str,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    first_name: str = "first",
    maximum: int = MAX_PAGE,
    default: int = DEFAULT_PAGE,
) -> PageRequest:
    """The page a client asked for, checked: sizes 1..100 (default 20), not
    ``first`` and ``last`` together, cursors of this list only."""
    if first is not None and last is not None:
        raise BadRequest(FIRST_AND_LAST)
    for name, value in ((first_name, first), ("last", last)):
        if value is not None and not 1 <= value <= maximum:
            raise BadRequest(page_size_message(name, maximum))
    after_pos = cursors.decode(scope, after) if after is not None else None
    before_pos = cursors.decode(scope, before) if before is not None else None
    if last is not None or (before is not None and first is None):
        return PageRequest(last or default, after_pos, before_pos, backward=True)
    return PageRequest(first or default, after_pos, before_pos)


def assemble(
    rows: list[T],
    request: PageRequest,
    cursors: Cursors,
    scope: str,
    position: Callable[[T], Position],
) -> Page[T]:
    """A page from the ``size + 1`` rows the database returned in fetch order."""
    more = len(rows) > request.size
    rows = rows[: request.size]
    if request.backward:
        rows.reverse()
        has_next, has_previous = request.before is not None, more
    else:
        has_next, has_previous = more, request.after is not None
    return Page(
        items=rows,
        cursors=_LazyCursors(cursors, scope, [position(r) for r in rows]),
        has_next=has_next,
        has_previous=has_previous,
    )


def search_term(text: str | None) -> str | None:
    """The search as the database matches it: trimmed, lower case, or None."""
    if text is None:
        return None
    term = text.strip().lower()
    if len(term) > SEARCH_MAX:
        raise BadRequest(f"search: at most {SEARCH_MAX} characters")
    return term or None


def session_filter(
    *,
    status: list[SessionStatus] | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    search: str | None = None,
    interview_type: QuestionType | None = None,
) -> SessionFilter:
    """A filter from the faces' values; days are UTC, both inclusive."""
    lo, hi = window(created_from, created_to, ("createdFrom", "createdTo"))
    return SessionFilter(
        status=tuple(dict.fromkeys(status or ())),
        created_from=lo,
        created_to=hi,
        search=search_term(search),
        interview_type=interview_type,
    )
