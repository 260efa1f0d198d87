"""Worker test helpers: waiting for jobs to settle, and running `conveyor worker` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def wait_for_status(
    client: httpx.AsyncClient, job_id: str, statuses: set[str], within: float = 20.0
) -> dict[str, object]:
    found: dict[str, object] = {}

    async def reached() -> bool:
        nonlocal found
        found = (await client.get(f"/jobs/{job_id}")).json()
        return found.get("status") in statuses

    await eventually(reached, within=within, what=f"job {job_id} to be {statuses}")
    return found


@contextlib.contextmanager
def worker_process(url: str, key: str, *extra: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`conveyor worker` in a child process running the test handlers; its log goes to
    `log` and is printed when the test fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CONVEYOR_LOG_FORMAT": "text"}
    env.pop("CONVEYOR_API_KEY", None)
    key_file = log.with_suffix(".key")  # as in production: the key stays out of `ps`
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
        "tests.worker.handlers_for_tests:handlers",
        *extra,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        except BaseException:
            print(f"--- worker log ({log}) ---\n{log.read_text(errors='replace')[-5000:]}")
            raise
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
