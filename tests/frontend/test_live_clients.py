"""The live streams and the docs pages from real clients (tests/node/live-clients.mjs)
against a real server, every host but 127.0.0.1 blocked:

* EventSource in headless Chromium, with the token as ``?access_token=``,
  receives events, survives a dropped connection (a TCP proxy in front of the
  server cuts every connection and refuses new ones while changes are written
  straight to the server) and resumes on its own with Last-Event-ID: every
  event exactly once, in order;
* the stock ``graphql-ws`` client with the documented recipe (connectionParams
  naming the last cursor seen, infinite retries) loses nothing across the same
  drop, while the same client without ``after`` loses the outage's events;
* GraphiQL shows the close code and reason of a socket refused for a bad token;
* ReDoc renders the operations without asking anything of another host.

The server-level behaviour is tested in tests/live/test_frontend_live.py.
Screenshots are kept in the test's temp folder.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_token
from tests.frontend.conftest import run_node
from tests.live.test_streams import collect_sse

SCRIPT = "live-clients.mjs"


def replay(base: str, token: str, path: str, first: str, count: int) -> list[str]:
    """The server's own record: the cursors of the ``count`` events after ``first``."""

    async def read() -> list[str]:
        async with httpx.AsyncClient(base_url=base) as c:
            messages = await asyncio.wait_for(
                collect_sse(c, f"{path}?after={first}", bearer(token), count), 15
            )
        return [m["id"] for m in messages]

    return asyncio.run(read())


def fresh_token() -> str:
    return make_token(f"user-{uuid.uuid4()}")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_eventsource_in_chromium_resumes_after_a_dropped_connection(
    node, chromium, live, tmp_path: Path, db_url
):
    token = fresh_token()
    out = run_node(node, SCRIPT, "eventsource", live, token, timeout=120)

    assert out["blocked"] == [], "the page asked for something from elsewhere"
    assert all(url.startswith("http://127.0.0.1:") for url in out["requested"])
    streams, written = out["streams"], out["written"]
    a = out["sessions"]["a"]
    # Before the drop: both streams open, the first events in.
    assert out["beforeCut"]["all"]["events"] == 3 and out["beforeCut"]["one"]["events"] == 2
    # During the outage the EventSources stay open, retrying (CONNECTING = 0):
    # the drop and at least one refused attempt, nothing received.
    for name, count in (("all", 3), ("one", 2)):
        during = out["duringOutage"][name]
        assert during["events"] == count and during["opens"] == 1, during
        assert during["errors"] >= 2 and set(during["statesOnError"]) == {0}, during
        assert during["readyState"] == 0, during

    for name, path in (
        ("all", "/interview-sessions/events"),
        ("one", f"/interview-sessions/{a}/events"),
    ):
        stream = streams[name]
        events = stream["events"]
        # Every change exactly once, in order, with the SSE id being the cursor.
        assert [e["event"] for e in events] == written[name], name
        assert [e["type"] for e in events] == written[name], name
        assert all(e["id"] == e["cursor"] for e in events)
        cursors = [e["id"] for e in events]
        assert len(set(cursors)) == len(cursors), f"{name}: a duplicate"
        assert cursors[1:] == replay(live, token, path, cursors[0], len(cursors) - 1), name
        assert stream["opens"] == 2 and stream["readyState"] == 1, stream
        if name == "one":
            assert {e["sessionId"] for e in events} == {a}
        # One request to open, one to resume: the same URL (the token as
        # access_token), and Last-Event-ID naming the last event before the drop.
        requests = [r for r in out["sseRequests"] if r["path"].split("?")[0] == path]
        assert [r["path"] for r in requests] == [f"{path}?access_token=***"] * 2, requests
        before = out["beforeCut"][name]["events"]
        assert [r["lastEventId"] for r in requests] == [None, cursors[before - 1]], requests

    assert token not in (tmp_path / "server.log").read_text()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stock_graphql_ws_client_with_the_recipe_loses_nothing_across_a_drop(node, live, db_url):
    token = fresh_token()
    out = run_node(node, SCRIPT, "reconnect", live, token, timeout=60)
    written, recipe, control = out["written"], out["recipe"], out["control"]
    assert written == [
        "SESSION_CREATED",
        "INTERACTION_CREATED",
        "METRICS_RECORDED",
        # while the proxy was down
        "INTERACTION_CREATED",
        "STATUS_CHANGED",
        "SESSION_CREATED",
        # after both clients reconnected
        "STATUS_CHANGED",
        "INTERACTION_CREATED",
    ]
    for client in (recipe, control):
        # Both saw the drop and reconnected on their own, once.
        assert client["errors"] == [] and not client["completed"], client
        assert client["connected"] == 2 and client["closed"] >= 1, client

    # The recipe: every event exactly once, in order; the server's own record agrees.
    events = recipe["events"]
    assert [e["type"] for e in events] == written
    cursors = [e["cursor"] for e in events]
    assert len(set(cursors)) == len(cursors)
    assert cursors[1:] == replay(live, token, "/interview-sessions/events", cursors[0], 7)
    # connectionParams was called on each connect: nothing the first time, then
    # the last cursor seen before the drop.
    assert recipe["connectionParams"] == [None, cursors[2]]

    # The control (no `after` in connectionParams): the outage's events are lost.
    assert control["connectionParams"] == [None, None]
    assert [e["cursor"] for e in control["events"]] == cursors[:3] + cursors[6:]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_graphiql_shows_why_the_server_closed_the_subscription_socket(
    node, chromium, live, tmp_path: Path, db_url
):
    bad = make_token("graphiql-user", secret="not-the-server-secret-" * 3)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    out = run_node(node, SCRIPT, "graphiql", live, bad, str(shots), timeout=120)
    print(f"screenshots in {shots}")

    assert out["blocked"] == []
    response = out["response"].replace("\xa0", " ")  # CodeMirror indents with NBSPs
    assert "isTrusted" not in response, response
    errors = json.loads(response)["errors"]
    assert [e["message"] for e in errors] == ["The socket closed: 4403 Forbidden"], response
    assert (shots / "graphiql-closed.png").stat().st_size > 10_000


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_redoc_renders_the_operations_asking_nothing_of_another_host(
    node, chromium, live, tmp_path: Path, db_url
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    out = run_node(node, SCRIPT, "redoc", live, str(shots), timeout=120)
    print(f"screenshots in {shots}")

    assert out["blocked"] == [], "ReDoc asked for something from elsewhere"
    assert all(url.startswith(f"{live}/") for url in out["requested"]), out["requested"]
    assert all(src.startswith((f"{live}/", "data:")) for src in out["images"]), out["images"]
    assert out["title"].startswith("Interview Session API")
    schema: dict[str, Any] = httpx.get(f"{live}/schema/openapi.json").json()
    wanted = {
        op["operationId"]
        for item in schema["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "interview-sessions" in op.get("tags", ())
    }
    shown = {op["id"] for op in out["operations"]}
    assert shown == wanted
    assert {"myEvents", "sessionEvents", "createSession"} <= shown
    assert out["tags"] == ["interview-sessions", "health"]
    assert (shots / "redoc.png").stat().st_size > 10_000
