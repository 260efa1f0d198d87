"""What the harness's child processes (producers, SSE clients, RQ workers) share. Light on
imports: a child process imports it too."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment of the harness's child processes: this checkout first on the path,
    before whatever PYTHONPATH already held (a run from another checkout of the project
    keeps importing its own `conveyor`)."""
    inherited = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), inherited) if p)}


async def start_child(module: str, *args: str) -> asyncio.subprocess.Process:
    """`python -m <module> <args>` from this checkout, talking to the harness over its
    stdin and stdout."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=child_env(),
    )
