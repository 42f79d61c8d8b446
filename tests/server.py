"""Run the real server (`interview-api serve`) in a subprocess, as a user would."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("interview-api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerURL(str):
    """The server's base URL; ``.proc`` is its process (to signal it)."""

    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def running_server(
    env: dict[str, str],
    port: int | None = None,
    log: Path | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve on a free port until the block ends; output goes to ``log`` (a file,
    never a pipe that could fill up and stall the server)."""
    port = port or free_port()
    full_env = {
        **os.environ,
        "JWT_SECRET": TEST_SECRET,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    if log is None:
        log = Path(tempfile.mkdtemp()) / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = ServerURL(f"http://127.0.0.1:{port}")
        base.proc = proc
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{log.read_text()}")
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start within 30 s")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
