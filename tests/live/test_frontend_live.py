"""What a browser frontend needs from the live streams (frontend round two), on
both databases against a real server: the bearer token as ``access_token`` on
the two SSE routes only (EventSource cannot send headers), and a reconnecting
``graphql-ws`` client that names its last cursor in ``connection_init`` losing
nothing. (tests/node drives the real libraries: EventSource in Chromium and
graphql-ws's own reconnect.)"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.conftest import bearer, make_token
from tests.live.client import MY_EVENTS, Socket, socket
from tests.live.test_streams import collect_sse, servers, write_some


async def test_access_token_is_accepted_on_the_event_streams_only(db_url, tmp_path):
    log = tmp_path / "server0.log"
    with servers(db_url, tmp_path, LOG_LEVEL="INFO") as [base]:
        user = f"user-{uuid.uuid4()}"
        token = make_token(user)
        async with httpx.AsyncClient(base_url=base) as c:
            sid = (
                await c.post(
                    "/interview-sessions",
                    json={"jobContext": {"title": "T", "company": "C"}},
                    headers=bearer(token),
                )
            ).json()["id"]
            reader = asyncio.ensure_future(
                collect_sse(c, f"/interview-sessions/events?access_token={token}", {}, 1)
            )
            one = asyncio.ensure_future(
                collect_sse(c, f"/interview-sessions/{sid}/events?access_token={token}", {}, 1)
            )
            await asyncio.sleep(0.5)
            await write_some(c, bearer(token), 2)
            await c.put(
                f"/interview-sessions/{sid}", json={"status": "paused"}, headers=bearer(token)
            )
            assert [m["event"] for m in await asyncio.wait_for(reader, 15)] == ["session_created"]
            events = [m["event"] for m in await asyncio.wait_for(one, 15)]
            assert events == ["status_changed"]
            # Never elsewhere: a REST route, GraphQL, a token that does not verify.
            listed = await c.get(f"/interview-sessions?access_token={token}")
            assert listed.status_code == 401
            details = await c.get(f"/interview-sessions/{sid}?access_token={token}")
            assert details.status_code == 401
            query = await c.get(
                "/graphql", params={"query": "{ sessions { id } }", "access_token": token}
            )
            assert query.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            forged = await c.get(f"/interview-sessions/events?access_token={token}x")
            assert forged.status_code == 401
    assert token not in log.read_text()  # never written to a log


async def test_a_reconnect_naming_its_last_cursor_in_connection_init_loses_nothing(
    db_url, tmp_path
):
    with servers(db_url, tmp_path) as [base]:
        user = f"user-{uuid.uuid4()}"
        token = make_token(user)
        auth = bearer(token)
        async with httpx.AsyncClient(base_url=base) as c:
            async with socket(base) as ws:
                s = Socket(ws)
                assert (await s.init(token))["type"] == "connection_ack"
                await s.subscribe("1", MY_EVENTS, {"after": None})
                await asyncio.sleep(0.3)
                types = await write_some(c, auth, 2)
                seen = [(await s.recv())["payload"]["data"]["myEvents"] for _ in types]
            last = seen[-1]["cursor"]
            # Offline: more changes happen.
            missed = await write_some(c, auth, 3)
            # The stock client resends the subscription exactly as first sent
            # (after: null); its connectionParams name the last cursor it saw.
            async with socket(base) as ws:
                s = Socket(ws)
                await s.send(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {token}", "after": last},
                    }
                )
                assert (await s.recv())["type"] == "connection_ack"
                await s.subscribe("1", MY_EVENTS, {"after": None})
                again = [(await s.recv())["payload"]["data"]["myEvents"] for _ in missed]
                assert [e["type"] for e in again] == [t.upper() for t in missed]
                with_cursor = {e["cursor"] for e in again}
                assert not with_cursor & {e["cursor"] for e in seen}  # no duplicate
                # An explicit cursor still wins over the connection's.
                await s.subscribe("2", MY_EVENTS, {"after": seen[0]["cursor"]})
                first = (await s.recv())["payload"]["data"]["myEvents"]
                assert first["cursor"] == seen[1]["cursor"]
                assert json.dumps(first)
