"""Real clients (Node.js packages, headless Chromium) against a real server process.

The clients live in ``tests/node`` (``package.json`` + lock); the first test
that needs them runs ``npm ci`` there (the cache folder, never committed).
Without Node.js, or Chromium for the browser test, these tests skip with a
message locally; ``.ci/run`` sets REQUIRE_NODE=1 and REQUIRE_CHROMIUM=1,
which turns a missing tool into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import running_server

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
REQUIRE_NODE = os.environ.get("REQUIRE_NODE") == "1"
REQUIRE_CHROMIUM = os.environ.get("REQUIRE_CHROMIUM") == "1"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing(what: str, required: bool) -> None:
    if required:
        pytest.fail(f"{what} (required in CI)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def node() -> str:
    """``node``, with the test clients installed in tests/node/node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _missing(
            "Node.js/npm not found: the GraphQL-over-HTTP audit and browser tests need it",
            REQUIRE_NODE,
        )
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            _missing(f"npm ci in tests/node failed: {proc.stderr[-500:]}", REQUIRE_NODE)
    return str(node)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", REQUIRE_CHROMIUM)
    return CHROMIUM


def run_node(node: str, script: str, *args: str, timeout: int = 120) -> Any:
    proc = subprocess.run(
        [node, str(NODE_DIR / script), *args],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[str]:
    """`interview-api serve` on this test's database, CORS open to local pages."""
    env = {
        "DATABASE_URL": db_url,
        "APP_ENV": "development",
        "RATE_LIMITS": "100000/minute",
    }
    with running_server(env, log=tmp_path / "server.log") as base:
        yield base
