"""Keyset paging as pure rules: page requests, signed cursors, pages, filters.

What a client of either face sees: the page sizes it may ask for (and the
message naming the argument when it may not), cursors that round-trip and are
refused (400) when altered or replayed on another list, and ``hasNext`` /
``hasPrevious`` in both directions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.domain.paging import (
    BAD_CURSOR,
    DEFAULT_PAGE,
    FIRST_AND_LAST,
    MAX_PAGE,
    Cursors,
    Page,
    PageRequest,
    Position,
    assemble,
    page_request,
    page_size_message,
    search_term,
    session_filter,
    window,
)
from app.domain.records import QuestionType, SessionStatus
from app.errors import BadRequest

CURSORS = Cursors(b"secret")
SCOPE = "sessions:alice"
AT = datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)


def refused(call) -> str:
    with pytest.raises(BadRequest) as info:
        call()
    assert info.value.status_code == 400
    message = info.value.message
    assert isinstance(message, str)
    return message


def position(n: int) -> Position:
    return Position(AT + timedelta(minutes=n), uuid.UUID(int=n))


# ---------------------------------------------------------------- page requests


def test_without_sizes_a_page_is_the_default_twenty_forward():
    assert DEFAULT_PAGE == 20
    assert page_request(CURSORS, SCOPE) == PageRequest(20)


def test_first_and_last_are_kept_as_asked():
    assert page_request(CURSORS, SCOPE, first=1) == PageRequest(1)
    assert page_request(CURSORS, SCOPE, first=MAX_PAGE) == PageRequest(100)
    assert page_request(CURSORS, SCOPE, last=1) == PageRequest(1, backward=True)
    assert page_request(CURSORS, SCOPE, last=100) == PageRequest(100, backward=True)


@pytest.mark.parametrize("size", [0, -1, 101, 10**6])
def test_sizes_outside_1_to_100_are_refused_naming_the_argument(size):
    assert refused(lambda: page_request(CURSORS, SCOPE, first=size)) == (
        "first: must be an integer between 1 and 100"
    )
    assert refused(lambda: page_request(CURSORS, SCOPE, last=size)) == (
        "last: must be an integer between 1 and 100"
    )


def test_the_first_argument_can_be_renamed_and_the_maximum_raised():
    # The REST face: ?limit=, up to 1000, its default being its maximum.
    assert page_request(
        CURSORS, SCOPE, first=1000, first_name="limit", maximum=1000
    ) == PageRequest(1000)
    assert page_request(CURSORS, SCOPE, first_name="limit", maximum=1000, default=1000) == (
        PageRequest(1000)
    )
    assert refused(
        lambda: page_request(CURSORS, SCOPE, first=1001, first_name="limit", maximum=1000)
    ) == ("limit: must be an integer between 1 and 1000")
    assert page_size_message("limit", 1000) == "limit: must be an integer between 1 and 1000"
    assert page_size_message("first") == "first: must be an integer between 1 and 100"


def test_first_and_last_together_are_refused():
    assert FIRST_AND_LAST == "Use first (with after) or last (with before), not both"
    assert refused(lambda: page_request(CURSORS, SCOPE, first=5, last=5)) == FIRST_AND_LAST


def test_after_reads_forward_from_the_cursor_position():
    after = CURSORS.encode(SCOPE, position(3))
    assert page_request(CURSORS, SCOPE, first=5, after=after) == PageRequest(5, position(3))
    assert page_request(CURSORS, SCOPE, after=after) == PageRequest(20, position(3))


def test_before_without_a_size_pages_backward_by_the_default():
    before = CURSORS.encode(SCOPE, position(7))
    assert page_request(CURSORS, SCOPE, before=before) == PageRequest(
        20, None, position(7), backward=True
    )
    assert page_request(CURSORS, SCOPE, last=3, before=before) == PageRequest(
        3, None, position(7), backward=True
    )


def test_before_with_first_still_reads_forward_up_to_the_cursor():
    after = CURSORS.encode(SCOPE, position(1))
    before = CURSORS.encode(SCOPE, position(9))
    assert page_request(CURSORS, SCOPE, first=4, before=before) == PageRequest(4, None, position(9))
    assert page_request(CURSORS, SCOPE, first=4, after=after, before=before) == PageRequest(
        4, position(1), position(9)
    )
    assert page_request(CURSORS, SCOPE, last=4, after=after, before=before) == PageRequest(
        4, position(1), position(9), backward=True
    )


def test_a_cursor_of_another_list_is_refused():
    theirs = CURSORS.encode("sessions:bob", position(1))
    assert refused(lambda: page_request(CURSORS, SCOPE, after=theirs)) == BAD_CURSOR
    assert refused(lambda: page_request(CURSORS, SCOPE, before=theirs)) == BAD_CURSOR
    assert BAD_CURSOR == "Invalid cursor: it is not one this list gave you"


# ---------------------------------------------------------------- cursors


@pytest.mark.parametrize(
    "at",
    [
        AT,
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1900, 2, 28, 1, 2, 3, 4, tzinfo=UTC),
        datetime(2999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        # Cursors of every length class (the base64 padding a client drops).
        datetime(1970, 1, 1, 0, 0, 0, 100, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 0, 100000, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(1653, 2, 10, 6, 13, 20, tzinfo=UTC),
    ],
)
def test_a_position_cursor_round_trips_to_the_microsecond(at):
    for n in (0, 1, 2**64, 2**128 - 1):
        where = Position(at, uuid.UUID(int=n))
        cursor = CURSORS.encode(SCOPE, where)
        assert "=" not in cursor  # URL-safe, unpadded
        back = CURSORS.decode(SCOPE, cursor)
        assert back == where
        assert back.at.tzinfo is not None and back.at.utcoffset() == timedelta(0)


def test_a_position_in_another_time_zone_is_the_same_instant():
    tokyo = timezone(timedelta(hours=9))
    at = datetime(2024, 1, 1, 19, 0, 0, 5, tzinfo=tokyo)
    back = CURSORS.decode(SCOPE, CURSORS.encode(SCOPE, Position(at, uuid.UUID(int=5))))
    assert back.at == datetime(2024, 1, 1, 10, 0, 0, 5, tzinfo=UTC)
    assert CURSORS.encode(SCOPE, Position(at, uuid.UUID(int=5))) == CURSORS.encode(
        SCOPE, Position(datetime(2024, 1, 1, 10, 0, 0, 5, tzinfo=UTC), uuid.UUID(int=5))
    )


def test_cursors_of_different_positions_differ():
    seen = {
        CURSORS.encode(SCOPE, position(1)),
        CURSORS.encode(SCOPE, Position(position(1).at, uuid.UUID(int=2))),
        CURSORS.encode(SCOPE, Position(position(2).at, uuid.UUID(int=1))),
        CURSORS.encode("sessions:bob", position(1)),
    }
    assert len(seen) == 4


def test_cursors_are_stable_across_releases():
    """A client keeps its cursor across a deploy: the same secret must keep
    signing the same bytes (these were issued by this format, version 1)."""
    where = Position(datetime(2024, 1, 1, 10, 0, tzinfo=UTC), uuid.UUID(int=1))
    assert Cursors(b"").encode("sessions:alice", where) == (
        "MXwyOTgyZGM3ZjNmYjc2Nzc3fDE3MDQxMDMyMDAwMDAwMDB8MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMD"
        "FpwpnLbhL_j0Axr7w"
    )
    assert Cursors(b"secret").encode_number("events:alice", 42) == (
        "bnxhNzljMmIyYzJiYjUzY2FmfDQyDQVoTwA6Dazrf9WT"
    )


def test_a_cursor_signed_with_another_secret_is_refused():
    theirs = Cursors(b"other").encode(SCOPE, position(1))
    assert refused(lambda: CURSORS.decode(SCOPE, theirs)) == BAD_CURSOR
    number = Cursors(b"other").encode_number("events:alice", 5)
    assert refused(lambda: CURSORS.decode_number("events:alice", number)) == BAD_CURSOR


def test_the_same_secret_in_another_process_reads_the_cursor():
    cursor = Cursors(b"secret").encode(SCOPE, position(4))
    assert Cursors(b"secret").decode(SCOPE, cursor) == position(4)


def altered(cursor: str) -> list[str]:
    """Every way a client might damage a cursor."""
    flipped = [
        cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1 :]
        for i in range(0, len(cursor), 3)
    ]
    return [
        *flipped,
        cursor[:-1],
        cursor[1:],
        cursor + "A",
        "",
        "A",
        "!!!!",
        "é" * 20,
        cursor.upper(),
    ]


def test_an_altered_position_cursor_is_refused():
    cursor = CURSORS.encode(SCOPE, position(3))
    for bad in altered(cursor):
        if bad != cursor:
            assert refused(lambda bad=bad: CURSORS.decode(SCOPE, bad)) == BAD_CURSOR, bad


def test_an_altered_event_cursor_is_refused():
    cursor = CURSORS.encode_number("events:alice", 12345)
    for bad in altered(cursor):
        if bad != cursor:
            assert (
                refused(lambda bad=bad: CURSORS.decode_number("events:alice", bad)) == BAD_CURSOR
            ), bad


@pytest.mark.parametrize(
    "number", [0, 1, 9, 10, 91, 99, 100, 12345, 10**5, 10**6, 10**7, 2**63 - 1]
)
def test_an_event_cursor_round_trips(number):
    cursor = CURSORS.encode_number("events:alice", number)
    assert "=" not in cursor
    assert CURSORS.decode_number("events:alice", cursor) == number


def test_cursors_of_one_kind_are_refused_as_the_other():
    number = CURSORS.encode_number(SCOPE, 7)
    assert refused(lambda: CURSORS.decode(SCOPE, number)) == BAD_CURSOR
    where = CURSORS.encode(SCOPE, position(7))
    assert refused(lambda: CURSORS.decode_number(SCOPE, where)) == BAD_CURSOR


def test_an_event_cursor_of_another_user_is_refused():
    bobs = CURSORS.encode_number("events:bob", 3)
    assert refused(lambda: CURSORS.decode_number("events:alice", bobs)) == BAD_CURSOR
    assert CURSORS.encode_number("events:bob", 3) != CURSORS.encode_number("events:alice", 3)


# ---------------------------------------------------------------- assembling a page


def rows(*ns: int) -> list[Position]:
    return [position(n) for n in ns]


def assembled(found: list[Position], req: PageRequest) -> Page[Position]:
    return assemble(found, req, CURSORS, SCOPE, lambda p: p)


def test_a_forward_page_keeps_size_rows_and_says_whether_more_follow():
    page = assembled(rows(1, 2, 3, 4), PageRequest(3))
    assert page.items == rows(1, 2, 3)
    assert (page.has_next, page.has_previous) == (True, False)
    assert page.total is None

    last = assembled(rows(4, 5, 6), PageRequest(3, after=position(3)))
    assert last.items == rows(4, 5, 6)
    assert (last.has_next, last.has_previous) == (False, True)

    exact = assembled(rows(1, 2, 3), PageRequest(3))
    assert (exact.items, exact.has_next, exact.has_previous) == (rows(1, 2, 3), False, False)


def test_a_backward_page_is_returned_in_list_order():
    # Fetched nearest-first (backward), then shown in list order.
    page = assembled(rows(9, 8, 7, 6), PageRequest(3, before=position(10), backward=True))
    assert page.items == rows(7, 8, 9)
    assert (page.has_next, page.has_previous) == (True, True)

    first = assembled(rows(3, 2, 1), PageRequest(3, backward=True))
    assert first.items == rows(1, 2, 3)
    assert (first.has_next, first.has_previous) == (False, False)


def test_each_row_has_the_cursor_of_its_position():
    page = assembled(rows(1, 2, 3, 4), PageRequest(3))
    assert len(page.cursors) == 3
    assert [CURSORS.decode(SCOPE, c) for c in page.cursors] == rows(1, 2, 3)
    assert page.start_cursor == page.cursors[0] == CURSORS.encode(SCOPE, position(1))
    assert page.end_cursor == page.cursors[-1] == CURSORS.encode(SCOPE, position(3))
    assert page.cursors[-3] == page.cursors[0]
    assert page.cursors[1] == page.cursors[1] == CURSORS.encode(SCOPE, position(2))
    assert list(page.cursors) == [CURSORS.encode(SCOPE, p) for p in rows(1, 2, 3)]
    with pytest.raises(IndexError):
        page.cursors[3]
    with pytest.raises(IndexError):
        page.cursors[-4]


def test_cursor_slices_are_refused():
    page = assembled(rows(1, 2), PageRequest(3))
    with pytest.raises(TypeError, match=r"^cursor slices are not supported$"):
        page.cursors[0:1]  # type: ignore[index]


def test_an_empty_page_has_no_cursors():
    page = assembled([], PageRequest(3))
    assert (page.items, len(page.cursors), page.has_next, page.has_previous) == (
        [],
        0,
        False,
        False,
    )
    assert page.start_cursor is None and page.end_cursor is None


# ---------------------------------------------------------------- filters


def test_search_is_trimmed_and_lower_case():
    assert search_term(None) is None
    assert search_term("  Senior ENGINEER ") == "senior engineer"
    assert search_term("   ") is None
    assert search_term("") is None
    assert search_term("x" * 200) == "x" * 200
    assert search_term(" " + "X" * 200 + " ") == "x" * 200


def test_a_search_longer_than_200_characters_is_refused():
    assert refused(lambda: search_term("x" * 201)) == "search: at most 200 characters"


def test_a_session_filter_from_the_faces_values():
    f = session_filter(
        status=[SessionStatus.PAUSED, SessionStatus.ACTIVE, SessionStatus.PAUSED],
        created_from=date(2024, 1, 1),
        created_to=date(2024, 1, 31),
        search=" Corp ",
        interview_type=QuestionType.TECHNICAL,
    )
    assert f.status == (SessionStatus.PAUSED, SessionStatus.ACTIVE)
    assert f.created_from == datetime(2024, 1, 1, tzinfo=UTC)
    assert f.created_to == datetime(2024, 2, 1, tzinfo=UTC)
    assert f.search == "corp"
    assert f.interview_type is QuestionType.TECHNICAL


def test_an_empty_session_filter_matches_everything():
    f = session_filter()
    assert (f.status, f.created_from, f.created_to, f.search, f.interview_type) == (
        (),
        None,
        None,
        None,
        None,
    )


def test_a_session_filter_refuses_its_window_reversed_naming_its_own_fields():
    assert refused(
        lambda: session_filter(created_from=date(2024, 1, 2), created_to=date(2024, 1, 1))
    ) == ("createdFrom must not be after createdTo")
    assert refused(lambda: session_filter(search="x" * 201)) == "search: at most 200 characters"


def test_the_analytics_window_names_its_own_fields():
    assert refused(lambda: window(date(2024, 1, 2), date(2024, 1, 1))) == (
        "startDate must not be after endDate"
    )
    assert refused(lambda: window(date(2024, 1, 2), date(2024, 1, 1), ("from", "to"))) == (
        "from must not be after to"
    )


def test_the_last_representable_day_bounds_nothing():
    assert window(date(2024, 1, 1), date.max) == (datetime(2024, 1, 1, tzinfo=UTC), None)
    assert window(None, date.max - timedelta(days=1)) == (
        None,
        datetime.combine(date.max, datetime.min.time(), UTC),
    )
