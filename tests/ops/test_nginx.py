"""deploy/nginx/interview-api.conf, for real (operations.md, "Behind a reverse proxy").

A real nginx (Debian's package, in the foreground from a temporary prefix)
includes the committed site config, with only its upstream ports, listen port
and log paths replaced, in front of two real server processes on one
PostgreSQL database, sharing one rate-limit budget in Redis and believing
X-Forwarded-For from 127.0.0.1 (nginx) only. Checked through nginx:

a. a graphql-transport-ws subscription;
b. an SSE event arrives within a second of its write (nginx compresses the
   stream here, the case where buffering would hold it back);
c. the client address the server logs is the peer nginx saw, never what the
   client wrote in its own X-Forwarded-For; X-Request-ID passes through, or
   nginx makes one and both logs name it;
d. anonymous rate-limit budgets are per forwarded client, across both instances;
e. an event written through one instance reaches a subscriber on the other;
f. a body over client_max_body_size gets nginx's 413, one at the limit passes.

Then the commented /api/ variant (ROOT_PATH=/api), and that compose.conf is
this config with only the compose hostnames and log paths changed.

Test clients connect from random addresses in 127.0.0.0/8 (Linux routes the
whole block to the loopback), so "a client that is not the proxy" is a real
peer address, and their anonymous budgets in Redis are new on every run.

Without nginx (``apt-get install nginx``) these tests skip; ``.ci/run`` sets
REQUIRE_NGINX=1, which makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.api import JOB
from tests.conftest import REDIS_URL, REQUIRE_REDIS, _fresh_pg_database, bearer, make_token
from tests.live.client import MY_EVENTS, PROTOCOL, Socket
from tests.server import ROOT, free_port, running_server

NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
REQUIRE_NGINX = os.environ.get("REQUIRE_NGINX") == "1"
SITE = ROOT / "deploy" / "nginx" / "interview-api.conf"
COMPOSE_SITE = ROOT / "deploy" / "nginx" / "compose.conf"
LIMIT = 5  # anonymous requests per minute and client address (RATE_LIMITS)
MAX_BODY = 1024 * 1024  # client_max_body_size 1m == MAX_BODY_BYTES (the default)
FORGED = "203.0.113.7"  # TEST-NET-3: what a client writes in its own X-Forwarded-For


# ---------------------------------------------------------------- tools


def _missing(what: str, required: bool, flag: str) -> None:
    if required:
        pytest.fail(f"{what} ({flag}=1: required in CI)", pytrace=False)
    pytest.skip(f"{what} (set {flag}=1 to make this a failure)")


@pytest.fixture(scope="module")
def nginx() -> str:
    """The nginx binary (checked before any database or server is started)."""
    if not Path(NGINX).is_file():
        _missing(
            f"nginx not found at {NGINX}: apt-get install nginx (Debian's package)",
            REQUIRE_NGINX,
            "REQUIRE_NGINX",
        )
    return NGINX


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _missing(f"Redis not reachable at {REDIS_URL}: {exc!r}", REQUIRE_REDIS, "REQUIRE_REDIS")
    return REDIS_URL


def a_client_address() -> str:
    """A loopback address that is not 127.0.0.1 (so not a trusted proxy), new per call."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"


def from_address(address: str, base: str) -> httpx.Client:
    return httpx.Client(
        base_url=base, timeout=10, transport=httpx.HTTPTransport(local_address=address)
    )


def async_from_address(address: str, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=address)
    )


def ws_from_address(address: str, base: str, path: str = "/graphql", **kwargs: Any) -> Any:
    """graphql-transport-ws, connecting from ``address``."""
    return connect(
        base.replace("http://", "ws://") + path,
        subprotocols=[PROTOCOL],  # type: ignore[list-item]
        local_addr=(address, 0),
        open_timeout=10,
        **kwargs,
    )


def distinct_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def a_user() -> tuple[str, str]:
    user = f"nginx-{uuid.uuid4()}"
    return user, make_token(user)


