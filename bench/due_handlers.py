"""The `due-start` scenario's handlers: for its in-process worker, and for the remote one,
`conveyor worker --handlers bench.due_handlers:handlers`."""

from __future__ import annotations

import time
from uuid import UUID

from conveyor.worker import Fail, Handlers, JobContext

DUE_TYPE = "bench.due"
RETRY_TYPE = "bench.retry"

handlers = Handlers()
handler_starts: dict[UUID, float] = {}
"""When each job's (last) handler started, `time.time()`: read by an in-process run."""


@handlers.job(DUE_TYPE)
async def due(job: JobContext) -> None:
    handler_starts[job.id] = time.time()


@handlers.job(RETRY_TYPE)
async def fails_once(job: JobContext) -> None:
    handler_starts[job.id] = time.time()
    if job.attempt == 1:
        raise Fail("fails once, to run again after its backoff")
