"""What the harness's child processes (producers, SSE clients, RQ workers) share. Light on
imports: a child process imports it too."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment of the harness's child processes: this checkout first on the path,
    before whatever PYTHONPATH already held (a run from another checkout of the project
    keeps importing its own `conveyor`)."""
    inherited = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), inherited) if p)}