# ---------------------------------------------------------------- the committed config, adapted


def site_config(text: str, port_a: int, port_b: int, listen: int, logs: Path) -> str:
    """The committed site config with the test's ports and log directory: each
    replaced line must exist exactly once (so a change to the file that would make
    this test run something else fails here, not silently)."""
    replacements = [
        (r"^(\s*server )127\.0\.0\.1:8001( .*)$", rf"\g<1>127.0.0.1:{port_a}\g<2>", 1),
        (r"^(\s*server )127\.0\.0\.1:8002( .*)$", rf"\g<1>127.0.0.1:{port_b}\g<2>", 1),
        (r"^(\s*)listen 80;$", rf"\g<1>listen 127.0.0.1:{listen};", 1),
        (r"^(\s*(?:access|error)_log )/var/log/nginx/", rf"\g<1>{logs}/", 2),
    ]
    for pattern, replacement, expected in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == expected, f"{SITE}: {pattern!r} matched {count} lines, not {expected}"
    live = [line.split("#", 1)[0] for line in text.splitlines()]
    assert not [line for line in live if "8001" in line or "8002" in line or "/var/" in line]
    assert [line.strip() for line in live if line.strip().startswith("listen")] == [
        f"listen 127.0.0.1:{listen};"
    ]
    return text


def main_config(prefix: Path, site: Path) -> str:
    """A minimal nginx.conf whose http block includes the site, everything in ``prefix``."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, workers would switch to `nobody`, which cannot enter the private
    # tmp directory; unprivileged, the directive is ignored, so leave it out.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
{temp}
    access_log {prefix}/access.log;
    default_type application/octet-stream;
    # Compression on, as in Debian's nginx.conf, and here for event streams too: the
    # worst case for SSE (gzip holds small writes back unless each one is flushed,
    # which nginx does when it does not buffer the answer).
    gzip on;
    gzip_types text/event-stream application/json;
    include {site};
}}
"""


