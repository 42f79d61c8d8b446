"""Connections on the fakes: a user's sessions (newest first) and a session's
interactions (oldest first), paged forward and backward by their cursors, as
GraphQL's connections and REST's ``Link: rel="next"`` walk them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.domain.paging import session_filter
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    QuestionType,
    SessionStatus,
)
from app.errors import BadRequest, Forbidden, NotFound

ALICE, BOB = Principal("alice"), Principal("bob")
EVERYTHING = session_filter()


def new_session(title: str, kind: QuestionType | None = None) -> CreateSession:
    return CreateSession(
        job_context=JobContext(
            title=title, company="Corp", description="Remote", interview_type=kind
        )
    )


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_active_sessions": 100}


@pytest.fixture
async def made(domain_service, clock):
    """45 sessions of Alice's, a minute apart (s0 oldest), and 2 of Bob's."""
    out = []
    for n in range(45):
        clock.advance(minutes=1)
        out.append(await domain_service.sessions.create(ALICE, new_session(f"s{n}")))
    for _ in range(2):
        await domain_service.sessions.create(BOB, new_session("bob"))
    return out


def titles(page) -> list[str]:
    return [s.job_context.title for s in page.items]


def newest(*ns: int) -> list[str]:
    return [f"s{n}" for n in ns]


class TestSessionPages:
    @pytest.fixture(autouse=True)
    def _setup(self, domain_service, made):
        self.sessions = domain_service.sessions
        self.made = made

    async def page(self, user=ALICE, f=EVERYTHING, **kw):
        return await self.sessions.page(user, f, self.sessions.page_request(user, **kw))

    async def test_without_arguments_a_page_is_the_newest_twenty(self):
        page = await self.page()
        assert titles(page) == newest(*range(44, 24, -1))
        assert (page.has_next, page.has_previous) == (True, False)
        assert await self.sessions.count(ALICE, EVERYTHING) == 45
        assert await self.sessions.count(BOB, EVERYTHING) == 2

    async def test_forward_pages_follow_their_end_cursors_to_the_last(self):
        first = await self.page(first=20)
        second = await self.page(first=20, after=first.end_cursor)
        assert titles(second) == newest(*range(24, 4, -1))
        assert (second.has_next, second.has_previous) == (True, True)
        third = await self.page(after=second.end_cursor)
        assert titles(third) == newest(4, 3, 2, 1, 0)
        assert (third.has_next, third.has_previous) == (False, True)

    async def test_every_row_s_cursor_resumes_right_after_it(self):
        page = await self.page(first=5)
        for n, cursor in enumerate(page.cursors):
            after = await self.page(first=1, after=cursor)
            assert titles(after) == newest(43 - n)
        assert page.start_cursor == page.cursors[0]

    async def test_before_without_last_pages_backward_by_twenty(self):
        everything = await self.page(first=45)
        oldest = everything.cursors[-1]  # s0
        page = await self.page(before=oldest)
        assert titles(page) == newest(*range(20, 0, -1))
        assert (page.has_next, page.has_previous) == (True, True)
        back_again = await self.page(before=page.start_cursor)
        assert titles(back_again) == newest(*range(44, 20, -1))[-20:]
        assert (back_again.has_next, back_again.has_previous) == (True, True)
        top = await self.page(before=back_again.start_cursor)
        assert titles(top) == newest(44, 43, 42, 41)
        assert (top.has_next, top.has_previous) == (True, False)

    async def test_last_alone_is_the_end_of_the_list(self):
        page = await self.page(last=3)
        assert titles(page) == newest(2, 1, 0)
        assert (page.has_next, page.has_previous) == (False, True)
        assert [c for c in page.cursors] == [
            (await self.page(first=45)).cursors[n] for n in (42, 43, 44)
        ]

    async def test_between_two_cursors(self):
        everything = await self.page(first=45)
        after, before = everything.cursors[4], everything.cursors[10]  # s40, s34
        forward = await self.page(first=3, after=after, before=before)
        assert titles(forward) == newest(39, 38, 37)
        backward = await self.page(last=3, after=after, before=before)
        assert titles(backward) == newest(37, 36, 35)

    async def test_rest_pages_default_to_their_maximum(self):
        req = self.sessions.page_request(ALICE, first_name="limit", maximum=1000)
        page = await self.sessions.page(ALICE, EVERYTHING, req)
        assert len(page.items) == 45 and not page.has_next
        with pytest.raises(BadRequest) as info:
            self.sessions.page_request(ALICE, first=1001, first_name="limit", maximum=1000)
        assert info.value.message == "limit: must be an integer between 1 and 1000"
        capped = self.sessions.page_request(ALICE, first=1000, first_name="limit", maximum=1000)
        assert len((await self.sessions.page(ALICE, EVERYTHING, capped)).items) == 45

    async def test_a_maximum_below_twenty_is_the_default(self):
        page = await self.page(maximum=5)
        assert titles(page) == newest(44, 43, 42, 41, 40)
        with pytest.raises(BadRequest) as info:
            self.sessions.page_request(ALICE, first=6, maximum=5)
        assert info.value.message == "first: must be an integer between 1 and 5"
        with pytest.raises(BadRequest) as info:
            self.sessions.page_request(ALICE, last=6, maximum=5)
        assert info.value.message == "last: must be an integer between 1 and 5"

    async def test_sizes_and_cursors_are_checked(self):
        with pytest.raises(BadRequest) as info:
            self.sessions.page_request(ALICE, first=101)
        assert info.value.message == "first: must be an integer between 1 and 100"
        with pytest.raises(BadRequest) as info:
            self.sessions.page_request(ALICE, first=1, last=1)
        assert info.value.message == "Use first (with after) or last (with before), not both"
        alices = (await self.page(first=1)).end_cursor
        for kw in ({"after": alices}, {"before": alices}):
            with pytest.raises(BadRequest) as info:
                self.sessions.page_request(BOB, **kw)
            assert info.value.message == "Invalid cursor: it is not one this list gave you"

    async def test_a_user_pages_only_their_own_sessions(self):
        page = await self.page(user=BOB)
        assert titles(page) == ["bob", "bob"]
        assert all(s.user_id == "bob" for s in page.items)

    async def test_filters_narrow_pages_and_counts(self, domain_service, clock):
        svc = domain_service
        tech = await svc.sessions.create(ALICE, new_session("Tech lead", QuestionType.TECHNICAL))
        await svc.sessions.set_status(ALICE, self.made[0].id, SessionStatus.PAUSED)
        paused = session_filter(status=[SessionStatus.PAUSED])
        assert titles(await self.page(f=paused)) == ["s0"]
        assert await svc.sessions.count(ALICE, paused) == 1
        searched = session_filter(search="  TECH ")
        assert [s.id for s in (await self.page(f=searched)).items] == [tech.id]
        assert await svc.sessions.count(ALICE, searched) == 1
        typed = session_filter(interview_type=QuestionType.TECHNICAL)
        assert await svc.sessions.count(ALICE, typed) == 1
        assert await svc.sessions.count(ALICE, session_filter(search="remote")) == 46


class TestInteractionPages:
    @pytest.fixture(autouse=True)
    async def _setup(self, domain_service, clock):
        self.svc = domain_service
        self.session = await domain_service.sessions.create(ALICE, new_session("s"))
        self.other = await domain_service.sessions.create(ALICE, new_session("other"))
        self.bobs = await domain_service.sessions.create(BOB, new_session("bob"))
        for n in range(25):
            clock.advance(seconds=1)
            await self.ask(self.session.id, f"q{n}")
        await self.ask(self.other.id, "other", ALICE)
        await self.ask(self.bobs.id, "bob's", BOB)

    async def ask(self, sid, question, user=ALICE):
        cmd = CreateInteraction(session_id=str(sid), question=question)
        return await self.svc.interactions.create(user, cmd)

    async def page(self, first=None, after=None, sid=None, user=ALICE):
        sid = self.session.id if sid is None else sid
        req = self.svc.interactions.page_request(sid, first, after)
        return await self.svc.interactions.page(user, str(sid), req)

    @staticmethod
    def questions(page) -> list[str]:
        return [i.question for i in page.items]

    async def test_without_arguments_a_page_is_the_oldest_twenty(self):
        page = await self.page()
        assert self.questions(page) == [f"q{n}" for n in range(20)]
        assert (page.has_next, page.has_previous) == (True, False)

    async def test_a_later_page_s_cursors_resume_the_list(self):
        first = await self.page(first=10)
        second = await self.page(first=10, after=first.end_cursor)
        assert self.questions(second) == [f"q{n}" for n in range(10, 20)]
        assert (second.has_next, second.has_previous) == (True, True)
        # The later page's own cursors are signed for this list too.
        from_middle = await self.page(first=3, after=second.cursors[4])
        assert self.questions(from_middle) == ["q15", "q16", "q17"]
        last = await self.page(after=second.end_cursor)
        assert self.questions(last) == [f"q{n}" for n in range(20, 25)]
        assert (last.has_next, last.has_previous) == (False, True)
        assert (await self.page(after=last.end_cursor)).items == []

    async def test_a_cursor_belongs_to_its_session(self):
        cursor = (await self.page(first=1)).end_cursor
        with pytest.raises(BadRequest) as info:
            self.svc.interactions.page_request(self.other.id, None, cursor)
        assert info.value.message == "Invalid cursor: it is not one this list gave you"
        with pytest.raises(BadRequest) as info:
            self.svc.interactions.page_request(self.session.id, 0, None)
        assert info.value.message == "first: must be an integer between 1 and 100"

    async def test_someone_else_s_interactions_are_not_paged(self):
        with pytest.raises(Forbidden):
            await self.page(sid=self.bobs.id)
        with pytest.raises(NotFound):
            await self.page(sid=uuid.uuid4())

    async def test_first_pages_of_many_sessions_at_once(self):
        sids = [self.session.id, self.other.id, self.bobs.id]
        pages = await self.svc.interactions.first_pages(ALICE, sids, 3)
        assert set(pages) == set(sids)
        mine = pages[self.session.id]
        assert self.questions(mine) == ["q0", "q1", "q2"]
        assert (mine.has_next, mine.has_previous) == (True, False)
        assert self.questions(pages[self.other.id]) == ["other"]
        assert not pages[self.other.id].has_next
        assert pages[self.bobs.id].items == []
        # Their cursors page on like any other page's.
        on = await self.page(first=2, after=mine.end_cursor)
        assert self.questions(on) == ["q3", "q4"]
        assert await self.page(first=1, after=pages[self.other.id].end_cursor, sid=self.other.id)

    async def test_counts_of_many_sessions_at_once(self):
        sids = [self.session.id, self.other.id, self.bobs.id]
        counts = await self.svc.interactions.counts(ALICE, sids)
        assert counts == {self.session.id: 25, self.other.id: 1, self.bobs.id: 0}
        assert await self.svc.interactions.counts(BOB, sids) == {
            self.session.id: 0,
            self.other.id: 0,
            self.bobs.id: 1,
        }
