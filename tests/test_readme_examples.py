"""The README's examples, pasted as they are into a shell against `make run`'s
server (APP_ENV=development, no RATE_LIMITS set): every request answers 2xx,
none is rate limited (frontend round two: the 11th command of the REST block
used to be a 429 under the production limits)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_token
from tests.server import ROOT, running_server

BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    found = BLOCK.findall(text[start:end])
    assert found, title
    return "\n".join(found)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_rest_and_graphql_examples_work_as_pasted(sqlite_template, tmp_path: Path):
    database = tmp_path / "readme.db"
    shutil.copy(sqlite_template, database)
    log = tmp_path / "server.log"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "APP_ENV": "development",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    with running_server(env, log=log, port=None) as base:
        script = "\n".join(
            [
                f"TOKEN={make_token('readme-user')}",
                _section("REST examples").replace("http://127.0.0.1:8000", base),
                # The GraphQL block uses $API and $AUTH from the REST block.
                _section("GraphQL examples"),
            ]
        )
        done = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    answers = [
        (r["method"], r["path"], r["status"])
        for r in records
        if r["logger"] == "app.access" and r["route"] != "/health"
    ]
    assert len(answers) >= 20, answers  # every command reached the server
    assert [a for a in answers if not 200 <= a[2] < 300] == []
    graphql = [a for a in answers if a[1] == "/graphql"]
    assert len(graphql) == 3
    for line in done.stdout.splitlines():
        assert '"statusCode":4' not in line and '"statusCode":5' not in line, line