@contextlib.contextmanager
def running_nginx(binary: str, prefix: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    conf = prefix / "nginx.conf"
    command = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    directives = f"daemon off; pid {prefix}/nginx.pid;"
    checked = subprocess.run(
        [*command, "-t", "-g", directives], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, f"nginx -t:\n{checked.stderr}"
    with open(prefix / "nginx.out", "wb") as out:
        proc = subprocess.Popen([*command, "-g", directives], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited early:\n{(prefix / 'nginx.out').read_text()}\n"
                    f"{(prefix / 'error.log').read_text()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen within 10 s")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()  # nginx's fast shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the deployment


@dataclass
class Deployment:
    proxy: str  # nginx
    a: str  # the instances, directly
    b: str
    logs: tuple[Path, ...]
    nginx_dir: Path

    def records(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Access records of both instances (each with ``_instance``: 0 or 1)."""
        found = []
        for instance, log in enumerate(self.logs):
            for line in log.read_text().splitlines():
                if not line.startswith("{"):
                    continue
                record = json.loads(line)
                if record.get("logger") == "app.access" and predicate(record):
                    found.append({**record, "_instance": instance})
        return found

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 5
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.records(predicate)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def by_request_id(self, request_id: str) -> dict[str, Any]:
        found = self.wait_for(lambda r: r.get("request_id") == request_id)
        assert len(found) == 1, (request_id, found)
        return found[0]


@pytest.fixture(scope="module")
def pg_db_url(pg_template: str) -> Iterator[str]:
    """conftest's fresh migrated PostgreSQL database, once for this module: the two
    instances and nginx are started once for every check below."""
    yield from _fresh_pg_database(pg_template)


@pytest.fixture(scope="module")
def deployment(
    nginx: str, redis_url: str, pg_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("nginx")
    port_a, port_b, listen = distinct_ports(3)
    site = tmp / "interview-api.conf"
    site.write_text(site_config(SITE.read_text(), port_a, port_b, listen, tmp))
    (tmp / "nginx.conf").write_text(main_config(tmp, site))
    env = {
        "DATABASE_URL": pg_db_url,
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "RATE_LIMITS": f"{LIMIT}/minute",
        "RATE_LIMIT_STORAGE": redis_url,
    }
    logs = (tmp / "a.log", tmp / "b.log")
    with contextlib.ExitStack() as stack:
        a, b = start_together(
            stack,
            [
                running_server(env, port=port, log=log)
                for port, log in zip((port_a, port_b), logs, strict=True)
            ],
        )
        stack.enter_context(running_nginx(nginx, tmp, listen))
        yield Deployment(f"http://127.0.0.1:{listen}", a, b, logs, tmp)


def start_together(stack: contextlib.ExitStack, servers: list[Any]) -> list[str]:
    """Enter the servers' context managers at once (each start takes seconds)."""
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [pool.submit(server.__enter__) for server in servers]
    bases, errors = [], []
    for server, future in zip(servers, futures, strict=True):
        try:
            bases.append(future.result())
        except Exception as exc:  # that one has stopped its process already
            errors.append(exc)
        else:
            stack.push(server.__exit__)
    if errors:
        raise errors[0]
    return bases


# ---------------------------------------------------------------- a. WebSocket


async def subscribe_then_write(base: str, prefix: str, request_id: str) -> str:
    """A subscription over a WebSocket through ``base``, then a write: the event
    arrives. The client's address (for the access log) is returned."""
    me = a_client_address()
    _user, token = a_user()
    async with (
        ws_from_address(
            me, base, f"{prefix}/graphql", additional_headers={"X-Request-ID": request_id}
        ) as ws,
        async_from_address(me, base) as http,
    ):
        assert ws.subprotocol == PROTOCOL
        assert ws.response.headers["x-request-id"] == request_id
        s = Socket(ws)
        assert await s.init(token) == {"type": "connection_ack"}
        await s.subscribe("1", MY_EVENTS)
        await asyncio.sleep(0.3)
        created = await http.post(
            f"{prefix}/interview-sessions", json={"jobContext": JOB}, headers=bearer(token)
        )
        assert created.status_code == 201
        message = await s.recv(timeout=5)
        assert message["type"] == "next" and message["id"] == "1"
        event = message["payload"]["data"]["myEvents"]
        assert event["type"] == "SESSION_CREATED"
        assert event["session"]["id"] == created.json()["id"]
    return me


async def test_a_websocket_subscription_works_through_nginx(deployment):
    me = await subscribe_then_write(deployment.proxy, "", "ws-1")
    # The socket's operation is logged with the forwarded client.
    [record] = deployment.wait_for(lambda r: r.get("request_id") == "ws-1" and r["method"] == "WS")
    assert record["client"] == me and record["user"].startswith("nginx-")
    assert record["operation_type"] == "subscription"


# ---------------------------------------------------------------- b. SSE


async def sse_event_delay(base: str, prefix: str = "") -> float:
    """Open an SSE stream through ``base``, then write: seconds until the event arrived."""
    me = a_client_address()
    _user, token = a_user()
    auth = {**bearer(token), "accept": "text/event-stream"}
    async with (
        async_from_address(me, base) as reader,
        async_from_address(me, base) as writer,
        reader.stream("GET", f"{prefix}/interview-sessions/events", headers=auth) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["content-encoding"] == "gzip"  # nginx compresses it
        lines = stream.aiter_lines()
        # The stream's first line (a comment) arrives without waiting for more.
        assert await asyncio.wait_for(anext(lines), 5) == ": connected"
        started = time.monotonic()
        created = await writer.post(
            f"{prefix}/interview-sessions", json={"jobContext": JOB}, headers=bearer(token)
        )
        assert created.status_code == 201

        async def next_data() -> dict[str, Any]:
            async for line in lines:
                if line.startswith("data:"):
                    return json.loads(line[5:])  # type: ignore[no-any-return]
            raise AssertionError("the stream ended")

        event = await asyncio.wait_for(next_data(), 5)
        elapsed = time.monotonic() - started
    assert event["type"] == "session_created" and event["sessionId"] == created.json()["id"]
    return elapsed


async def test_sse_events_arrive_at_once_through_nginx(deployment):
    # A few hundred bytes, far below any buffer, gzipped by nginx (see
    # main_config): only an unbuffered stream delivers them now, not with the
    # server's next heartbeat (15 s) or at the end of the stream.
    elapsed = await sse_event_delay(deployment.proxy)
    assert elapsed < 1.0, f"the event took {elapsed:.2f} s through nginx"


# ---------------------------------------------------------------- c. forwarded addresses


def test_the_server_sees_the_address_nginx_saw_not_what_the_client_wrote(deployment):
    def client_of(base: str, source: str, forge: bool) -> str:
        """The client address the server logged for a request from ``source``."""
        user, token = a_user()
        rid = f"xff-{uuid.uuid4()}"
        headers = {**bearer(token), "X-Request-ID": rid}
        if forge:
            headers["X-Forwarded-For"] = FORGED
        with from_address(source, base) as c:
            r = c.get("/interview-sessions", headers=headers)
        assert r.status_code == 200, r.text
        record = deployment.by_request_id(rid)
        assert record["user"] == user
        return str(record["client"])

    me = a_client_address()
    # Through nginx: X-Forwarded-For is "<forged>, <me>"; nginx (127.0.0.1) is
    # trusted, <me> is not, so the rightmost untrusted address is taken: the peer
    # nginx saw. What the client wrote before it is never believed.
    assert client_of(deployment.proxy, me, forge=True) == me
    assert client_of(deployment.proxy, me, forge=False) == me
    # Directly to an instance from an address not in FORWARDED_ALLOW_IPS: the
    # header is ignored altogether.
    assert client_of(deployment.a, me, forge=True) == me
    # A client that itself connects from a trusted address (127.0.0.1, like
    # nginx here) is a proxy as far as the server can tell: the chain is
    # "<forged>, 127.0.0.1", the trusted hop is skipped and the forged address
    # taken (uvicorn's rule: the rightmost address not in FORWARDED_ALLOW_IPS).
    # Hence FORWARDED_ALLOW_IPS must list the proxies and nothing else.
    assert client_of(deployment.proxy, "127.0.0.1", forge=True) == FORGED
    assert client_of(deployment.a, "127.0.0.1", forge=True) == FORGED
    assert client_of(deployment.a, "127.0.0.1", forge=False) == "127.0.0.1"


def test_x_request_id_is_passed_through_or_made_by_nginx(deployment):
    me = a_client_address()
    _user, token = a_user()
    with from_address(me, deployment.proxy) as c:
        mine = c.get("/interview-sessions", headers={**bearer(token), "X-Request-ID": "rid-42"})
        assert mine.headers["x-request-id"] == "rid-42"
        made = c.get("/interview-sessions", headers=bearer(token))
    rid = made.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid  # nginx's $request_id
    assert deployment.by_request_id("rid-42")["client"] == me
    assert deployment.by_request_id(rid)["client"] == me
    # nginx's own access log names the same id, and which instance answered.
    deadline = time.monotonic() + 5
    access = deployment.nginx_dir / "interview-api.access.log"
    while f"rid={rid} " not in access.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"rid={rid} upstream=127.0.0.1:" in access.read_text()


# ---------------------------------------------------------------- d. rate limits


def test_anonymous_budgets_are_per_forwarded_client_across_both_instances(deployment):
    first, second = a_client_address(), a_client_address()
    with from_address(first, deployment.proxy) as c:
        answers = [c.get("/interview-sessions") for _ in range(LIMIT + 1)]
    # Each anonymous request spends the client's budget (401: no token), whichever
    # instance nginx sends it to: the budget is the forwarded client's, in Redis.
    assert [r.status_code for r in answers] == [401] * LIMIT + [429]
    assert [r.headers["ratelimit-remaining"] for r in answers[:LIMIT]] == [
        str(LIMIT - 1 - i) for i in range(LIMIT)
    ]
    assert answers[-1].json()["statusCode"] == 429 and int(answers[-1].headers["retry-after"]) > 0
    records = deployment.wait_for(lambda r: r["client"] == first, count=LIMIT + 1)
    assert sorted(r["status"] for r in records) == [401] * LIMIT + [429]
    assert {r["_instance"] for r in records} == {0, 1}  # both instances answered
    # Another client behind the same proxy has a budget of its own.
    with from_address(second, deployment.proxy) as c:
        other = c.get("/interview-sessions")
    assert other.status_code == 401
    assert other.headers["ratelimit-remaining"] == str(LIMIT - 1)


# ---------------------------------------------------------------- e. across instances


async def test_an_event_written_through_one_instance_reaches_a_subscriber_on_the_other(
    deployment,
):
    me = a_client_address()
    _user, token = a_user()
    async with (
        ws_from_address(me, deployment.b) as ws,
        async_from_address(me, deployment.a) as writer,
    ):
        s = Socket(ws)
        assert await s.init(token) == {"type": "connection_ack"}
        await s.subscribe("1", MY_EVENTS)
        await asyncio.sleep(0.3)
        created = await writer.post(
            "/interview-sessions", json={"jobContext": JOB}, headers=bearer(token)
        )
        assert created.status_code == 201
        event = (await s.recv(timeout=5))["payload"]["data"]["myEvents"]
    assert event["type"] == "SESSION_CREATED"
    assert event["session"]["id"] == created.json()["id"]


# ---------------------------------------------------------------- f. body size


def test_a_body_over_client_max_body_size_gets_413_from_nginx(deployment):
    me = a_client_address()
    _user, token = a_user()
    headers = {**bearer(token), "Content-Type": "application/json"}
    prefix = b'{"query": "{ __typename }", "variables": {"pad": "'
    suffix = b'"}}'
    at_limit = prefix + b"x" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(at_limit) == MAX_BODY
    over = at_limit[: -len(suffix)] + b"x" + suffix
    with from_address(me, deployment.proxy) as c:
        refused = c.post("/graphql", content=over, headers={**headers, "X-Request-ID": "big-1"})
        # Exactly the limit passes nginx, and the server takes it too.
        taken = c.post("/graphql", content=at_limit, headers={**headers, "X-Request-ID": "big-2"})
    assert refused.status_code == 413
    assert refused.headers["server"] == "nginx"  # nginx's answer (server_tokens off)
    assert "413 Request Entity Too Large" in refused.text
    assert taken.status_code == 200 and taken.json() == {"data": {"__typename": "Query"}}
    assert deployment.by_request_id("big-2")["status"] == 200
    time.sleep(0.2)
    assert deployment.records(lambda r: r.get("request_id") == "big-1") == []  # never proxied
    # The server's own limit is the same number: directly, one byte over is 413 too.
    with from_address(me, deployment.a) as c:
        direct = c.post("/graphql", content=over, headers=headers)
    assert direct.status_code == 413 and direct.json()["statusCode"] == 413


# ---------------------------------------------------------------- the /api/ variant


def api_variant(text: str) -> str:
    """The config's commented variant (the API under /api/) in place of its three
    root locations, as its comment tells an operator to do."""
    text, removed = re.subn(
        r"^    location (?:/|= /graphql|~ \S+events\$) \{\n(?:        .*\n)*    \}\n",
        "",
        text,
        flags=re.MULTILINE,
    )
    assert removed == 3, f"{SITE}: {removed} root locations, not 3"
    head, marker, variant = text.partition("# ---- Variant: the API under /api/")
    assert marker, f"{SITE}: no /api/ variant"
    variant = re.sub(r"^    # (location .*|    .*|\})$", r"    \1", variant, flags=re.MULTILINE)
    locations = re.findall(r"^    location (.*) \{$", variant, flags=re.MULTILINE)
    assert locations == [
        "/api/",
        "= /api/graphql",
        r"~ ^/api/interview-sessions/(?:[^/]+/)?events$",
    ]
    return head + marker + variant


@pytest.fixture(scope="module")
def api_deployment(
    nginx: str, pg_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One instance with ROOT_PATH=/api (both upstream entries name it) behind the
    variant."""
    tmp = tmp_path_factory.mktemp("nginx-api")
    port, listen = distinct_ports(2)
    site = tmp / "interview-api.conf"
    site.write_text(api_variant(site_config(SITE.read_text(), port, port, listen, tmp)))
    (tmp / "nginx.conf").write_text(main_config(tmp, site))
    env = {
        "DATABASE_URL": pg_db_url,
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "RATE_LIMITS": "1000/minute",
        "ROOT_PATH": "/api",
    }
    log = tmp / "server.log"
    with running_server(env, port=port, log=log) as base, running_nginx(nginx, tmp, listen):
        yield Deployment(f"http://127.0.0.1:{listen}", base, base, (log,), tmp)


async def test_the_api_under_api_with_root_path(api_deployment):
    proxy = api_deployment.proxy
    me = a_client_address()
    async with async_from_address(me, proxy) as c:
        # GraphiQL's page and its files, all under /api/.
        page = await c.get("/api/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        files = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert files
        for url in files:
            if url.startswith("https://"):  # no npm here: the pinned files from a CDN
                continue
            assert url.startswith("/api/static/"), url
            assert (await c.get(url)).status_code == 200, url
        docs = await c.get("/api/schema/swagger")
        assert docs.status_code == 200
        assert all(
            u.startswith(("/api/static/", "https://"))
            for u in re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        )
        spec = await c.get("/api/schema/openapi.json")
        assert spec.json()["servers"] == [{"url": "/api"}]
        # Nothing is served outside the prefix.
        assert (await c.get("/interview-sessions")).status_code == 404
        assert (await c.get("/interview-sessions")).headers["server"] == "nginx"
    me = await subscribe_then_write(proxy, "/api", "api-ws-1")
    [record] = api_deployment.wait_for(lambda r: r.get("request_id") == "api-ws-1")
    assert record["client"] == me and record["route"] == "/graphql"
    elapsed = await sse_event_delay(proxy, "/api")
    assert elapsed < 1.0, f"the event took {elapsed:.2f} s through nginx"


# ---------------------------------------------------------------- compose.conf


def directives(text: str) -> list[str]:
    """The config without comments and blank lines."""
    lines = (line.split("#", 1)[0].rstrip() for line in text.splitlines())
    return [line for line in lines if line.strip()]


def test_the_compose_config_is_the_tested_one_with_compose_hostnames():
    """deploy/nginx/compose.conf cannot run here (no container engine): it must be
    the config tested above, with only the upstream servers and the log paths
    changed."""
    changes = {
        "    server 127.0.0.1:8001 max_fails=3 fail_timeout=10s;": (
            "    server api1:8000 max_fails=3 fail_timeout=10s;"
        ),
        "    server 127.0.0.1:8002 max_fails=3 fail_timeout=10s;": (
            "    server api2:8000 max_fails=3 fail_timeout=10s;"
        ),
        "    access_log /var/log/nginx/interview-api.access.log interview_api;": (
            "    access_log /dev/stdout interview_api;"
        ),
        "    error_log /var/log/nginx/interview-api.error.log;": "    error_log /dev/stderr;",
    }
    tested = directives(SITE.read_text())
    assert set(changes) <= set(tested)
    assert directives(COMPOSE_SITE.read_text()) == [changes.get(line, line) for line in tested]
