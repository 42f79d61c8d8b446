"""Fuzzing both faces with schemathesis against the real server, on both databases.

The REST run uses the app's own OpenAPI document with every check but
positive_data_acceptance (see schemathesis.toml); the GraphQL run introspects
/graphql. Both assert: no 5xx, responses match the schema, and the server log
holds no traceback. Examples are bounded so the run fits CI time; the seed is
fixed (FUZZ_SEED overrides it) so a failure reproduces.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import bearer, make_token
from tests.server import ROOT, running_server

ST = Path(sys.executable).with_name("st")
SEED = os.environ.get("FUZZ_SEED", "20261127")
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "15")


def fuzz(target: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ST),
            "run",
            target,
            "-H",
            f"Authorization: {bearer(token)['Authorization']}",
            "-n",
            EXAMPLES,
            "--seed",
            SEED,
            "--no-color",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("face", ["rest", "graphql"])
def test_fuzzing_finds_no_server_error(db_url, tmp_path, face):
    log = tmp_path / "server.log"
    env = {"DATABASE_URL": db_url, "RATE_LIMITS": "1000000/second", "LOG_LEVEL": "INFO"}
    with running_server(env, log=log) as base:
        target = f"{base}/schema/openapi.json" if face == "rest" else f"{base}/graphql"
        result = fuzz(target, make_token(f"fuzz-{uuid.uuid4()}"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-6000:]
    assert "unhandled error" not in server_log
