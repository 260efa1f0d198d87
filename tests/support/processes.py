"""`conveyor serve` as a child process, for tests that need separate server processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.postgres import free_port

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve_process(
    database_url: str, log: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start `conveyor serve` on a free port; yield its base URL; stop it on exit."""
    with server_process(database_url, log, *extra, env=env) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(
    database_url: str, log: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve_process`, yielding the process too: for tests that kill it."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CONVEYOR_LOG_FORMAT": "text",
        "CONVEYOR_SQLITE_SYNCHRONOUS": "NORMAL",
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "conveyor.cli.main",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        *extra,
    ]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"conveyor serve exited: {log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"conveyor serve did not start: {log.read_text()[-3000:]}")
                time.sleep(0.1)
            yield url, process
        except BaseException:
            print(f"--- server log ({log}) ---\n{log.read_text(errors='replace')[-5000:]}")
            raise
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
