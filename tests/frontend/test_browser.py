"""Headless Chromium, every host but 127.0.0.1 blocked (nothing from a CDN):

* GraphiQL (served with its files by this server) runs a query with an
  Authorization header typed into its headers pane, and shows the data, then
  runs a subscription over the socket and shows a live event;
* Swagger UI lists the operations and runs a REST call with the token;
* a page on another origin calls both faces with a token and reads
  X-Request-ID and RateLimit-Remaining (CORS).

Screenshots are kept in the test's temp folder (printed on failure).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, make_token
from tests.frontend.conftest import NODE_DIR, run_node
from tests.server import free_port


@contextlib.contextmanager
def other_origin() -> Iterator[str]:
    """A static page on another port of 127.0.0.1: another origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(NODE_DIR))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cross-origin.html"
    finally:
        server.shutdown()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_graphiql_swagger_and_another_origin_in_a_real_browser(
    node, chromium, live, tmp_path: Path, db_url
):
    token = make_token("browser-user")
    created = httpx.post(
        f"{live}/interview-sessions",
        json={"jobContext": {"title": "Browser Engineer", "company": "Headless"}},
        headers=bearer(token),
    ).json()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with other_origin() as page:
        out = run_node(node, "browser.mjs", live, token, page, str(shots), timeout=180)
    print(f"screenshots in {shots}")
    steps = out["steps"]

    assert out["blocked"] == [], "the pages asked for files from elsewhere"
    assert created["id"] in steps["graphiql"] and "Browser Engineer" in steps["graphiql"]
    assert "SESSION_CREATED" in steps["subscription"]
    assert "Live in GraphiQL" in steps["subscription"]
    assert "/interview-sessions" in steps["operations"]
    assert "/interview-sessions/{session_id}/details" in steps["operations"]
    assert steps["swaggerStatus"] == "200" and created["id"] in steps["swaggerBody"]

    cross = steps["crossOrigin"]
    for face in ("rest", "graphql", "created"):
        assert "error" not in cross[face], cross[face]
        assert cross[face]["requestId"], face
        assert cross[face]["remaining"] is not None, face
    assert cross["rest"]["status"] == 200
    assert created["id"] in [s["id"] for s in cross["rest"]["body"]]
    assert created["id"] in [s["id"] for s in cross["graphql"]["body"]["data"]["sessions"]]
    assert cross["created"]["status"] == 201
    for name in ("graphiql.png", "graphiql-subscription.png", "swagger.png", "cross-origin.png"):
        assert (shots / name).stat().st_size > 10_000
