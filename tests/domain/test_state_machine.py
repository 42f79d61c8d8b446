"""The state machine, as a pure function: every (from, to) pair."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.domain.records import JobContext, Session, SessionSettings, SessionStatus
from app.domain.sessions import transition
from app.errors import BadRequest

ACTIVE, PAUSED, COMPLETED = SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.COMPLETED
CREATED = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2024, 1, 1, 11, 0, tzinfo=UTC)
ENDED = datetime(2024, 1, 1, 10, 30, tzinfo=UTC)


def session(status: SessionStatus) -> Session:
    return Session(
        id=uuid.uuid4(),
        user_id="user-1",
        job_context=JobContext(title="T", company="C"),
        status=status,
        settings=SessionSettings(),
        started_at=CREATED,
        ended_at=ENDED if status is COMPLETED else None,
        created_at=CREATED,
    )


@pytest.mark.parametrize(
    ("start", "target", "ended_at"),
    [
        (ACTIVE, PAUSED, None),
        (PAUSED, ACTIVE, None),
        (ACTIVE, COMPLETED, NOW),
        (PAUSED, COMPLETED, NOW),
    ],
)
def test_allowed_moves(start, target, ended_at):
    before = session(start)
    after = transition(before, target, NOW)
    assert after is not None
    assert after.status is target
    assert after.ended_at == ended_at
    # Nothing else changes, and the input is left as it was.
    assert (after.id, after.user_id, after.job_context, after.settings) == (
        before.id,
        before.user_id,
        before.job_context,
        before.settings,
    )
    assert (after.started_at, after.created_at) == (CREATED, CREATED)
    assert before.status is start


@pytest.mark.parametrize("status", [ACTIVE, PAUSED, COMPLETED])
def test_asking_for_the_current_state_is_a_no_op(status):
    assert transition(session(status), status, NOW) is None


@pytest.mark.parametrize("target", [ACTIVE, PAUSED])
def test_nothing_leaves_completed(target):
    with pytest.raises(BadRequest) as info:
        transition(session(COMPLETED), target, NOW)
    assert info.value.message == f"Invalid status transition from 'completed' to '{target.value}'"
    assert info.value.status_code == 400


def test_completing_twice_keeps_the_first_end():
    done = transition(session(ACTIVE), COMPLETED, ENDED)
    assert done is not None and done.ended_at == ENDED
    assert transition(done, COMPLETED, NOW) is None
