"""Where one GraphQL read's server CPU goes, layer by layer.

    python -m bench.breakdown   # ~10 minutes; writes bench/.work/breakdown.json

`make bench` says how fast each read is against PostGraphile; this says what
the time of ours is made of, so a gap can be argued from figures, not guessed.
It seeds the bench database (as `bench.run` does: do not run both at once)
and measures, for `bench.run`'s GraphQL list, filtered connection page and
details, CPU time per request (user + system, every thread of the process):

Over HTTP (each server one process pinned to CPU 0, wrk -c32 on CPU 1):
* **server**: ours, as `bench.run` measures it (access log and metrics on);
* **`{ __typename }`**: the same server answering the smallest query (the
  pipeline and the endpoint, no resolver, no database);
* **HTTP floor**: a bare ASGI app under the same uvicorn (httptools,
  uvloop) giving every request our answer (status, headers, body) and doing
  nothing else, with our protocol (app/serving.py) and with uvicorn's;
* **PostGraphile v5**, when it is installed in bench/.work (`bench.run`
  installs it): the budget a ratio is measured against.

In one process (no sockets; 32 requests in flight, as wrk's 32 connections):
* **whole request**: the app's ASGI callable, the same request;
* **`{ __typename }`**: likewise;
* **without the database read**: the whole request, each database read
  answered with the result the real read returned once (``Database.read``
  replaced): the pipeline, the endpoint, the plan, the domain, the builders
  and the JSON, without the data layer or the driver;
* **the database read**: the request's own units of work run again through
  ``Database.read`` (pool, deadline, retry rule, executor, row mapping);
* **the driver alone**: the statements those reads sent, replayed on
  ``DB_POOL_SIZE`` raw asyncpg connections opened with the read settings
  (custom plans; where the app switches a connection to generic plans,
  the difference is PostgreSQL's planning, not the server's CPU).

The rows of the printed table subtract these: the pipeline and endpoint,
the GraphQL layers over them, the data layer over the driver, the driver,
and what is in no one layer: the whole request costs more than its parts run
apart, in process and again over HTTP (the price of 32 requests' work
interleaved on one core: caches, the event loop's turns; bench/README.md).
The parts add up to the server's figure. Every measurement is taken once
per round, in BENCH_BREAKDOWN_ROUNDS (5) rounds; the table shows medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from bench.run import (
    BIN,
    SECRET,
    SERVER_ENV,
    WORK,
    Request,
    Servers,
    bench_tokens,
    cpu_per_request,
    ensure_postgraphile5,
    ensure_wrk,
    gql,
    lua_script,
    pinned,
    quiet,
    recreate_database,
    run_wrk,
    start_postgraphile5,
    workloads,
)
from bench.seed import seed

WORKLOADS = (
    "GraphQL sessions(limit: 10)",
    "GraphQL filtered connection page",
    "GraphQL details (20 interactions, 10 metrics)",
)
TYPENAME = gql("{ __typename }")
IN_FLIGHT = 32
REQUESTS = int(os.environ.get("BENCH_BREAKDOWN_REQUESTS", 6000))
ROUNDS = int(os.environ.get("BENCH_BREAKDOWN_ROUNDS", 5))
SECONDS = 5
WARMUP = 5  # as bench.run's: PostGraphile's JIT needs it


# ---------------------------------------------------------------- in one process


async def _in_process(spec: dict[str, Any]) -> dict[str, dict[str, float]]:
    """CPU per request of every in-process measurement (see the module doc)."""
    from asgi_lifespan import LifespanManager

    from app.main import create_app_from_env

    app = create_app_from_env()
    async with LifespanManager(app):
        return await _measure(app, spec)


async def _measure(app: Any, spec: dict[str, Any]) -> dict[str, dict[str, float]]:
    service = app.app.state.service  # the Litestar app's: both faces use it

    def asgi_request(body: bytes, token: str) -> Any:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]

        async def one() -> None:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/graphql",
                "raw_path": b"/graphql",
                "query_string": b"",
                "root_path": "",
                "headers": list(headers),
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 80),
                "state": {},
            }
            given = False
            status: list[int] = []

            async def receive() -> dict[str, Any]:
                nonlocal given
                if not given:
                    given = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.Event().wait()  # (never: the body came whole)
                raise AssertionError

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(scope, receive, send)
            if status != [200]:
                raise RuntimeError(f"the request answered {status}")

        return one

    results: dict[str, dict[str, float]] = {}
    for name, (body_text, token) in spec["workloads"].items():
        request = asgi_request(body_text.encode(), token)
        typename = asgi_request(TYPENAME.encode(), token)
        results[name] = await _layers(name, request, typename, service, spec)
    return results


async def _layers(
    name: str, request: Any, typename: Any, service: Any, spec: dict[str, Any]
) -> dict[str, float]:
    import asyncpg

    from app.db.postgres import READ_SETTINGS

    database_class = type(service.db)
    real_read = database_class.read
    real_fetch = asyncpg.Connection.fetch
    # One real request, recording its reads (the unit of work and what it
    # returned) and the statements they sent.
    reads: list[tuple[Any, dict[str, Any], Any]] = []
    statements: list[tuple[str, tuple[Any, ...]]] = []
    inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)

    async def recording_read(self: Any, work: Any, **kwargs: Any) -> Any:
        token = inside.set(True)
        try:
            result = await real_read(self, work, **kwargs)
        finally:
            inside.reset(token)
        reads.append((work, kwargs, result))
        return result

    async def recording_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if inside.get():  # (not the pool's pings, the readiness probe...)
            statements.append((query, args))
        return await real_fetch(self, query, *args, **kwargs)

    database_class.read = recording_read
    asyncpg.Connection.fetch = recording_fetch  # type: ignore[method-assign]
    try:
        await request()
    finally:
        database_class.read = real_read
        asyncpg.Connection.fetch = real_fetch  # type: ignore[method-assign]
    if not reads or not statements:
        raise RuntimeError(f"{name}: no database read recorded (Database.read not patched?)")
    answers = {getattr(w, "__qualname__", repr(w)): r for w, _k, r in reads}

    async def cached_read(self: Any, work: Any, **kwargs: Any) -> Any:
        result = answers[getattr(work, "__qualname__", repr(work))]
        return list(result) if isinstance(result, list) else result

    async def without_database() -> None:
        database_class.read = cached_read
        try:
            await request()
        finally:
            database_class.read = real_read

    async def the_reads() -> None:
        for work, kwargs, _result in reads:
            await service.db.read(work, **kwargs)

    raw = [
        await asyncpg.connect(spec["dsn"], server_settings=READ_SETTINGS)
        for _ in range(spec["pool_size"])
    ]
    free: asyncio.Queue[Any] = asyncio.Queue()
    for conn in raw:
        free.put_nowait(conn)

    async def driver() -> None:
        conn = await free.get()
        try:
            for query, args in statements:
                await conn.fetch(query, *args)
        finally:
            free.put_nowait(conn)

    try:
        return {
            "whole": await _cpu_per_call(request),
            "typename": await _cpu_per_call(typename),
            "no_database": await _cpu_per_call(without_database),
            "reads": await _cpu_per_call(the_reads),
            "driver": await _cpu_per_call(driver),
            "statements": float(len(statements)),
        }
    finally:
        for conn in raw:
            await conn.close()


async def _cpu_per_call(call: Any) -> float:
    """The process's CPU microseconds per call, with IN_FLIGHT calls running
    at a time (after a warm-up)."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(worker(30) for _ in range(IN_FLIGHT)))
    started = time.process_time()
    await asyncio.gather(*(worker(REQUESTS // IN_FLIGHT) for _ in range(IN_FLIGHT)))
    return (time.process_time() - started) / REQUESTS * 1e6


# ---------------------------------------------------------------- the uvicorn floor


def floor_app() -> Any:
    """A bare ASGI app giving every request, after reading its body, the
    answer our server gave (BENCH_FLOOR_BODY: a file of its body, with its
    headers in the file's ``.headers`` twin): uvicorn's own cost per request."""
    answer_file = Path(os.environ["BENCH_FLOOR_BODY"])
    answer = answer_file.read_bytes()
    headers = json.loads(Path(f"{answer_file}.headers").read_text())
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    }
    body = {"type": "http.response.body", "body": answer}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(start)
        await send(body)

    return app


# ---------------------------------------------------------------- the run


_WARM: set[tuple[str, str]] = set()


def _over_http(wrk: str, url: str, pid: int, req: Request, name: str) -> float:
    """The server's CPU microseconds per request over one wrk run (warmed up
    the first time)."""
    script = lua_script(req, f"breakdown-{name}")
    if (url, req.body or "") not in _WARM:
        _WARM.add((url, req.body or ""))
        run_wrk(wrk, url + req.path, script, WARMUP, IN_FLIGHT)
    quiet()
    run = lambda: run_wrk(wrk, url + req.path, script, SECONDS, IN_FLIGHT)  # noqa: E731
    return cpu_per_request(pid, run, SECONDS)["server_us"]


# uvicorn's own protocol, and ours (app/serving.py: the head and body
# guards, the connection cap, the held first write) around the bare app.
FLOORS = (("http_floor", "httptools"), ("http_floor_ours", "app.serving:GuardedHttpToolsProtocol"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--in-process", help=argparse.SUPPRESS)  # the child's spec file
    args = parser.parse_args()
    if args.in_process:
        import uvloop

        spec = json.loads(Path(args.in_process).read_text())
        print(json.dumps(uvloop.run(_in_process(spec))))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    pg5 = ensure_postgraphile5()
    print("breakdown: seeding PostgreSQL ...", flush=True)
    pg_url = asyncio.run(recreate_database())
    seeded = asyncio.run(seed(pg_url))
    plan = workloads(seeded, bench_tokens(seeded), seeded)
    ours = {w: plan[w]["ours-pg"] for w in WORKLOADS}
    env = {**SERVER_ENV, "DATABASE_URL": pg_url}
    spec_file = WORK / "breakdown-spec.json"
    plain_pg = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    in_process = {
        "workloads": {w: (r.body, r.token) for w, r in ours.items()},
        "dsn": plain_pg,
        "pool_size": Settings(jwt_secret=SECRET, database_url=pg_url).db_pool_size,
    }
    spec_file.write_text(json.dumps(in_process))
    spec = str(spec_file)
    samples: dict[str, dict[str, list[float]]] = {w: {} for w in WORKLOADS}

    def add(w: str, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            samples[w].setdefault(key, []).append(value)

    with ExitStack() as stack:
        print("breakdown: starting the servers ...", flush=True)
        servers = Servers(stack)
        serve = [str(BIN / "interview-api"), "serve", "--port", "{port}"]
        servers.start("ours-pg", serve, env, "/health")
        url, pid = servers.urls["ours-pg"], servers.pids["ours-pg"]
        floors: dict[tuple[str, str], tuple[str, int]] = {}
        for n, (w, req) in enumerate(ours.items()):
            headers = {"authorization": f"Bearer {req.token}", "content-type": "application/json"}
            headers["accept-encoding"] = "identity"  # as wrk asks
            body_file = WORK / f"breakdown-answer-{n}.json"
            answer = httpx.post(url + req.path, content=req.body, headers=headers)
            body_file.write_bytes(answer.content)
            # Its headers but those uvicorn writes itself.
            kept = [(k, v) for k, v in answer.headers.items() if k not in ("date", "server")]
            Path(f"{body_file}.headers").write_text(json.dumps(kept))
            for floor_name, protocol in FLOORS:
                argv = [str(BIN / "uvicorn"), "bench.breakdown:floor_app", "--factory"]
                argv += ["--port", "{port}", "--http", protocol, "--loop", "uvloop"]
                argv += ["--log-level", "warning", "--no-access-log"]
                name = f"floor-{n}-{floor_name}"
                # (our protocol reads its limits from the server's settings)
                servers.start(name, argv, {**env, "BENCH_FLOOR_BODY": str(body_file)}, "/")
                floors[w, floor_name] = servers.urls[name], servers.pids[name]
        if pg5 is not None:
            start_postgraphile5(servers, pg5, plain_pg)
        # Rounds: everything once per round, so what one round's machine
        # does to a measurement it does to the ones it is subtracted from.
        for r in range(ROUNDS):
            print(f"breakdown: round {r + 1}/{ROUNDS}: in one process ...", flush=True)
            with open(WORK / "breakdown-in-process.log", "wb") as log:  # its access log
                out = subprocess.run(
                    [*pinned(0), sys.executable, "-m", "bench.breakdown", "--in-process", spec],
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    check=True,
                ).stdout
            for w, figures in json.loads(out.strip().splitlines()[-1]).items():
                add(w, figures)
            print(f"breakdown: round {r + 1}/{ROUNDS}: over HTTP (wrk -c32) ...", flush=True)
            for w, req in ours.items():
                small = Request("POST", "/graphql", TYPENAME, req.token)
                figures = {
                    "http_server": _over_http(wrk, url, pid, req, "server"),
                    "http_typename": _over_http(wrk, url, pid, small, "typename"),
                }
                for floor_name, _protocol in FLOORS:
                    floor_url, floor_pid = floors[w, floor_name]
                    figures[floor_name] = _over_http(wrk, floor_url, floor_pid, req, "floor")
                theirs = plan[w].get("postgraphile5")
                if "postgraphile5" in servers.urls and theirs is not None:
                    url5, pid5 = servers.urls["postgraphile5"], servers.pids["postgraphile5"]
                    figures["http_postgraphile5"] = _over_http(wrk, url5, pid5, theirs, "pg5")
                add(w, figures)

    report = {
        w: {key: statistics.median(values) for key, values in per.items()}
        for w, per in samples.items()
    }
    kept = {"medians": report, "rounds": samples}
    (WORK / "breakdown.json").write_text(json.dumps(kept, indent=1))
    print(table(report))


ROWS = (
    ("server over HTTP (as bench.run measures it)", lambda f: f["http_server"]),
    ("  HTTP floor: a bare ASGI app, our answer, our protocol", lambda f: f["http_floor_ours"]),
    ("    of which with uvicorn's own protocol", lambda f: f["http_floor"]),
    ("  pipeline and endpoint (`{ __typename }`, in process)", lambda f: f["typename"]),
    ("  GraphQL plan, domain, builders, JSON (without the read - typename)", None),
    ("  data layer over the driver (the reads - the driver alone)", None),
    ("  the driver alone (asyncpg, same statements, 10 connections)", lambda f: f["driver"]),
    ("  in no one layer, in process (whole - without the read - the reads)", None),
    ("  in no one layer, over HTTP (server - whole request - the floor)", None),
    ("`{ __typename }` over HTTP", lambda f: f["http_typename"]),
    ("  in no one layer (over HTTP - in process - the floor)", None),
    ("PostGraphile v5 over HTTP", lambda f: f.get("http_postgraphile5")),
    ("  ours at 1.5x v5 would spend at most", None),
    ("  ours at 2.0x v5 would spend at most", None),
)


def _derived(label: str, f: dict[str, float]) -> float | None:
    if label.startswith("  in no one layer, over HTTP"):
        return f["http_server"] - f["whole"] - f["http_floor_ours"]
    if label.startswith("  in no one layer (over HTTP"):
        return f["http_typename"] - f["typename"] - f["http_floor_ours"]
    if label.startswith("  GraphQL plan"):
        return f["no_database"] - f["typename"]
    if label.startswith("  data layer"):
        return f["reads"] - f["driver"]
    if label.startswith("  in no one layer, in process"):
        return f["whole"] - f["no_database"] - f["reads"]
    v5 = f.get("http_postgraphile5")
    if v5 is None:
        return None
    return v5 / (1.5 if "1.5x" in label else 2.0)


def table(report: dict[str, dict[str, float]]) -> str:
    """The report as a markdown table: server CPU microseconds per request."""
    names = list(report)
    lines = [
        "| server CPU per request (us) | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for label, get in ROWS:
        cells = []
        for w in names:
            f = report[w]
            value = get(f) if get is not None else _derived(label, f)
            cells.append("—" if value is None else f"{value:,.0f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
