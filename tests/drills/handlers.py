"""Handlers the drills run, in `conveyor worker` and `conveyor serve --workers` processes
(`--handlers tests.drills.handlers:handlers`).

Each run appends `start <job> <attempt> <lease> <worker>` when it begins and `end <job>
<attempt> <lease> <worker>` when its work is done, to the side file named by
`CONVEYOR_DRILL_SIDE_FILE`, one `write` per line on an `O_APPEND` descriptor and fsynced
before the handler goes on: the file survives a SIGKILL of the process that wrote it, and
the lines of every process are in the order they happened. The drill reads it to tell
which runs began and which finished, whatever the database says.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from conveyor.worker import Handlers, JobContext

SIDE_FILE_VARIABLE = "CONVEYOR_DRILL_SIDE_FILE"
HANG_SECONDS = 3600.0

handlers = Handlers()


def note(word: str, job: JobContext) -> None:
    line = f"{word} {job.id} {job.attempt} {job.lease_id} {job.worker_id}\n".encode()
    descriptor = os.open(
        os.environ[SIDE_FILE_VARIABLE], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
    )
    try:
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@handlers.job("drill.work")
async def work(job: JobContext) -> dict[str, Any]:
    """Sleeps `payload.seconds`; on its first attempt, when `payload.hang_first`, sleeps
    until the process is killed. The result names the run that produced it."""
    note("start", job)
    seconds = float(job.payload.get("seconds", 0.0))
    if job.payload.get("hang_first") and job.attempt == 1:
        seconds = HANG_SECONDS
    await asyncio.sleep(seconds)
    note("end", job)
    return {"attempt": job.attempt, "lease": str(job.lease_id)}


@handlers.job("drill.chatty")
async def chatty(job: JobContext) -> dict[str, Any]:
    """Appends `payload.ticks` custom events, `payload.every` seconds apart: a job whose
    own stream has something to follow for a while. On its first attempt, when
    `payload.hang_first`, it then sleeps until the process is killed."""
    note("start", job)
    for tick in range(int(job.payload["ticks"])):
        await job.event("drill.tick", {"tick": tick, "attempt": job.attempt})
        await asyncio.sleep(float(job.payload["every"]))
    if job.payload.get("hang_first") and job.attempt == 1:
        await asyncio.sleep(HANG_SECONDS)
    note("end", job)
    return {"attempt": job.attempt, "lease": str(job.lease_id)}
