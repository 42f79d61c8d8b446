"""`make bench`: every server side by side in one run, driven by wrk.

1. Seeds a fresh PostgreSQL database (and a SQLite file) through the service.
2. Starts, each as one process pinned to CPU 0 (wrk gets CPU 1): the service
   on PostgreSQL, the service on PostgreSQL with compiled GraphQL plans off
   (the standard Strawberry executor), the service on SQLite, the bare
   baseline (Litestar + asyncpg + msgspec), and PostGraphile v4 when npm can
   install it (into bench/.work, never committed).
3. Runs every workload against every server that has it, in interleaved
   rounds, so a noisy machine slows all of them alike; reports the median
   round per workload and server, and the ratios.

Prints a table, writes bench/results.json and refreshes the table in
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
import httpx

from app.auth import issue_token
from app.config import Settings
from bench.seed import Seeded, seed

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "interview_bench"
SECRET = "bench-secret-that-is-long-enough-for-hs256-000000"
# Every protection stays on. The rate limiter counts every request in its
# moving windows and sets its headers; the budget is sized so a load test of
# one client is not refused (the defaults would turn the run into 429s).
RATE_LIMITS = "10000000/minute;1000000/second"

SESSION_FIELDS = (
    "id userId status startedAt endedAt createdAt "
    "jobContext { title company description requirements interviewType seniority } "
    "settings { transcriptionEnabled responseGeneration confidenceThreshold "
    "preferredLanguage enabledFeatures }"
)
INTERACTION_FIELDS = (
    "id sessionId question selectedResponse userFeedback timestamp "
    "questionClassification { type category difficulty requiresSTAR } "
    "generatedResponses { id content structure estimatedDuration confidence tags }"
)
METRIC_FIELDS = (
    "id sessionId transcriptionLatencyMs responseGenerationMs totalLatencyMs "
    "transcriptionAccuracy userSatisfaction createdAt"
)
PG4_SESSION = "id userId status startedAt endedAt createdAt jobContext settings"
PG4_INTERACTION = (
    "id sessionId question questionClassification generatedResponses selectedResponse "
    "userFeedback timestamp"
)
PG4_METRIC = (
    "id sessionId transcriptionLatencyMs responseGenerationMs totalLatencyMs "
    "transcriptionAccuracy userSatisfaction createdAt"
)


@dataclass
class Request:
    method: str
    path: str
    body: str | None = None
    token: str | None = None


@dataclass
class Result:
    workload: str
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    rounds: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (Debian package)...", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is required: apt-get install wrk")
    return wrk


def ensure_postgraphile() -> Path | None:
    """PostGraphile v4 in bench/.work (gitignored), or None with a message."""
    target = WORK / "postgraphile"
    binary = target / "node_modules" / ".bin" / "postgraphile"
    if binary.exists():
        return binary
    if not shutil.which("npm") or not shutil.which("node"):
        print("PostGraphile skipped: npm/node not found", flush=True)
        return None
    target.mkdir(parents=True, exist_ok=True)
    print("installing postgraphile@4 into bench/.work ...", flush=True)
    proc = subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(target),
            "postgraphile@4",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not binary.exists():
        print(f"PostGraphile skipped: npm install failed: {proc.stderr[-500:]}", flush=True)
        return None
    return binary


async def recreate_database() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{DB_NAME}".replace("postgresql://", "postgresql+asyncpg://", 1)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early, see {log}:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start; see {log}")


class Servers:
    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.urls: dict[str, str] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], ready: str) -> None:
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in argv]
        log = WORK / f"{name}.log"
        out = self.stack.enter_context(open(log, "wb"))  # noqa: SIM115 - closed by the stack
        proc = subprocess.Popen(
            [*pinned(0), *argv],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.stack.callback(_stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + ready, proc, log)
        self.urls[name] = base
        print(f"  {name:<22} {base}", flush=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def lua_script(req: Request, name: str) -> Path:
    path = WORK / f"{name}.lua"
    lines = [f'wrk.method = "{req.method}"']
    if req.token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {req.token}"')
    if req.body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {json.dumps(req.body)}")
    path.write_text("\n".join(lines) + "\n")
    return path


_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def run_wrk(wrk: str, url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            *pinned(1),
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct, value, unit in _LAT.findall(out):
        lat[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": lat.get("50", 0.0),
        "p99": lat.get("99", 0.0),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
    }


def check(url: str, req: Request) -> None:
    """Every workload is checked once for a correct answer before it is timed."""
    headers = {"Authorization": f"Bearer {req.token}"} if req.token else {}
    if req.body is not None:
        headers["Content-Type"] = "application/json"
    r = httpx.request(req.method, url, content=req.body, headers=headers, timeout=30)
    if r.status_code >= 300 or b'"errors"' in r.content:
        raise SystemExit(f"{req.method} {url} answered {r.status_code}: {r.text[:500]}")


def gql(query: str) -> str:
    return json.dumps({"query": query})


def workloads(seeded: Seeded, tokens: dict[str, str]) -> dict[str, dict[str, Request]]:
    """workload -> server -> request. Servers absent from a workload do not run it."""
    list_user = seeded.users[0]
    t = tokens
    sessions10 = gql(f"{{ sessions(limit: 10) {{ {SESSION_FIELDS} }} }}")
    details = gql(
        f'{{ session(id: "{seeded.details_session}") {{ {SESSION_FIELDS} '
        f"interactions {{ {INTERACTION_FIELDS} }} metrics {{ {METRIC_FIELDS} }} }} }}"
    )
    batch = gql(
        f"{{ sessions(limit: 50) {{ id interactions {{ {INTERACTION_FIELDS} }} "
        f"metrics {{ {METRIC_FIELDS} }} }} }}"
    )
    pg4_list = gql(
        f"{{ allInterviewSessionsList(first: 10, orderBy: [CREATED_AT_DESC, ID_DESC], "
        f'condition: {{userId: "{list_user}"}}) {{ {PG4_SESSION} }} }}'
    )
    pg4_details = gql(
        f'{{ interviewSessionById(id: "{seeded.details_session}") {{ {PG4_SESSION} '
        f"interactionsBySessionIdList(orderBy: [TIMESTAMP_ASC, ID_ASC]) {{ {PG4_INTERACTION} }} "
        f"sessionMetricsBySessionIdList(orderBy: [CREATED_AT_ASC, ID_ASC]) {{ {PG4_METRIC} }} }} }}"
    )
    pg4_batch = gql(
        f"{{ allInterviewSessionsList(first: 50, orderBy: [CREATED_AT_DESC, ID_DESC], "
        f'condition: {{userId: "bench-batch"}}) {{ id '
        f"interactionsBySessionIdList(orderBy: [TIMESTAMP_ASC, ID_ASC]) {{ {PG4_INTERACTION} }} "
        f"sessionMetricsBySessionIdList(orderBy: [CREATED_AT_ASC, ID_ASC]) {{ {PG4_METRIC} }} }} }}"
    )
    write = json.dumps(
        {
            "sessionId": seeded.writer_session,
            "question": "What is your experience with React?",
            "questionClassification": {
                "type": "technical",
                "category": "frontend",
                "difficulty": "mid",
                "requiresSTAR": False,
            },
            "generatedResponses": [
                {
                    "id": "response-1",
                    "content": "I have 3 years of experience...",
                    "structure": "direct",
                    "estimatedDuration": 45,
                    "confidence": 0.9,
                    "tags": ["experience"],
                }
            ],
        }
    )
    ours = ("ours-pg", "ours-sqlite")
    return {
        "REST list of 10 sessions": {
            **{s: Request("GET", "/interview-sessions?limit=10", token=t[list_user]) for s in ours},
            "baseline": Request("GET", "/interview-sessions?limit=10"),
        },
        "GraphQL sessions(limit: 10)": {
            **{s: Request("POST", "/graphql", sessions10, t[list_user]) for s in ours},
            "ours-pg-standard": Request("POST", "/graphql", sessions10, t[list_user]),
            "postgraphile": Request("POST", "/graphql", pg4_list),
        },
        "REST details (20 interactions, 10 metrics)": {
            "ours-pg": Request(
                "GET",
                f"/interview-sessions/{seeded.details_session}/details",
                token=t["bench-details"],
            ),
        },
        "GraphQL details (20 interactions, 10 metrics)": {
            "ours-pg": Request("POST", "/graphql", details, t["bench-details"]),
            "ours-pg-standard": Request("POST", "/graphql", details, t["bench-details"]),
            "postgraphile": Request("POST", "/graphql", pg4_details),
        },
        "GraphQL details of 50 sessions (batched)": {
            "ours-pg": Request("POST", "/graphql", batch, t["bench-batch"]),
            "ours-pg-standard": Request("POST", "/graphql", batch, t["bench-batch"]),
            "postgraphile": Request("POST", "/graphql", pg4_batch),
        },
        "REST analytics over 105 sessions": {
            "ours-pg": Request("GET", "/interview-sessions/analytics", token=t["bench-analytics"]),
        },
        "REST create interaction (write)": {
            "ours-pg": Request(
                "POST", "/interview-sessions/interactions", write, t["bench-writer"]
            ),
        },
    }


# Which ratio each workload reports, and against what.
RATIOS = {
    "REST list of 10 sessions": ("ours-pg", "baseline", 0.8),
    "GraphQL sessions(limit: 10)": ("ours-pg", "postgraphile", 1.0),
    "GraphQL details (20 interactions, 10 metrics)": ("ours-pg", "postgraphile", None),
    "GraphQL details of 50 sessions (batched)": ("ours-pg", "postgraphile", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 5)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--warmup",
        type=int,
        default=int(os.environ.get("BENCH_WARMUP", 5)),
        help="seconds of load per job before measuring",
    )
    parser.add_argument("--no-postgraphile", action="store_true")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    pg4 = None if args.no_postgraphile else ensure_postgraphile()

    print("seeding PostgreSQL and SQLite through the service ...", flush=True)
    pg_url = asyncio.run(recreate_database())
    sqlite_path = WORK / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
    sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
    seeded = asyncio.run(seed(pg_url))
    asyncio.run(seed(sqlite_url))

    settings = Settings(jwt_secret=SECRET)
    users = [*seeded.users, "bench-details", "bench-batch", "bench-analytics", "bench-writer"]
    tokens = {u: issue_token(settings, u, ttl_seconds=3 * 3600) for u in users}
    common = {
        "JWT_SECRET": SECRET,
        "RATE_LIMITS": RATE_LIMITS,
        "LOG_LEVEL": "WARNING",
        "MAX_ACTIVE_SESSIONS": "1000000",
    }
    plain_pg = pg_url.replace("postgresql+asyncpg://", "postgresql://")

    with ExitStack() as stack:
        print("starting servers (one process each, pinned to CPU 0; wrk on CPU 1):", flush=True)
        servers = Servers(stack)
        serve = [str(BIN / "interview-api"), "serve", "--port", "{port}"]
        servers.start("ours-pg", serve, {**common, "DATABASE_URL": pg_url}, "/health")
        servers.start(
            "ours-pg-standard",
            serve,
            {**common, "DATABASE_URL": pg_url, "GRAPHQL_COMPILED": "false"},
            "/health",
        )
        servers.start("ours-sqlite", serve, {**common, "DATABASE_URL": sqlite_url}, "/health")
        servers.start(
            "baseline",
            [
                str(BIN / "uvicorn"),
                "bench.baseline:app",
                "--port",
                "{port}",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {"DATABASE_URL": plain_pg, "BASELINE_USER": seeded.users[0]},
            "/interview-sessions?limit=1",
        )
        if pg4 is not None:
            servers.start(
                "postgraphile",
                [
                    str(pg4),
                    "-c",
                    plain_pg,
                    "--port",
                    "{port}",
                    "--host",
                    "127.0.0.1",
                    "--disable-query-log",
                    "--simple-collections",
                    "both",
                    "--dynamic-json",
                ],
                {},
                "/graphql",
            )

        plan = workloads(seeded, tokens)
        jobs = []
        for wname, per_server in plan.items():
            for sname, req in per_server.items():
                if sname not in servers.urls:
                    continue
                url = servers.urls[sname] + req.path
                check(url, req)
                script = lua_script(req, f"{len(jobs)}")
                jobs.append((wname, sname, url, script))

        print(
            f"warming up, then {args.rounds} rounds of {args.seconds}s per workload ...", flush=True
        )
        for _w, _s, url, script in jobs:
            run_wrk(wrk, url, script, args.warmup, args.connections)
        samples: dict[tuple[str, str], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            # Every other round runs the jobs in reverse, so a machine that
            # drifts faster or slower during a round favours neither side.
            for wname, sname, url, script in jobs if r % 2 == 0 else jobs[::-1]:
                samples.setdefault((wname, sname), []).append(
                    run_wrk(wrk, url, script, args.seconds, args.connections)
                )
            print(f"  round {r + 1}/{args.rounds} done", flush=True)

    results = []
    for (wname, sname), runs in samples.items():
        median = sorted(runs, key=lambda x: x["rps"])[len(runs) // 2]
        results.append(
            Result(
                wname,
                sname,
                median["rps"],
                median["p50"],
                median["p99"],
                int(sum(x["non_2xx"] for x in runs)),
                [round(x["rps"], 1) for x in runs],
            )
        )
    report(results, args)


def report(results: list[Result], args: argparse.Namespace) -> None:
    by = {(r.workload, r.server): r for r in results}
    rows = []
    for r in results:
        ratio = ""
        spec = RATIOS.get(r.workload)
        if spec and r.server == spec[0] and (r.workload, spec[1]) in by:
            other = by[(r.workload, spec[1])]
            # Paired: each round's ratio (the two ran back to back), then the
            # median, so a slow stretch of the machine cancels out.
            value = statistics.median(a / b for a, b in zip(r.rounds, other.rounds, strict=True))
            target = f" (target >= {spec[2]:.1f})" if spec[2] else ""
            ratio = f"{value:.2f}x {spec[1]}{target}"
        rows.append(
            (
                r.workload,
                r.server,
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                ratio,
                str(r.non_2xx),
            )
        )
    header = ("workload", "server", "req/s", "p50 ms", "p99 ms", "ratio", "non-2xx")
    widths = [max(len(str(x[i])) for x in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    table = "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"median of {args.rounds} rounds x {args.seconds}s, wrk -t1 -c{args.connections}"
    )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print()
    print(table)
    print(f"\n{machine}; {stamp}")
    (ROOT / "bench" / "results.json").write_text(
        json.dumps(
            {"when": stamp, "machine": machine, "results": [asdict(r) for r in results]}, indent=2
        )
        + "\n"
    )
    readme = ROOT / "bench" / "README.md"
    if readme.exists():
        text = readme.read_text()
        block = f"<!-- results -->\n{table}\n\n{machine}; {stamp}\n<!-- /results -->"
        text = re.sub(r"<!-- results -->.*?<!-- /results -->", lambda _m: block, text, flags=re.S)
        readme.write_text(text)


if __name__ == "__main__":
    main()
