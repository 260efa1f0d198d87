"""The completion batcher: group-commits the results of finished handlers.

Whatever finished while the previous batch was on its way goes out in the next one, so a
busy worker sends one request for many jobs while a quiet one adds no delay. Each
completion's outcome is handed back (`settle`): completed, lease gone, refused, or not
recorded because Conveyor stayed unreachable for as long as its lease could hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.domain.backoff import Backoff
from conveyor.worker.backend import (
    BackendUnavailable,
    CompletionReport,
    ReportRejected,
    ReportTooLarge,
    WorkerBackend,
)
from conveyor.worker.run import JobRun

log = logging.getLogger("conveyor.worker")

COMPLETION_BATCH = 500
COMPLETION_BYTES = 512 * 1024
"""A completion request stays under half the server's default body limit (1 MiB)."""


@dataclass
class Pending:
    """A completion waiting for the next batch; its job keeps its slot until it is settled."""

    report: CompletionReport
    run: JobRun
    size: int


Settle = Callable[[Pending, Exception | None], None]


class CompletionBatcher:
    def __init__(self, backend: WorkerBackend, worker_id: str, settle: Settle) -> None:
        self._backend = backend
        self._worker_id = worker_id
        self._settle = settle
        self._pending: list[Pending] = []
        self._ready = asyncio.Event()

    def add(self, run: JobRun, result: Any, size: int) -> None:
        """Queue a finished job's result for the next batch."""
        run.reporting = True
        self._pending.append(Pending(CompletionReport(run.job, result), run, size))
        self._ready.set()

    async def run_forever(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                await self._send(self._next_batch())

    def _next_batch(self) -> list[Pending]:
        """As many pending completions as fit in one request (by count and by size)."""
        taken = 0
        size = 0
        for pending in self._pending:
            if taken and (taken == COMPLETION_BATCH or size + pending.size > COMPLETION_BYTES):
                break
            taken += 1
            size += pending.size
        batch = self._pending[:taken]
        del self._pending[:taken]
        return batch

    async def _send(self, batch: list[Pending]) -> None:
        backoff = Backoff()
        while True:
            try:
                outcomes = await self._backend.complete_many(
                    [pending.report for pending in batch], self._worker_id
                )
            except BackendUnavailable as error:
                if all(time.monotonic() > pending.run.lease_deadline for pending in batch):
                    for pending in batch:
                        self._settle(pending, error)
                    return
                await asyncio.sleep(backoff.next())
                continue
            except ReportTooLarge as error:
                if len(batch) == 1:
                    self._settle(batch[0], error)
                    return
                half = len(batch) // 2  # the server takes less than we sent: split
                await self._send(batch[:half])
                await self._send(batch[half:])
                return
            except Exception as error:
                log.exception("sending completions failed")
                for pending in batch:
                    self._settle(pending, ReportRejected(str(error)))
                return
            for pending, outcome in zip(batch, outcomes, strict=True):
                self._settle(pending, outcome)
            return
