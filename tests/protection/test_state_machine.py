"""Property-based: any sequence of operations keeps the session invariants.

Hypothesis drives the domain service (the one place the rules live) on a real
database of each backend, and checks the stored state against a simple model
after every step:

* a completed session never changes status, and has ``ended_at`` (set once);
* a session that is not completed has no ``ended_at``;
* a user never has more than MAX_ACTIVE sessions active;
* interactions only land in sessions that were not completed;
* two racing transitions end as one of the two serial orders would.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from app.db.engine import Database
from app.domain.records import (
    CreateInteraction,
    CreateSession,
    JobContext,
    Principal,
    SessionStatus,
    UpdateSession,
)
from app.domain.service import Service
from app.errors import BadRequest, Conflict
from tests.conftest import make_settings

MAX_ACTIVE = 3
S = SessionStatus
ALLOWED = {
    (S.ACTIVE, S.PAUSED),
    (S.PAUSED, S.ACTIVE),
    (S.ACTIVE, S.COMPLETED),
    (S.PAUSED, S.COMPLETED),
}


def expected(current: S, target: S, active_count: int) -> tuple[S, type[Exception] | None]:
    """The model of the state machine, written independently of the service."""
    if current is target:
        return current, None
    if (current, target) not in ALLOWED:
        return current, BadRequest
    if target is S.ACTIVE and active_count >= MAX_ACTIVE:
        return current, Conflict
    return target, None


def machine(db_url: str) -> type[RuleBasedStateMachine]:
    class SessionLifecycle(RuleBasedStateMachine):
        sessions = Bundle("sessions")

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(make_settings(db_url))
            self.service = Service.build(self.db, max_active_sessions=MAX_ACTIVE)
            self.user = Principal(user_id=f"prop-{uuid.uuid4()}")
            self.status: dict[uuid.UUID, S] = {}
            self.ended: dict[uuid.UUID, object] = {}
            self.interactions: dict[uuid.UUID, int] = {}

        def run(self, coro):
            return self.loop.run_until_complete(coro)

        def teardown(self) -> None:
            self.run(self.db.dispose())
            self.loop.close()

        def active_count(self) -> int:
            return sum(1 for s in self.status.values() if s is S.ACTIVE)

        @rule(target=sessions)
        def create(self):
            cmd = CreateSession(job_context=JobContext(title="T", company="C"))
            if self.active_count() >= MAX_ACTIVE:
                with pytest.raises(Conflict):
                    self.run(self.service.sessions.create(self.user, cmd))
                return None
            s = self.run(self.service.sessions.create(self.user, cmd))
            self.status[s.id] = S.ACTIVE
            self.interactions[s.id] = 0
            return s.id

        @rule(sid=sessions, to=st.sampled_from(list(S)), via_update=st.booleans())
        def move(self, sid, to, via_update):
            if sid is None or sid not in self.status:
                return
            want, error = expected(self.status[sid], to, self.active_count())
            call = (
                self.service.sessions.update(self.user, sid, UpdateSession(status=to))
                if via_update
                else self.service.sessions.set_status(self.user, sid, to)
            )
            if error is None:
                s = self.run(call)
                assert s.status is want
            else:
                with pytest.raises(error):
                    self.run(call)
            if want is S.COMPLETED and self.status[sid] is not S.COMPLETED:
                self.ended[sid] = self.run(self.service.sessions.get(self.user, sid)).ended_at
            self.status[sid] = want

        @rule(sid=sessions, a=st.sampled_from(list(S)), b=st.sampled_from(list(S)))
        def race(self, sid, a, b):
            if sid is None or sid not in self.status:
                return
            before = self.status[sid]

            async def both():
                return await asyncio.gather(
                    self.service.sessions.set_status(self.user, sid, a),
                    self.service.sessions.set_status(self.user, sid, b),
                    return_exceptions=True,
                )

            results = self.run(both())
            n = self.active_count() - (before is S.ACTIVE)
            serial = set()
            for first, second in ((a, b), (b, a)):
                mid, _ = expected(before, first, n + 0)
                end, _ = expected(mid, second, n)
                serial.add(end)
            final = self.run(self.service.sessions.get(self.user, sid)).status
            assert final in serial, (before, a, b, final, results)
            for r in results:
                assert not isinstance(r, Exception) or isinstance(r, BadRequest | Conflict), r
            if final is S.COMPLETED and before is not S.COMPLETED:
                self.ended[sid] = self.run(self.service.sessions.get(self.user, sid)).ended_at
            self.status[sid] = final

        @rule(sid=sessions)
        def interact(self, sid):
            if sid is None or sid not in self.status:
                return
            cmd = CreateInteraction(session_id=str(sid), question="Q?")
            if self.status[sid] is S.COMPLETED:
                with pytest.raises(BadRequest):
                    self.run(self.service.interactions.create(self.user, cmd))
            else:
                self.run(self.service.interactions.create(self.user, cmd))
                self.interactions[sid] += 1

        @rule(sid=sessions)
        def delete(self, sid):
            if sid is None or sid not in self.status:
                return
            self.run(self.service.sessions.delete(self.user, sid))
            del self.status[sid]

        @invariant()
        def stored_state_matches_the_model(self):
            stored = self.run(self.service.sessions.list_sessions(self.user))
            assert {s.id: s.status for s in stored} == self.status
            assert sum(s.status is S.ACTIVE for s in stored) <= MAX_ACTIVE
            for s in stored:
                if s.status is S.COMPLETED:
                    assert s.ended_at is not None
                    assert s.ended_at >= s.started_at
                    assert s.ended_at == self.ended[s.id]  # set once, never moved
                else:
                    assert s.ended_at is None
                n = len(self.run(self.service.interactions.list_for_session(self.user, s.id)))
                assert n == self.interactions[s.id]

    return SessionLifecycle


def test_any_sequence_of_operations_keeps_the_invariants(db_url):
    run_state_machine_as_test(
        machine(db_url),
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
