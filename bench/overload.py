"""Overload: one server process on PostgreSQL past its capacity (make bench).

GraphQL list and details at 32, 256 and 1,024 connections (wrk, pinned to the
other CPU), every protection, the metrics and the access log on. For each step:
throughput, p50/p99 of the answered requests, and what every answer was
(counted by a wrk script: 2xx, 503 with Retry-After, anything else) and the
socket errors (connect, read, write, timeouts). Targets (issue "Performance,
round three"): throughput at 256 and 1,024 connections >= 0.8x the 32-connection
figure; every answer a 2xx or an immediate 503 with Retry-After (no timeouts, no
resets); p99 at 256 <= 10x the p50 at 32.

What decides at each step: up to ``DB_POOL_SIZE`` (10) requests hold a read
connection, the rest queue first come, first served (app/db/pool.py) for at most
``DB_POOL_TIMEOUT``; the server keeps ``MAX_CONNECTIONS`` (1,000) connections
and answers the request of a connection accepted over the cap with 503 and
``Retry-After: 1``, then closes it (the connections it holds are not refused).

    python -m bench.overload   # writes bench/.work/overload.json
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from contextlib import ExitStack

from app.auth import issue_token
from app.config import Settings
from bench.run import (
    BIN,
    INTERACTION_FIELDS,
    METRIC_FIELDS,
    RATE_LIMITS,
    SECRET,
    SESSION_FIELDS,
    WORK,
    Servers,
    ensure_wrk,
    gql,
    quiet,
    recreate_database,
    rps_and_latency,
    wrk_output,
)
from bench.seed import seed

STEPS = (32, 256, 1024)
SECONDS = int(os.environ.get("BENCH_OVERLOAD_SECONDS", 10))

COUNTING = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = %(body)s
local counts = {}
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() ok = 0; busy = 0; busy_retry = 0; other = 0 end
response = function(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status == 503 then
    busy = busy + 1
    if headers["retry-after"] or headers["Retry-After"] then busy_retry = busy_retry + 1 end
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local t = {ok = 0, busy = 0, busy_retry = 0, other = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("COUNTS %%d %%d %%d %%d\\n", t.ok, t.busy, t.busy_retry, t.other))
  io.write(string.format("ERRORS %%d %%d %%d %%d\\n", summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


def run(wrk: str, url: str, token: str, body: str, connections: int, name: str) -> dict:
    script = WORK / f"overload-{name}.lua"
    script.write_text(COUNTING % {"token": token, "body": json.dumps(body)})
    out = wrk_output(wrk, url, script, SECONDS, connections, "--timeout", "10s")
    rps, lat = rps_and_latency(out)
    counts = [int(x) for x in re.search(r"COUNTS (\d+) (\d+) (\d+) (\d+)", out).groups()]  # type: ignore[union-attr]
    errors = [int(x) for x in re.search(r"ERRORS (\d+) (\d+) (\d+) (\d+)", out).groups()]  # type: ignore[union-attr]
    ok, busy, busy_retry, other = counts
    return {
        "connections": connections,
        "rps": rps,
        "ok_rps": rps * ok / max(sum(counts[:2]) + other, 1),
        "p50": lat.get("50", 0.0),
        "p99": lat.get("99", 0.0),
        "ok": ok,
        "busy": busy,
        "busy_with_retry_after": busy_retry,
        "other": other,
        "errors": dict(zip(("connect", "read", "write", "timeout"), errors, strict=True)),
    }


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    print("overload: seeding PostgreSQL ...", flush=True)
    pg_url = asyncio.run(recreate_database())
    seeded = asyncio.run(seed(pg_url))
    settings = Settings(jwt_secret=SECRET)
    tokens = {
        u: issue_token(settings, u, ttl_seconds=3600) for u in [seeded.users[0], "bench-details"]
    }
    list_body = gql(f"{{ sessions(limit: 10) {{ {SESSION_FIELDS} }} }}")
    details_body = gql(
        f'{{ session(id: "{seeded.details_session}") {{ {SESSION_FIELDS} '
        f"interactions {{ {INTERACTION_FIELDS} }} metrics {{ {METRIC_FIELDS} }} }} }}"
    )
    workloads = {
        "GraphQL sessions(limit: 10)": (tokens[seeded.users[0]], list_body),
        "GraphQL details (20 interactions, 10 metrics)": (tokens["bench-details"], details_body),
    }
    env = {
        "JWT_SECRET": SECRET,
        "RATE_LIMITS": RATE_LIMITS,
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": pg_url,
    }
    results: dict[str, list[dict]] = {}
    with ExitStack() as stack:
        servers = Servers(stack, None)
        serve = [str(BIN / "interview-api"), "serve", "--port", "{port}"]
        servers.start("ours-pg-overload", serve, env, "/health")
        url = servers.urls["ours-pg-overload"] + "/graphql"
        for name, (token, body) in workloads.items():
            results[name] = []
            run(wrk, url, token, body, 32, "warm")
            for connections in STEPS:
                quiet()
                time.sleep(1)
                step = run(wrk, url, token, body, connections, "step")
                results[name].append(step)
                print(
                    f"  {name:<46} c={connections:<5} {step['rps']:>8,.0f} req/s  "
                    f"p50 {step['p50']:6.1f} ms  p99 {step['p99']:7.1f} ms  "
                    f"2xx {step['ok']}  503 {step['busy']} "
                    f"(Retry-After {step['busy_with_retry_after']})  "
                    f"other {step['other']}  errors {step['errors']}",
                    flush=True,
                )
    report(results)


def report(results: dict[str, list[dict]]) -> None:
    rows = []
    for name, steps in results.items():
        base = steps[0]
        for step in steps[1:]:
            ratio = step["ok_rps"] / base["ok_rps"] if base["ok_rps"] else 0.0
            rows.append(
                (
                    f"{name}: throughput at {step['connections']} >= 0.8x at 32",
                    f"{ratio:.2f}x",
                    "PASS" if ratio >= 0.8 else "FAIL",
                )
            )
        for step in steps:
            clean = (
                step["other"] == 0
                and step["busy"] == step["busy_with_retry_after"]
                and not any(step["errors"].values())
            )
            rows.append(
                (
                    f"{name}: c={step['connections']} only 2xx or 503 + Retry-After",
                    f"2xx {step['ok']}, 503 {step['busy']}, other {step['other']}, "
                    f"errors {sum(step['errors'].values())}",
                    "PASS" if clean else "FAIL",
                )
            )
        at256 = next(s for s in steps if s["connections"] == 256)
        bound = 10 * base["p50"]
        rows.append(
            (
                f"{name}: p99 at 256 <= 10x p50 at 32",
                f"{at256['p99']:.1f} ms vs {bound:.1f} ms",
                "PASS" if at256["p99"] <= bound else "FAIL",
            )
        )
    print("\n| overload target | measured | |\n| --- | --- | --- |")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    (WORK / "overload.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
