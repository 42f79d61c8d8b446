"""`make bench`: every server side by side in one run, driven by wrk.

1. Seeds a fresh PostgreSQL database (and a SQLite file) through the service.
2. Starts, each as one process pinned to CPU 0 (wrk gets CPU 1): the service
   on PostgreSQL, the service on PostgreSQL with compiled GraphQL plans off
   (the standard Strawberry executor), the service on SQLite, the bare
   baseline (Litestar + asyncpg + msgspec), and PostGraphile v4 and v5 when
   npm can install them (into bench/.work, never committed; v5 runs on the
   Node 22 of the npm package `node@22`, installed beside it).
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
import uuid
from collections.abc import Callable, Sequence
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
    keyed: bool = False  # a fresh Idempotency-Key on every request
    # FRESH_ID in the body becomes a new UUID on every request (PostGraphile's
    # inserts take the primary key from the client).


FRESH_ID = "@FRESH-ID@"
# PostGraphile's fastest equivalent form: simple lists, JSON passed through.
PG4_FLAGS = ("--simple-collections", "both", "--dynamic-json")
# The references: PostGraphile v4 and v5 (v5 with the v4 preset answers the
# same query documents, so both get the same requests).
POSTGRAPHILES = ("postgraphile", "postgraphile5")
# A second v5 process whose connections (application_name) fire the triggers
# of bench/same_work.sql: its inserts also write the rollup, the event counter,
# the live event and a notification, as ours do. Only the writes go to it.
SAME_WORK = "postgraphile5-same-work"
SAME_WORK_APP = "bench_same_work"
# PostGraphile v5 needs Node >= 22 (on Node 20 every query fails); the npm
# package `node@22` puts a Node 22 binary into node_modules/.bin beside it.
PG5_PACKAGES = ("postgraphile@5", "node@22")
# v5's equivalent of PG4_FLAGS: the Amber preset with the v4 preset's simple
# lists and JSON passed through (and v4's field names: allInterviewSessionsList,
# interviewSessionById, interactionsBySessionIdList). grafserv.port comes from
# the command line (--port), as the other servers' ports do.
PG5_PRESET = 'makeV4Preset({ simpleCollections: "both", dynamicJson: true })'
PG5_CONFIG = """\
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makeV4Preset } from "postgraphile/presets/v4";
import { makePgService } from "postgraphile/adaptors/pg";

