"""Run `conveyor` as a user does: the installed console script (`conveyor.cli.main:main`),
in a child process, with only the environment the test gives it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import CHILD_PYTHONPATH

SCRIPT = Path(sys.executable).with_name("conveyor")
COMMAND = (str(SCRIPT),) if SCRIPT.exists() else (sys.executable, "-m", "conveyor.cli.main")

# Settings a developer may have exported must not leak into what a test checks.
CLIENT_VARIABLES = (
    "CONVEYOR_URL",
    "CONVEYOR_API_KEY",
    "CONVEYOR_API_KEY_FILE",
    "CONVEYOR_WORKSPACE",
    "CONVEYOR_DATABASE_URL",
)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    base = {name: value for name, value in os.environ.items() if name not in CLIENT_VARIABLES}
    return {**base, "PYTHONPATH": CHILD_PYTHONPATH, "COLUMNS": "200", **(env or {})}


async def start(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        env=environment(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> Ran:
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def conveyor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
    return await finish(await start(*args, env=env, cwd=cwd))
