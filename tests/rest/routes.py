"""Every documented route, with a valid body, for tests that sweep all of them."""

from __future__ import annotations

from typing import Any, NamedTuple

from tests.api import FULL_JOB


class Route(NamedTuple):
    name: str
    method: str
    path: str
    body: Any = None


def session_routes(session_id: str, interaction_id: str) -> list[Route]:
    """Every route that takes a session or an interaction id (in the path or the body)."""
    base = f"/interview-sessions/{session_id}"
    return [
        Route("get", "GET", base),
        Route("details", "GET", f"{base}/details"),
        Route("update", "PUT", base, {"jobContext": FULL_JOB, "status": "paused"}),
        Route("start", "PUT", f"{base}/start"),
        Route("pause", "PUT", f"{base}/pause"),
        Route("complete", "PUT", f"{base}/complete"),
        Route("list interactions", "GET", f"{base}/interactions"),
        Route("list metrics", "GET", f"{base}/metrics"),
        Route(
            "create interaction",
            "POST",
            "/interview-sessions/interactions",
            {"sessionId": session_id, "question": "Intruding?"},
        ),
        Route(
            "record metrics",
            "POST",
            "/interview-sessions/metrics",
            {"sessionId": session_id, "totalLatencyMs": 1},
        ),
        Route(
            "update interaction",
            "PUT",
            f"/interview-sessions/interactions/{interaction_id}",
            {"selectedResponse": "hijacked", "userFeedback": 1},
        ),
        # Last, so a wrongly allowed delete does not hide the other routes' answers.
        Route("delete", "DELETE", base),
    ]


def all_routes(session_id: str, interaction_id: str) -> list[Route]:
    """Every documented route of the API (all of them need a token)."""
    return [
        Route("create", "POST", "/interview-sessions", {"jobContext": FULL_JOB}),
        Route("list", "GET", "/interview-sessions"),
        Route("active", "GET", "/interview-sessions/active"),
        Route("analytics", "GET", "/interview-sessions/analytics"),
        *session_routes(session_id, interaction_id),
    ]