export default {
  extends: [PostGraphileAmberPreset, %(preset)s],
  pgServices: [makePgService({ connectionString: %(dsn)s, schemas: ["public"] })],
  grafserv: { host: "127.0.0.1" },
};
"""


@dataclass
class Result:
    workload: str
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    rounds: list[float] = field(default_factory=list)
    p99_rounds: list[float] = field(default_factory=list)
    # CPU time per answered request in the median round (microseconds): the
    # server process's (all its threads) and every PostgreSQL process's.
    server_us: float | None = None
    postgres_us: float | None = None


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


def _npm_install(target: Path, packages: Sequence[str], label: str) -> bool:
    """npm install ``packages`` into ``target`` (in bench/.work, gitignored);
    False, with a message, where npm cannot."""
    if not shutil.which("npm") or not shutil.which("node"):
        print(f"{label} skipped: npm/node not found", flush=True)
        return False
    target.mkdir(parents=True, exist_ok=True)
    print(f"installing {' '.join(packages)} into bench/.work ...", flush=True)
    proc = subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(target),
            *packages,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        print(f"{label} skipped: npm install failed: {proc.stderr[-500:]}", flush=True)
        return False
    return True


def ensure_postgraphile() -> Path | None:
    """PostGraphile v4 in bench/.work (gitignored), or None with a message."""
    target = WORK / "postgraphile"
    binary = target / "node_modules" / ".bin" / "postgraphile"
    if binary.exists():
        return binary
    if not _npm_install(target, ["postgraphile@4"], "PostGraphile"):
        return None
    if not binary.exists():
        print("PostGraphile skipped: npm installed no postgraphile binary", flush=True)
        return None
    return binary


@dataclass
class Pg5:
    """PostGraphile v5 as installed: its CLI, the Node 22 it runs on, versions."""

    binary: Path
    bin_dir: Path  # node_modules/.bin: first on PATH, so `node` is Node 22
    version: str
    node_version: str


def ensure_postgraphile5() -> Pg5 | None:
    """PostGraphile v5 and Node 22 (npm packages `postgraphile@5`, `node@22`)
    in bench/.work/postgraphile5 (gitignored), or None with a message."""
    target = WORK / "postgraphile5"
    bin_dir = target / "node_modules" / ".bin"
    binary, node = bin_dir / "postgraphile", bin_dir / "node"
    if not (binary.exists() and node.exists()) and not _npm_install(
        target, PG5_PACKAGES, "PostGraphile v5"
    ):
        return None
    if not (binary.exists() and node.exists()):
        print("PostGraphile v5 skipped: npm installed no postgraphile or node binary", flush=True)
        return None
    try:
        node_version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        major = int(node_version.lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"PostGraphile v5 skipped: its Node does not run: {exc}", flush=True)
        return None
    if major < 22:
        print(f"PostGraphile v5 skipped: it needs Node >= 22, npm gave {node_version}", flush=True)
        return None
    package = json.loads((target / "node_modules" / "postgraphile" / "package.json").read_text())
    return Pg5(binary, bin_dir, package["version"], node_version)


def pg5_config(dsn: str, name: str = "postgraphile5") -> Path:
    """graphile.config.mjs for PostGraphile v5 on ``dsn`` (beside its install,
    so its imports resolve to that node_modules), one per server name."""
    path = WORK / "postgraphile5" / f"{name}.graphile.config.mjs"
    path.write_text(PG5_CONFIG % {"preset": PG5_PRESET, "dsn": json.dumps(dsn)})
    return path


def start_postgraphile5(servers: Servers, pg5: Pg5, dsn: str, name: str = "postgraphile5") -> None:
    """PostGraphile v5 on ``dsn`` (a plain postgresql:// URL) as ``name``."""
    # Node 22 first on PATH: the CLI's `#!/usr/bin/env node` finds it.
    path = f"{pg5.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    servers.start(
        name,
        [str(pg5.binary), "-C", str(pg5_config(dsn, name)), "--port", "{port}"],
        {"NODE_ENV": "production", "PATH": path},
        "/graphql",
        cwd=WORK / "postgraphile5",
    )


# Every ours-* server's environment (plus DATABASE_URL).
SERVER_ENV = {
    "JWT_SECRET": SECRET,
    "RATE_LIMITS": RATE_LIMITS,
    # Operations on, as in production: the access log (at INFO, to the
    # server's log file) and the metrics; "ours-pg-quiet" has neither.
    "LOG_LEVEL": "INFO",
    "MAX_ACTIVE_SESSIONS": "1000000",
}


def bench_tokens(seeded: Seeded) -> dict[str, str]:
    """A token for each user the workloads read or write as."""
    settings = Settings(jwt_secret=SECRET)
    users = [*seeded.users, "bench-details", "bench-batch", "bench-analytics", "bench-writer"]
    return {u: issue_token(settings, u, ttl_seconds=3 * 3600) for u in users}


