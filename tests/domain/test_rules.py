"""Pure rules: ownership, the list limit, the analytics window."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from app.domain.base import owned
from app.domain.paging import window
from app.domain.records import JobContext, Principal, Session, SessionSettings, SessionStatus
from app.domain.sessions import check_limit
from app.errors import BadRequest, Forbidden, NotFound


def session_of(user_id: str) -> Session:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return Session(
        id=uuid.uuid4(),
        user_id=user_id,
        job_context=JobContext(title="T", company="C"),
        status=SessionStatus.ACTIVE,
        settings=SessionSettings(),
        started_at=now,
        ended_at=None,
        created_at=now,
    )


# ---------------------------------------------------------------- ownership


def test_owner_gets_the_session():
    s = session_of("alice")
    assert owned(Principal("alice"), s) is s


def test_someone_elses_session_is_forbidden():
    with pytest.raises(Forbidden) as info:
        owned(Principal("bob"), session_of("alice"))
    assert (info.value.status_code, info.value.message) == (403, "Access denied to this session")


def test_user_ids_are_compared_exactly():
    for almost in ("Alice", "alice ", " alice", "alic"):
        with pytest.raises(Forbidden):
            owned(Principal(almost), session_of("alice"))


def test_a_missing_session_is_not_found():
    with pytest.raises(NotFound) as info:
        owned(Principal("alice"), None)
    assert (info.value.status_code, info.value.message) == (404, "Interview session not found")


# ---------------------------------------------------------------- list limit


def test_no_limit_means_up_to_1000():
    assert check_limit(None) == 1000


@pytest.mark.parametrize("limit", [1, 10, 999, 1000])
def test_limits_from_1_to_1000_are_kept(limit):
    assert check_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, 1001, 10**9])
def test_limits_outside_1_to_1000_are_refused_naming_limit(limit):
    with pytest.raises(BadRequest) as info:
        check_limit(limit)
    assert isinstance(info.value.message, str)
    assert info.value.message.startswith("limit: ")
    assert "1000" in info.value.message


# ---------------------------------------------------------------- analytics window


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_covers_whole_utc_days_both_ends_inclusive():
    lo, hi = window(date(2024, 1, 1), date(2024, 1, 31))
    assert (lo, hi) == (utc(2024, 1, 1), utc(2024, 2, 1))
    assert lo.tzinfo is UTC and hi.tzinfo is UTC


def test_a_one_day_window():
    assert window(date(2024, 2, 29), date(2024, 2, 29)) == (utc(2024, 2, 29), utc(2024, 3, 1))


def test_open_ended_windows():
    assert window(None, None) == (None, None)
    assert window(date(2024, 12, 31), None) == (utc(2024, 12, 31), None)
    assert window(None, date(2024, 12, 31)) == (None, utc(2025, 1, 1))


def test_start_after_end_is_refused_naming_both():
    with pytest.raises(BadRequest) as info:
        window(date(2024, 1, 2), date(2024, 1, 1))
    message = info.value.message
    assert isinstance(message, str)
    assert "startDate" in message and "endDate" in message
