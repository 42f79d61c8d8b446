"""What an operator relies on (operations.md), on both databases: probes and
the drain, start-up without a database, metrics, traces, forwarded addresses,
ROOT_PATH and backups. Real server processes unless a test needs to cut the
database at a TCP proxy (in-process, PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.migrate import downgrade
from tests.api import JOB
from tests.conftest import TEST_SECRET, bearer, make_token
from tests.protection.test_faults import app_client, pg_proxy  # noqa: F401 (a fixture)
from tests.server import CLI, ROOT, free_port, running_server

UUID_TEXT = "-4"  # every id here is a uuid4: "xxxxxxxx-xxxx-4xxx-..."


def _user() -> tuple[str, dict[str, str]]:
    user = f"ops-{uuid.uuid4()}"
    return user, bearer(make_token(user))


# ---------------------------------------------------------------- probes


async def test_ready_answers_503_while_the_database_is_cut(pg_proxy):  # noqa: F811
    proxy, url = pg_proxy
    async with app_client(url, db_breaker_seconds=0.2, db_connect_timeout=1) as c:
        r = await c.get("/ready")
        assert r.status_code == 200 and r.json() == {"status": "ready"}
        await proxy.cut()
        r = await c.get("/ready")
        assert r.status_code == 503
        assert r.json()["status"] == "not ready"
        assert r.json()["reason"] == "database unavailable"
        assert r.json()["statusCode"] == 503
        assert (await c.head("/ready")).status_code == 503
        # A probe needs no token and spends no budget.
        assert "ratelimit-remaining" not in {k.lower() for k in r.headers}


async def test_ready_answers_503_when_migrations_are_behind(db_url):
    await downgrade(db_url, "0007")
    async with app_client(db_url) as c:
        r = await c.get("/ready")
        assert r.status_code == 503
        assert r.json()["reason"].startswith("migrations are not at head (0007")
        assert (await c.get("/health")).status_code == 200  # alive, not ready


def test_sigterm_drains_then_exits_zero(db_url, tmp_path):
    env = {"DATABASE_URL": db_url, "SHUTDOWN_DRAIN_SECONDS": "1.5", "LOG_LEVEL": "INFO"}
    _, headers = _user()
    with running_server(env, log=tmp_path / "server.log") as base:
        assert httpx.get(f"{base}/ready").status_code == 200
        base.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.status_code == 503 and "draining" in ready.json()["reason"]
        # Still serving during the drain.
        served = httpx.get(f"{base}/interview-sessions", headers=headers, timeout=5)
        assert served.status_code == 200
        assert base.proc.wait(timeout=15) == 0
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_start_without_a_database_fails_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:{port}/nowhere"
    started = time.monotonic()
    done = subprocess.run(
        [str(CLI), "serve", "--port", str(free_port())],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": url,
            "JWT_SECRET": TEST_SECRET,
            "DB_STARTUP_TIMEOUT": "2",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert time.monotonic() - started >= 2  # it waited for the database
    out = done.stdout + done.stderr
    assert "s3cret-pw" not in out and "Traceback" not in out
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"interview-api: database at 127.0.0.1:{port}/nowhere is not usable")
    retries = [line for line in out.splitlines() if "does not answer yet" in line]
    assert len(retries) >= 2  # one line per try


# ---------------------------------------------------------------- metrics


def _families(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = family.samples
    return out


def _value(samples: list, metric: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_names_labels_and_counts(db_url, tmp_path):
    env = {"DATABASE_URL": db_url, "RATE_LIMITS": "8/minute"}
    _, headers = _user()
    with (
        running_server(env, log=tmp_path / "server.log") as base,
        httpx.Client(base_url=base, timeout=10) as c,
    ):
        sid = c.post("/interview-sessions", json={"jobContext": JOB}, headers=headers).json()["id"]
        assert c.get(f"/interview-sessions/{sid}/details", headers=headers).status_code == 200
        keyed = {**headers, "Idempotency-Key": "metrics-key"}
        for _ in range(2):
            r = c.post("/interview-sessions", json={"jobContext": JOB}, headers=keyed)
        assert r.headers["idempotent-replayed"] == "true"
        q = {"query": "query Listing { sessions { id } }"}
        assert c.post("/graphql", json=q, headers=headers).status_code == 200
        bad = {"query": 'query Broken { session(id: "nope") { id } }'}
        assert "errors" in c.post("/graphql", json=bad, headers=headers).json()
        for _ in range(3):  # the 8th request of the minute and after: 429
            last = c.get("/interview-sessions", headers=headers)
        assert last.status_code == 429
        scrape = c.get("/metrics")  # not rate limited, no token needed
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "/metrics" not in c.get("/schema/openapi.json").json()["paths"]
    families = _families(scrape.text)
    http = families["http_requests"]
    assert (
        _value(
            http, "http_requests_total", method="POST", route="/interview-sessions", status="201"
        )
        == 3  # one plain, one keyed, its replay
    )
    assert (
        _value(
            http,
            "http_requests_total",
            method="GET",
            route="/interview-sessions/{id}/details",
            status="200",
        )
        == 1
    )
    limited = {"method": "GET", "route": "/interview-sessions", "status": "429"}
    assert _value(http, "http_requests_total", **limited) >= 1
    durations = families["http_request_duration_seconds"]
    assert (
        _value(durations, "http_request_duration_seconds_count", method="POST", route="/graphql")
        == 2
    )
    ops = families["graphql_operations"]
    assert _value(ops, "graphql_operations_total", type="query", name="Listing", outcome="ok") == 1
    assert (
        _value(ops, "graphql_operations_total", type="query", name="Broken", outcome="error") == 1
    )
    # Which path answered: the compiled plan wrote Listing's answer; Broken's
    # (an answer with errors) was handed to the standard executor.
    paths = families["http_answers_by_strategy"]
    compiled = {"route": "/graphql", "strategy": "compiled", "fallback": "no"}
    assert _value(paths, "http_answers_by_strategy_total", **compiled) == 1
    handed = {"route": "/graphql", "strategy": "standard", "fallback": "yes"}
    assert _value(paths, "http_answers_by_strategy_total", **handed) == 1
    fast = {"route": "/interview-sessions/{id}/details", "strategy": "fast", "fallback": "no"}
    assert _value(paths, "http_answers_by_strategy_total", **fast) == 1
    assert _value(families["rate_limited"], "rate_limited_total") >= 1
    assert _value(families["idempotent_replays"], "idempotent_replays_total") == 1
    assert "live_subscriptions" in families and "live_events_delivered" in families
    if db_url.startswith("postgresql"):
        pool = families["db_pool_connections"]
        assert {s.labels["state"] for s in pool} == {"in_use", "idle"}
    for samples in families.values():  # no raw id in any label
        for s in samples:
            for value in s.labels.values():
                assert sid not in value and UUID_TEXT not in value, s


def test_metrics_token_and_workers_aggregated(db_url, tmp_path):
    token = "metrics-" + "x" * 20
    env = {"DATABASE_URL": db_url, "METRICS_TOKEN": token, "RATE_LIMITS": "1000/second"}
    with running_server(env, log=tmp_path / "server.log", args=("--workers", "2")) as base:
        assert httpx.get(f"{base}/metrics").status_code == 401
        wrong = httpx.get(f"{base}/metrics", headers=bearer("nope"))
        assert wrong.status_code == 401 and wrong.json()["statusCode"] == 401
        first = httpx.get(f"{base}/metrics", headers=bearer(token)).text
        before = _value(
            _families(first)["http_requests"], "http_requests_total", route="/health", status="200"
        )
        # Many connections: both workers answer some (each a new connection).
        for _ in range(40):
            assert httpx.get(f"{base}/health").status_code == 200
        seen = set()
        for _ in range(20):
            r = httpx.get(f"{base}/metrics", headers=bearer(token))
            assert r.status_code == 200
            samples = _families(r.text)["http_requests"]
            seen.add(_value(samples, "http_requests_total", route="/health", status="200"))
        # Whichever worker answered the scrape, it sums both processes' counts.
        assert seen == {before + 40}


# ---------------------------------------------------------------- traces


class _Collector(BaseHTTPRequestHandler):
    spans: list = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {
                        a.key: a.value.string_value or a.value.int_value for a in span.attributes
                    }
                    _Collector.spans.append(
                        {
                            "service": service,
                            "trace_id": span.trace_id.hex(),
                            "name": span.name,
                            "attributes": attributes,
                        }
                    )
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_traces_continue_the_callers_trace(db_url, tmp_path, collector):
    env = {
        "DATABASE_URL": db_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    user, headers = _user()
    token = make_token(user)
    with running_server(env, log=tmp_path / "server.log") as base:
        r = httpx.post(
            f"{base}/graphql",
            json={"query": "query Traced { sessions { id } }"},
            headers={**headers, "traceparent": traceparent},
            timeout=10,
        )
        assert r.status_code == 200 and "errors" not in r.json()
        httpx.get(f"{base}/interview-sessions?access_token={token}", timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mine = [s for s in _Collector.spans if s["trace_id"] == trace_id]
            if any(s["attributes"].get("db.system") for s in mine):
                break
            time.sleep(0.1)
    mine = [s for s in _Collector.spans if s["trace_id"] == trace_id]
    names = {s["name"] for s in mine}
    assert "POST /graphql" in names, names
    graphql = [s for s in mine if s["attributes"].get("graphql.operation.name") == "Traced"]
    assert graphql and graphql[0]["attributes"]["graphql.operation.type"] == "query"
    statements = [s for s in mine if s["attributes"].get("db.system")]
    system = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    assert statements and all(s["attributes"]["db.system"] == system for s in statements)
    assert all(user not in s["attributes"].get("db.statement", "") for s in statements)
    assert {s["service"] for s in mine} == {"interview-api"}
    # No token in any span, and the access log carries the trace id.
    assert token not in json.dumps(_Collector.spans)
    lines = [json.loads(x) for x in (tmp_path / "server.log").read_text().splitlines() if x]
    access = [x for x in lines if x["logger"] == "app.access" and x["route"] == "/graphql"]
    assert access and access[0]["trace_id"] == trace_id


# ---------------------------------------------------------------- proxies


def _client_in_log(log: Path, request_id: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record.get("request_id") == request_id and record["logger"] == "app.access":
                return str(record["client"])
        time.sleep(0.05)
    raise AssertionError(f"no access record for {request_id}")


@pytest.mark.parametrize("allowed", ["127.0.0.1", ""])
def test_forwarded_addresses_are_believed_only_from_allowed_proxies(db_url, tmp_path, allowed):
    log = tmp_path / "server.log"
    env = {
        "DATABASE_URL": db_url,
        "FORWARDED_ALLOW_IPS": allowed,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "RATE_LIMITS": "3/minute",
    }
    query = {"query": "{ __typename }"}
    with running_server(env, log=log) as base:
        r = httpx.post(
            f"{base}/graphql",
            json=query,
            headers={"x-forwarded-for": "198.51.100.9", "x-request-id": "fwd-1"},
        )
        assert r.status_code == 200
        client = _client_in_log(log, "fwd-1")
        assert client == ("198.51.100.9" if allowed else "127.0.0.1")
        # Anonymous budgets key on that address: another forwarded client has
        # its own only when forwarded addresses are believed.
        for _ in range(2):
            httpx.post(f"{base}/graphql", json=query, headers={"x-forwarded-for": "198.51.100.9"})
        limited = httpx.post(
            f"{base}/graphql", json=query, headers={"x-forwarded-for": "198.51.100.9"}
        )
        assert limited.status_code == 429
        other = httpx.post(
            f"{base}/graphql", json=query, headers={"x-forwarded-for": "198.51.100.10"}
        )
        assert other.status_code == (200 if allowed else 429)


def test_root_path_serves_pages_assets_and_openapi_under_the_prefix(db_url, tmp_path):
    env = {"DATABASE_URL": db_url, "ROOT_PATH": "/api", "RATE_LIMITS": "1000/second"}
    _, headers = _user()
    with running_server(env, log=tmp_path / "server.log") as base:
        page = httpx.get(f"{base}/api/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200
        assets = [part.split('"')[0].split("'")[0] for part in page.text.split("/api/static/")[1:]]
        assert assets and "/static/" not in page.text.replace("/api/static/", "")
        for asset in assets:
            assert httpx.get(f"{base}/api/static/{asset}").status_code == 200, asset
        swagger = httpx.get(f"{base}/api/schema/swagger")
        assert swagger.status_code == 200 and "/api/static/" in swagger.text
        doc = httpx.get(f"{base}/api/schema/openapi.json").json()
        assert doc["servers"] == [{"url": "/api"}]
        listed = httpx.get(f"{base}/api/interview-sessions", headers=headers)
        assert listed.status_code == 200
        # A proxy that strips the prefix reaches the same routes.
        assert httpx.get(f"{base}/interview-sessions", headers=headers).status_code == 200


# ---------------------------------------------------------------- backups


def test_backup_while_serving_holds_the_data(sqlite_db_url, tmp_path):
    env = {"DATABASE_URL": sqlite_db_url, "RATE_LIMITS": "1000/second"}
    _, headers = _user()
    target = tmp_path / "backup.db"
    with running_server(env, log=tmp_path / "server.log") as base:
        ids = [
            httpx.post(
                f"{base}/interview-sessions", json={"jobContext": JOB}, headers=headers
            ).json()["id"]
            for _ in range(5)
        ]
        stop = threading.Event()

        def keep_writing() -> None:  # the backup runs beside writes
            while not stop.is_set():
                httpx.post(f"{base}/interview-sessions", json={"jobContext": JOB}, headers=headers)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            done = subprocess.run(
                [str(CLI), "backup", str(target)],
                cwd=ROOT,
                env={
                    "PATH": "/usr/bin:/bin",
                    "DATABASE_URL": sqlite_db_url,
                    "JWT_SECRET": TEST_SECRET,
                },
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            stop.set()
            writer.join()
        assert done.returncode == 0, done.stderr
    with contextlib.closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {
            row[0].replace("-", "") for row in copy.execute("SELECT id FROM interview_sessions")
        }
    assert {i.replace("-", "") for i in ids} <= stored
    again = subprocess.run(
        [str(CLI), "backup", str(target)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": sqlite_db_url, "JWT_SECRET": TEST_SECRET},
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "exists" in again.stderr  # never overwrites


def test_backup_of_postgresql_points_to_pg_dump(pg_db_url):
    done = subprocess.run(
        [str(CLI), "backup", "/tmp/never-written.db"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": pg_db_url, "JWT_SECRET": TEST_SECRET},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "pg_dump" in done.stderr


@pytest.fixture
def sqlite_db_url(sqlite_template, tmp_path) -> str:
    import shutil

    path = tmp_path / "served.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


_ = asyncio  # (the module's async tests run on pytest-asyncio's loop)
