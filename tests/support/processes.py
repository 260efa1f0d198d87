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
CHILD_PYTHONPATH = os.pathsep.join((str(REPO / "src"), str(REPO)))
"""A child process imports this checkout's package (and its tests), whichever checkout the
environment's editable install points at."""


@contextlib.contextmanager
def serve_process(
    database_url: str,
    log: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Start `conveyor serve` on a free port (or `port`); yield its base URL; stop it on
    exit."""
    with server_process(database_url, log, *extra, env=env, port=port) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(
    database_url: str,
    log: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve_process`, yielding the process too: for tests that kill it. A server
    restarted on the `port` of a killed one is found again by its clients and workers."""
    port = port or free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": CHILD_PYTHONPATH,
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


@contextlib.contextmanager
def conveyor_worker_process(
    url: str,
    key: str,
    handlers: str,
    log: Path,
    *extra: str,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`conveyor worker` in a child process running the `handlers` (`module:object`); the
    key goes in a file next to the log (as in production: out of `ps`). Its log is printed
    when the test fails; a worker still running at the end is killed."""
    environment = {**os.environ, "PYTHONPATH": CHILD_PYTHONPATH, "CONVEYOR_LOG_FORMAT": "text"}
    environment.pop("CONVEYOR_API_KEY", None)
    environment.update(env or {})
    key_file = log.with_suffix(".key")
    key_file.write_text(key + "\n")
    command = [
        sys.executable,
        "-m",
        "conveyor.cli.main",
        "worker",
        "--url",
        url,
        "--key-file",
        str(key_file),
        "--handlers",
        handlers,
        *extra,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield process
        except BaseException:
            print(f"--- worker log ({log}) ---\n{log.read_text(errors='replace')[-5000:]}")
            raise
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
