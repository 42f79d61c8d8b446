"""Interactions on the fakes: recorded at the service's clock, listed oldest
first, and updated (the user's choice, their feedback) by their owner only."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from app.domain.records import (
    CreateInteraction,
    CreateSession,
    GeneratedResponse,
    JobContext,
    Principal,
    QuestionClassification,
    QuestionType,
    RecordMetrics,
    ResponseStructure,
    SessionStatus,
    UpdateInteraction,
)
from app.errors import BadRequest, Forbidden, NotFound
from tests.conftest import CLOCK_START

ALICE, BOB = Principal("alice"), Principal("bob")


def new_session(title: str = "Engineer") -> CreateSession:
    return CreateSession(job_context=JobContext(title=title, company="Corp"))


def ask(session_id, question: str = "Q?") -> CreateInteraction:
    return CreateInteraction(
        session_id=str(session_id),
        question=question,
        question_classification=QuestionClassification(type=QuestionType.TECHNICAL),
        generated_responses=[
            GeneratedResponse(id="a", content="A", structure=ResponseStructure.STAR),
            GeneratedResponse(id="b", content="B", structure=ResponseStructure.DIRECT),
        ],
    )


async def stored(domain_service, session_id):
    return await domain_service.interactions.list_for_session(ALICE, session_id)


async def test_an_interaction_is_stamped_by_the_clock_and_kept_as_given(domain_service, clock):
    s = await domain_service.sessions.create(ALICE, new_session())
    clock.advance(minutes=3)
    i = await domain_service.interactions.create(ALICE, ask(s.id, "Tell me"))
    assert i.timestamp == datetime(2024, 1, 1, 10, 3, tzinfo=UTC)
    assert (i.session_id, i.question) == (s.id, "Tell me")
    assert i.question_classification == QuestionClassification(type=QuestionType.TECHNICAL)
    assert [r.id for r in i.generated_responses] == ["a", "b"]
    assert (i.selected_response, i.user_feedback) == (None, None)
    assert await stored(domain_service, s.id) == [i]
    assert await stored(domain_service, str(s.id)) == [i]


async def test_interactions_are_listed_oldest_first_per_session(domain_service, clock):
    s = await domain_service.sessions.create(ALICE, new_session())
    other = await domain_service.sessions.create(ALICE, new_session())
    made = []
    for n in range(3):
        clock.advance(seconds=10)
        made.append(await domain_service.interactions.create(ALICE, ask(s.id, f"q{n}")))
        await domain_service.interactions.create(ALICE, ask(other.id))
    assert [i.question for i in await stored(domain_service, s.id)] == ["q0", "q1", "q2"]
    assert await stored(domain_service, s.id) == made
    batch = await domain_service.interactions.for_sessions(ALICE, [s.id, other.id])
    assert batch[s.id] == made and len(batch[other.id]) == 3


async def test_details_hold_the_session_s_interactions_and_metrics(domain_service, clock):
    s = await domain_service.sessions.create(ALICE, new_session())
    other = await domain_service.sessions.create(ALICE, new_session())
    i = await domain_service.interactions.create(ALICE, ask(s.id))
    await domain_service.interactions.create(ALICE, ask(other.id))
    clock.advance(seconds=1)
    m = await domain_service.metrics.record(
        ALICE, RecordMetrics(session_id=str(s.id), transcription_accuracy=0.5)
    )
    await domain_service.metrics.record(ALICE, RecordMetrics(session_id=str(other.id)))
    details = await domain_service.sessions.details(ALICE, str(s.id))
    assert (details.id, details.status, details.job_context) == (s.id, s.status, s.job_context)
    assert details.interactions == [i]
    assert details.metrics == [m]
    assert m.created_at == datetime(2024, 1, 1, 10, 0, 1, tzinfo=UTC)
    assert m.transcription_accuracy == 0.5 and m.total_latency_ms is None
    assert await domain_service.metrics.for_sessions(ALICE, [s.id]) == {s.id: [m]}


async def test_the_owner_chooses_an_answer_and_rates_it(domain_service, clock):
    s = await domain_service.sessions.create(ALICE, new_session())
    i = await domain_service.interactions.create(ALICE, ask(s.id))
    clock.advance(minutes=1)

    chosen = await domain_service.interactions.update(
        ALICE, i.id, UpdateInteraction(selected_response="b")
    )
    assert (chosen.selected_response, chosen.user_feedback) == ("b", None)
    assert (chosen.id, chosen.question, chosen.timestamp) == (i.id, i.question, CLOCK_START)
    assert await stored(domain_service, s.id) == [chosen]

    rated = await domain_service.interactions.update(
        ALICE, str(i.id), UpdateInteraction(user_feedback=4)
    )
    assert (rated.selected_response, rated.user_feedback) == ("b", 4)
    assert await stored(domain_service, s.id) == [rated]

    both = await domain_service.interactions.update(
        ALICE, i.id, UpdateInteraction(selected_response="a", user_feedback=1)
    )
    assert (both.selected_response, both.user_feedback) == ("a", 1)
    assert await stored(domain_service, s.id) == [both]


async def test_null_clears_a_choice_and_absent_keeps_it(domain_service, fake_db):
    s = await domain_service.sessions.create(ALICE, new_session())
    i = await domain_service.interactions.create(ALICE, ask(s.id))
    await domain_service.interactions.update(
        ALICE, i.id, UpdateInteraction(selected_response="a", user_feedback=5)
    )
    cleared = await domain_service.interactions.update(
        ALICE, i.id, UpdateInteraction(selected_response=None)
    )
    assert (cleared.selected_response, cleared.user_feedback) == (None, 5)
    assert await stored(domain_service, s.id) == [cleared]
    events = len(fake_db.store.events)

    # Nothing given, or what is already there: a no-op, written nowhere, told no one.
    assert await domain_service.interactions.update(ALICE, i.id, UpdateInteraction()) == cleared
    same = UpdateInteraction(selected_response=None, user_feedback=5)
    assert await domain_service.interactions.update(ALICE, i.id, same) == cleared
    assert len(fake_db.store.events) == events


async def test_an_interaction_of_a_completed_session_can_still_be_rated(domain_service):
    s = await domain_service.sessions.create(ALICE, new_session())
    i = await domain_service.interactions.create(ALICE, ask(s.id))
    await domain_service.sessions.set_status(ALICE, s.id, SessionStatus.COMPLETED)
    rated = await domain_service.interactions.update(
        ALICE, i.id, UpdateInteraction(user_feedback=3)
    )
    assert rated.user_feedback == 3


async def test_only_the_owner_updates_an_interaction(domain_service):
    s = await domain_service.sessions.create(ALICE, new_session())
    i = await domain_service.interactions.create(ALICE, ask(s.id))
    with pytest.raises(Forbidden):
        await domain_service.interactions.update(BOB, i.id, UpdateInteraction(user_feedback=1))
    with pytest.raises(NotFound) as info:
        await domain_service.interactions.update(
            ALICE, uuid.uuid4(), UpdateInteraction(user_feedback=1)
        )
    assert info.value.message == "Interaction not found"
    with pytest.raises(BadRequest):
        await domain_service.interactions.update(ALICE, "x", UpdateInteraction(user_feedback=1))
    assert await stored(domain_service, s.id) == [i]


async def test_analytics_count_only_the_window_s_sessions(domain_service, clock):
    clock.set(datetime(2024, 3, 1, 12, 0, tzinfo=UTC))
    early = await domain_service.sessions.create(ALICE, new_session())
    await domain_service.metrics.record(
        ALICE, RecordMetrics(session_id=str(early.id), total_latency_ms=10)
    )
    clock.set(datetime(2024, 3, 3, 12, 0, tzinfo=UTC))
    late = await domain_service.sessions.create(ALICE, new_session())
    await domain_service.metrics.record(
        ALICE, RecordMetrics(session_id=str(late.id), total_latency_ms=30)
    )
    march_1 = await domain_service.analytics.for_user(ALICE, date(2024, 3, 1), date(2024, 3, 2))
    assert (march_1.total_sessions, march_1.average_latency) == (1, 10.0)
    until_2 = await domain_service.analytics.for_user(ALICE, None, date(2024, 3, 2))
    assert (until_2.total_sessions, until_2.average_latency) == (1, 10.0)
    from_2 = await domain_service.analytics.for_user(ALICE, date(2024, 3, 2))
    assert (from_2.total_sessions, from_2.average_latency) == (1, 30.0)
