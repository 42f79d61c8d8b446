"""The GraphQL-over-HTTP reference audit (graphql-http's serverAudits), all of it.

Every MUST, SHOULD and MAY check must pass against the running server, on
both databases, with a token added to every request (as a frontend sends it).
"""

from __future__ import annotations

from tests.conftest import make_token
from tests.frontend.conftest import run_node


def test_every_audit_passes(node, live):
    results = run_node(node, "audit.mjs", f"{live}/graphql", make_token("auditor"))
    failed = [r for r in results if r["status"] != "ok"]
    assert len(results) >= 60
    assert failed == [], "\n".join(f"{r['id']} {r['name']}: {r['reason']}" for r in failed)


def test_the_graphql_ws_client_receives_live_events(node, live):
    out = run_node(node, "ws.mjs", live, make_token("ws-client"), "3")
    events = out["events"]
    assert [e["type"] for e in events] == ["SESSION_CREATED"] + ["INTERACTION_CREATED"] * 3
    assert [e["interaction"]["question"] for e in events[1:]] == ["Q0", "Q1", "Q2"]
    assert {e["sessionId"] for e in events} == {out["session"]}
    assert len({e["cursor"] for e in events}) == 4
