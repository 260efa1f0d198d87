"""The job RQ workers run, importable by the worker processes. It notes its start in the
worker process; the process hands the notes back when it exits (`bench.systems.rq_worker`)."""

from __future__ import annotations

import time

STARTS: dict[int, float] = {}


def noop(i: int) -> None:
    STARTS[i] = time.time()