async def install_same_work(dsn: str) -> None:
    """bench/same_work.sql's triggers in the bench database (a plain postgresql:// URL)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute((ROOT / "bench" / "same_work.sql").read_text())
    finally:
        await conn.close()


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
    def __init__(self, stack: ExitStack, wanted: set[str] | None = None) -> None:
        self.stack = stack
        self.urls: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.wanted = wanted

    def start(
        self, name: str, argv: list[str], env: dict[str, str], ready: str, cwd: Path = ROOT
    ) -> None:
        if self.wanted is not None and name not in self.wanted:
            return
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in argv]
        log = WORK / f"{name}.log"
        out = self.stack.enter_context(open(log, "wb"))  # noqa: SIM115 - closed by the stack
        proc = subprocess.Popen(
            [*pinned(0), *argv],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.stack.callback(_stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + ready, proc, log)
        self.urls[name] = base
        self.pids[name] = proc.pid
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
    if req.body is not None and FRESH_ID in req.body:
        before, after = req.body.split(FRESH_ID, 1)
        lines += [
            # Seeded from /dev/urandom: two runs in the same second never
            # insert the same primary key.
            'local f = io.open("/dev/urandom", "rb")',
            "local b = { f:read(4):byte(1, 4) }",
            "f:close()",
            "math.randomseed(((b[1] * 256 + b[2]) * 256 + b[3]) * 256 + b[4])",
            "local function uuid()",
            '  return (("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"):gsub("[xy]", function(c)',
            '    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)',
            '    return string.format("%x", v)',
            "  end))",
            "end",
            f"local before = {json.dumps(before)}",
            f"local after = {json.dumps(after)}",
            "request = function()",
            "  return wrk.format(nil, nil, nil, before .. uuid() .. after)",
            "end",
        ]
    if req.keyed:
        lines += [
            "local n = 0",
            'local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))',
            "request = function()",
            "  n = n + 1",
            '  wrk.headers["Idempotency-Key"] = prefix .. "-" .. n',
            "  return wrk.format()",
            "end",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _cpu_busy() -> tuple[int, int]:
    """The machine's busy and total CPU time so far (jiffies, all CPUs)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # (less idle and iowait)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system, every thread) a process has used so far
    (0 when it is gone or /proc is not there), with ``children`` also that of
    its children that have exited. ``taskset`` execs the server, so the pid
    is the server's own."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def _postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process (backends, the
    WAL writer, autovacuum...), shared by all servers: measured around one
    wrk run at a time, it is that run's database cost. A backend or
    autovacuum worker that exits meanwhile is counted by its parent, the
    postmaster (the children's times of every ``postgres`` process)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _process_cpu(int(entry.name), children=True)
            except OSError:
                continue
    return total


def cpu_per_request(
    pid: int | None, run: Callable[[], dict[str, float]], seconds: int
) -> dict[str, float]:
    """``run()`` (one wrk run) with the server's and PostgreSQL's CPU time per
    answered request added (microseconds): where a request's cost is, by side."""
    if pid is None or not Path("/proc").exists():
        return run()
    server, database = _process_cpu(pid), _postgres_cpu()
    result = run()
    requests = max(result["rps"] * seconds, 1.0)
    result["server_us"] = (_process_cpu(pid) - server) / requests * 1e6
    result["postgres_us"] = (_postgres_cpu() - database) / requests * 1e6
    return result


def quiet(limit: float = 5.0) -> None:
    """Wait, at most ``limit`` seconds, until the machine is idle (under 5%
    busy for a quarter of a second). wrk stops with requests in flight, and a
    write workload leaves PostgreSQL work behind it (autovacuum of the rows
    it added, dirty pages to write out): without the wait, the job after a
    write workload pays for it, and in every round the same ones follow one."""
    if not Path("/proc/stat").exists():
        return
    deadline = time.monotonic() + limit
    busy, total = _cpu_busy()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now_busy, now_total = _cpu_busy()
        if now_total > total and (now_busy - busy) / (now_total - total) < 0.05:
            return
        busy, total = now_busy, now_total


def wrk_output(
    wrk: str, url: str, script: Path, seconds: int, connections: int, *extra: str
) -> str:
    """wrk's report of one run (one thread pinned to CPU 1, latency percentiles)."""
    argv = [*pinned(1), wrk, "-t1", f"-c{connections}", f"-d{seconds}s", *extra, "--latency"]
    return subprocess.run(
        [*argv, "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout


def rps_and_latency(out: str) -> tuple[float, dict[str, float]]:
    """Requests per second and the p50/p99 latencies (ms) of a wrk report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return rps, {pct: float(value) * units[unit] for pct, value, unit in _LAT.findall(out)}


def run_wrk(wrk: str, url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = wrk_output(wrk, url, script, seconds, connections)
    rps, lat = rps_and_latency(out)
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
    if req.keyed:
        headers["Idempotency-Key"] = f"check-{time.time()}"
    body = req.body.replace(FRESH_ID, str(uuid.uuid4())) if req.body else req.body
    r = httpx.request(req.method, url, content=body, headers=headers, timeout=30)
    if r.status_code >= 300 or b'"errors"' in r.content:
        raise SystemExit(f"{req.method} {url} answered {r.status_code}: {r.text[:500]}")


def gql(query: str) -> str:
    return json.dumps({"query": query})


def workloads(
    seeded: Seeded, tokens: dict[str, str], seeded_sqlite: Seeded
) -> dict[str, dict[str, Request]]:
    """workload -> server -> request. Servers absent from a workload do not run it."""
    details_of = {"ours-pg": seeded.details_session, "ours-sqlite": seeded_sqlite.details_session}
    list_user = seeded.users[0]
    t = tokens
    sessions10 = gql(f"{{ sessions(limit: 10) {{ {SESSION_FIELDS} }} }}")

    def details_query(session_id: str) -> str:
        return gql(
            f'{{ session(id: "{session_id}") {{ {SESSION_FIELDS} '
            f"interactions {{ {INTERACTION_FIELDS} }} metrics {{ {METRIC_FIELDS} }} }} }}"
        )

    details = details_query(seeded.details_session)
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
    list_filtered = gql(
        "{ sessionsConnection(first: 10, filter: {status: [PAUSED]}) "
        f"{{ edges {{ node {{ {SESSION_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
    # The peers' equivalent answer: their connection, with the same edges and
    # pageInfo (its end cursor, and one row more read to know hasNextPage).
    pg4_connection_filtered = gql(
        f"{{ allInterviewSessions(first: 10, orderBy: [CREATED_AT_DESC, ID_DESC], "
        f'condition: {{userId: "{list_user}", status: "paused"}}) '
        f"{{ edges {{ node {{ {PG4_SESSION} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
    # Their fastest answer to the same filter: a simple list, no cursors, no pageInfo.
    pg4_list_filtered = gql(
        f"{{ allInterviewSessionsList(first: 10, orderBy: [CREATED_AT_DESC, ID_DESC], "
        f'condition: {{userId: "{list_user}", status: "paused"}}) {{ {PG4_SESSION} }} }}'
    )
    classification = {
        "type": "technical",
        "category": "frontend",
        "difficulty": "mid",
        "requiresSTAR": False,
    }
    response = {
        "id": "response-1",
        "content": "I have 3 years of experience...",
        "structure": "direct",
        "estimatedDuration": 45,
        "confidence": 0.9,
        "tags": ["experience"],
    }
    question = "What is your experience with React?"
    gql_write = json.dumps(
        {
            "query": "mutation($i: CreateInteractionInput!) "
            "{ createInteraction(input: $i) { id } }",
            "variables": {
                "i": {
                    "sessionId": seeded.writer_session,
                    "question": question,
                    "questionClassification": {
                        "type": "TECHNICAL",
                        "category": "frontend",
                        "difficulty": "MID",
                        "requiresSTAR": False,
                    },
                    "generatedResponses": [{**response, "structure": "DIRECT"}],
                }
            },
        }
    )
    pg4_write = json.dumps(
        {
            "query": "mutation($i: CreateInteractionInput!) "
            "{ createInteraction(input: $i) { interaction { id } } }",
            "variables": {
                "i": {
                    "interaction": {
                        "id": FRESH_ID,
                        "sessionId": seeded.writer_session,
                        "question": question,
                        "questionClassification": classification,
                        "generatedResponses": [response],
                        "timestamp": "2026-11-27T10:00:00Z",
                    }
                }
            },
        }
    )
    metric = {
        "transcriptionLatencyMs": 120,
        "responseGenerationMs": 340,
        "totalLatencyMs": 460,
        "transcriptionAccuracy": 0.93,
        "userSatisfaction": 4,
    }
    gql_metric = json.dumps(
        {
            "query": "mutation($i: RecordMetricsInput!) { recordMetrics(input: $i) { id } }",
            "variables": {"i": {"sessionId": seeded.writer_session, **metric}},
        }
    )
    pg4_metric = json.dumps(
        {
            "query": "mutation($i: CreateSessionMetricInput!) "
            "{ createSessionMetric(input: $i) { sessionMetric { id } } }",
            "variables": {
                "i": {
                    "sessionMetric": {
                        "id": FRESH_ID,
                        "sessionId": seeded.writer_session,
                        "createdAt": "2026-11-27T10:00:00Z",
                        **metric,
                    }
                }
            },
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
            "ours-pg-quiet": Request("POST", "/graphql", sessions10, t[list_user]),
            **{s: Request("POST", "/graphql", pg4_list) for s in POSTGRAPHILES},
        },
        "GraphQL filtered connection page": {
            **{s: Request("POST", "/graphql", list_filtered, t[list_user]) for s in ours},
            **{s: Request("POST", "/graphql", pg4_connection_filtered) for s in POSTGRAPHILES},
        },
        "GraphQL filtered page, peers' simple list": {
            "ours-pg": Request("POST", "/graphql", list_filtered, t[list_user]),
            **{s: Request("POST", "/graphql", pg4_list_filtered) for s in POSTGRAPHILES},
        },
        "REST details (20 interactions, 10 metrics)": {
            s: Request(
                "GET",
                f"/interview-sessions/{details_of[s]}/details",
                token=t["bench-details"],
            )
            for s in ours
        },
        "GraphQL details (20 interactions, 10 metrics)": {
            **{
                s: Request("POST", "/graphql", details_query(details_of[s]), t["bench-details"])
                for s in ours
            },
            "ours-pg-standard": Request("POST", "/graphql", details, t["bench-details"]),
            "ours-pg-quiet": Request(
                "POST", "/graphql", details_query(details_of["ours-pg"]), t["bench-details"]
            ),
            **{s: Request("POST", "/graphql", pg4_details) for s in POSTGRAPHILES},
        },
        "GraphQL details of 50 sessions (batched)": {
            "ours-pg": Request("POST", "/graphql", batch, t["bench-batch"]),
            "ours-pg-standard": Request("POST", "/graphql", batch, t["bench-batch"]),
            **{s: Request("POST", "/graphql", pg4_batch) for s in POSTGRAPHILES},
        },
        "REST analytics over 105 sessions": {
            "ours-pg": Request("GET", "/interview-sessions/analytics", token=t["bench-analytics"]),
        },
        "REST create interaction (write)": {
            "ours-pg": Request(
                "POST", "/interview-sessions/interactions", write, t["bench-writer"]
            ),
            # The same write with an Idempotency-Key (a new one each time): the
            # key's row in the transaction, and the answer stored after it.
            "ours-pg+key": Request(
                "POST", "/interview-sessions/interactions", write, t["bench-writer"], keyed=True
            ),
        },
        "GraphQL createInteraction (write)": {
            "ours-pg": Request("POST", "/graphql", gql_write, t["bench-writer"]),
            **{s: Request("POST", "/graphql", pg4_write) for s in (*POSTGRAPHILES, SAME_WORK)},
        },
        "GraphQL recordMetrics (write)": {
            "ours-pg": Request("POST", "/graphql", gql_metric, t["bench-writer"]),
            **{s: Request("POST", "/graphql", pg4_metric) for s in (*POSTGRAPHILES, SAME_WORK)},
        },
    }


# Which ratios each workload's table row shows: (server, against, target).
RATIOS: dict[str, list[tuple[str, str, float]]] = {
    "REST list of 10 sessions": [("ours-pg", "baseline", 0.9)],
    **{
        w: [("ours-pg", pg, 1.5) for pg in POSTGRAPHILES]
        for w in [
            "GraphQL sessions(limit: 10)",
            "GraphQL filtered connection page",
            "GraphQL filtered page, peers' simple list",
            "GraphQL details (20 interactions, 10 metrics)",
            "GraphQL details of 50 sessions (batched)",
        ]
    },
    # Keyed writes at most 15% slower than unkeyed: req/s ratio >= 1 / 1.15.
    "REST create interaction (write)": [("ours-pg+key", "ours-pg", 0.87)],
    **{
        w: [("ours-pg", pg, 1.0) for pg in (*POSTGRAPHILES, SAME_WORK)]
        for w in ["GraphQL createInteraction (write)", "GraphQL recordMetrics (write)"]
    },
}
GRAPHQL_READS = [
    "GraphQL sessions(limit: 10)",
    "GraphQL filtered connection page",
    "GraphQL details (20 interactions, 10 metrics)",
    "GraphQL details of 50 sessions (batched)",
]


@dataclass
class Target:
    name: str
    workload: str
    server: str
    other: str
    kind: str  # "ratio": paired req/s ratio >= goal; "p99": p99 <= other's in every round
    goal: float = 1.0


# How the targets name each reference.
LABELS = {"postgraphile": "PostGraphile v4", "postgraphile5": "PostGraphile v5"}
TARGETS = [
    *(
        Target(f"GraphQL read >= 1.5x {LABELS[pg]}", w, "ours-pg", pg, "ratio", 1.5)
        for pg in POSTGRAPHILES
        for w in GRAPHQL_READS
    ),
    *(
        Target(f"GraphQL p99 <= {LABELS[pg]}'s, every round", w, "ours-pg", pg, "p99")
        for pg in POSTGRAPHILES
        for w in GRAPHQL_READS
    ),
    *(
        Target("SQLite reads >= 1.0x PostgreSQL", w, "ours-sqlite", "ours-pg", "ratio", 1.0)
        for w in [
            "REST list of 10 sessions",
            "GraphQL sessions(limit: 10)",
            "REST details (20 interactions, 10 metrics)",
            "GraphQL details (20 interactions, 10 metrics)",
        ]
    ),
    *(
        Target(f"writes >= 1.0x {LABELS[pg]}'s mutation", w, "ours-pg", pg, "ratio", 1.0)
        for pg in POSTGRAPHILES
        for w in ["GraphQL createInteraction (write)", "GraphQL recordMetrics (write)"]
    ),
    Target(
        "REST list >= 0.9x the bare baseline",
        "REST list of 10 sessions",
        "ours-pg",
        "baseline",
        "ratio",
        0.9,
    ),
    *(
        Target("metrics and access log cost <= 5%", w, "ours-pg", "ours-pg-quiet", "ratio", 0.95)
        for w in ["GraphQL sessions(limit: 10)", "GraphQL details (20 interactions, 10 metrics)"]
    ),
    Target(
        "keyed write <= 15% slower than unkeyed",
        "REST create interaction (write)",
        "ours-pg+key",
        "ours-pg",
        "ratio",
        0.87,
    ),
]


def paired_ratio(a: Result, b: Result) -> float:
    """Each round's ratio (the two ran back to back), then the median, so a
    slow stretch of the machine cancels out."""
    return statistics.median(x / y for x, y in zip(a.rounds, b.rounds, strict=True))


def evaluate(by: dict[tuple[str, str], Result]) -> list[tuple[str, str, str, str, str]]:
    """(target, workload, measured, goal, PASS/FAIL/n/a) for every target."""
    rows = []
    for t in TARGETS:
        a, b = by.get((t.workload, t.server)), by.get((t.workload, t.other))
        if a is None or b is None:
            rows.append((t.name, t.workload, f"{t.other} not measured", "", "n/a"))
            continue
        if t.kind == "ratio":
            value = paired_ratio(a, b)
            ok = value >= t.goal
            measured = f"{value:.2f}x {t.other}"
            goal = f">= {t.goal:g}x"
        else:
            pairs = list(zip(a.p99_rounds, b.p99_rounds, strict=True))
            worse = sum(1 for x, y in pairs if x > y)
            ok = worse == 0
            measured = (
                f"{', '.join(f'{x:.0f}/{y:.0f}' for x, y in pairs)} ms "
                f"({worse} of {len(pairs)} rounds worse)"
            )
            goal = f"<= {t.other} each round"
        rows.append((t.name, t.workload, measured, goal, "PASS" if ok else "FAIL"))
    return rows


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
    parser.add_argument("--no-postgraphile", action="store_true", help="without PostGraphile v4")
    parser.add_argument("--no-postgraphile5", action="store_true", help="without PostGraphile v5")
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY"),
        help="a regular expression: only the workloads whose name it matches "
        "(a partial run: its numbers go to bench/.work/, not the README)",
    )
    parser.add_argument(
        "--servers",
        default=os.environ.get("BENCH_SERVERS"),
        help="comma-separated server names to start (default: all): ours-pg, "
        "ours-pg-standard, ours-pg-quiet, ours-sqlite, baseline, postgraphile (v4), "
        "postgraphile5, postgraphile5-same-work (v5 with bench/same_work.sql's "
        "triggers, the writes only); a partial run",
    )
    args = parser.parse_args()
    wanted = set(args.servers.split(",")) if args.servers else None

    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    # A reference left out by --servers is not installed either.
    pg4 = (
        None
        if args.no_postgraphile or (wanted is not None and "postgraphile" not in wanted)
        else ensure_postgraphile()
    )
    pg5 = (
        None
        if args.no_postgraphile5
        or (wanted is not None and not wanted & {"postgraphile5", SAME_WORK})
        else ensure_postgraphile5()
    )

    print("seeding PostgreSQL and SQLite through the service ...", flush=True)
    pg_url = asyncio.run(recreate_database())
    sqlite_path = WORK / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
    sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
    seeded = asyncio.run(seed(pg_url))
    seeded_sqlite = asyncio.run(seed(sqlite_url))  # same rows, other ids
    plain_pg = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    if pg5 is not None:
        asyncio.run(install_same_work(plain_pg))

    tokens = bench_tokens(seeded)
    common = dict(SERVER_ENV)

    with ExitStack() as stack:
        print("starting servers (one process each, pinned to CPU 0; wrk on CPU 1):", flush=True)
        servers = Servers(stack, wanted)
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
            "ours-pg-quiet",
            serve,
            {
                **common,
                "DATABASE_URL": pg_url,
                "ACCESS_LOG": "false",
                "METRICS": "false",
                "LOG_LEVEL": "WARNING",
            },
            "/health",
        )
        base = os.environ.get("BENCH_BASE")
        # A/B: another checkout of this project (e.g. `git worktree add`),
        # served by this venv, beside ours-pg and ours-sqlite on their
        # workloads (on the same databases).
        bases = (("ours-pg-base", pg_url), ("ours-sqlite-base", sqlite_url)) if base else ()
        for name, url in bases:
            servers.start(
                name,
                [sys.executable, "-m", "app.cli", "serve", "--port", "{port}"],
                {**common, "DATABASE_URL": url, "PYTHONPATH": base},
                "/health",
                cwd=Path(base),
            )
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
                    *PG4_FLAGS,
                ],
                {},
                "/graphql",
            )
        if pg5 is not None:
            start_postgraphile5(servers, pg5, plain_pg)
            same = f"{plain_pg}?application_name={SAME_WORK_APP}"
            start_postgraphile5(servers, pg5, same, SAME_WORK)

        plan = workloads(seeded, tokens, seeded_sqlite)
        for per_server in plan.values():
            for ours in list(per_server):
                if ours.split("+")[0] in ("ours-pg", "ours-sqlite"):
                    per_server[base_of(ours)] = per_server[ours]
        jobs = []
        for wname, per_server in plan.items():
            if args.only and not re.search(args.only, wname):
                continue
            for sname, req in per_server.items():
                server = sname.split("+")[0]  # "ours-pg+key": a variant on ours-pg
                if server not in servers.urls:
                    continue
                url = servers.urls[server] + req.path
                check(url, req)
                script = lua_script(req, f"{len(jobs)}")
                jobs.append((wname, sname, url, script, servers.pids.get(server)))

        print(
            f"warming up, then {args.rounds} rounds of {args.seconds}s per workload ...", flush=True
        )
        for _w, _s, url, script, _pid in jobs:
            run_wrk(wrk, url, script, args.warmup, args.connections)
            quiet()
        samples: dict[tuple[str, str], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            # Every other round runs the jobs in reverse, so a machine that
            # drifts faster or slower during a round favours neither side.
            for wname, sname, url, script, pid in jobs if r % 2 == 0 else jobs[::-1]:
                samples.setdefault((wname, sname), []).append(
                    cpu_per_request(
                        pid,
                        lambda url=url, script=script: run_wrk(  # type: ignore[misc]
                            wrk, url, script, args.seconds, args.connections
                        ),
                        args.seconds,
                    )
                )
                quiet()
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
                [round(x["p99"], 1) for x in runs],
                _rounded(median.get("server_us")),
                _rounded(median.get("postgres_us")),
            )
        )
    report(results, args, pg5)


def base_of(server: str) -> str:
    """The A/B twin of one of our servers (or of a variant: "ours-pg+key")."""
    name, plus, variant = server.partition("+")
    return f"{name}-base{plus}{variant}"


def markdown(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(str(x[i])) for x in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )


def ratios(r: Result, by: dict[tuple[str, str], Result]) -> str:
    """The ratios of ``r``'s row: "2.03x postgraphile, 1.85x postgraphile5
    (target >= 1.5)", one per reference that ran."""
    specs = [
        (other, goal)
        for server, other, goal in RATIOS.get(r.workload, [])
        if server == r.server and (r.workload, other) in by
    ]
    parts = [f"{paired_ratio(r, by[(r.workload, other)]):.2f}x {other}" for other, _ in specs]
    goals = {goal for _, goal in specs}
    if len(goals) == 1:  # one goal for all: said once
        return ", ".join(parts) + f" (target >= {goals.pop():g})"
    return ", ".join(f"{p} (target >= {g:g})" for p, (_, g) in zip(parts, specs, strict=True))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value)


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def report(results: list[Result], args: argparse.Namespace, pg5: Pg5 | None) -> None:
    by = {(r.workload, r.server): r for r in results}
    rows = []
    for r in results:
        ratio = ratios(r, by)
        rows.append(
            (
                r.workload,
                r.server,
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                ratio,
                _us(r.server_us),
                _us(r.postgres_us),
                str(r.non_2xx),
            )
        )
    header = (
        "workload",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "ratio",
        "server CPU us/req",
        "PostgreSQL CPU us/req",
        "non-2xx",
    )

    table = markdown(header, rows)
    targets = evaluate(by)
    passed = sum(1 for t in targets if t[4] == "PASS")
    table += (
        f"\n\nTargets ({passed} of {len(targets)} pass; ratios are medians of paired rounds; "
        "p99 pairs are ours/theirs per round):\n\n"
        + markdown(("target", "workload", "measured", "goal", "result"), targets)
    )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"median of {args.rounds} rounds x {args.seconds}s, wrk -t1 -c{args.connections}; "
        f"PostGraphile v4 with {' '.join(PG4_FLAGS)}"
    )
    if pg5 is not None:
        machine += (
            f"; PostGraphile v5 ({pg5.version}, Node {pg5.node_version}, NODE_ENV=production) "
            f"with PostGraphileAmberPreset + {PG5_PRESET}"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print()
    print(table)
    print(f"\n{machine}; {stamp}")
    ab = [
        f"  {w} ({srv}): {paired_ratio(r, by[(w, base_of(srv))]):.2f}x"
        for (w, srv), r in by.items()
        if srv.split("+")[0] in ("ours-pg", "ours-sqlite") and (w, base_of(srv)) in by
    ]
    if ab:
        print("\nA/B, ours / ours-*-base (BENCH_BASE), paired rounds:", *ab, sep="\n")
    if args.only or args.servers or ab:  # a partial run: never the committed numbers
        (WORK / "results-partial.json").write_text(
            json.dumps({"when": stamp, "results": [asdict(r) for r in results]}, indent=2) + "\n"
        )
        return
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
