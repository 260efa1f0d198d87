"""One claimed job in a worker: its lease, its handler's task, the reports made under it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from conveyor.domain.backoff import Backoff
from conveyor.domain.errors import LeaseLossReason
from conveyor.domain.jobs import ClaimedJob
from conveyor.worker.backend import BackendUnavailable, LeaseGone, WorkerBackend

log = logging.getLogger("conveyor.worker")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """What a job run needs to know of its worker: who holds the lease, and for how long
    each heartbeat extends it."""

    worker_id: str
    lease_seconds: float


class JobRun:
    def __init__(
        self,
        job: ClaimedJob,
        backend: WorkerBackend,
        lease: LeaseSettings,
        *,
        on_lost: Callable[[JobRun], None] | None = None,
    ) -> None:
        self.job = job
        self.backend = backend
        self.lease = lease
        self.worker_id = lease.worker_id
        self._on_lost = on_lost
        self.lost = asyncio.Event()
        self.lost_because: LeaseLossReason | None = None
        self.lost_reason: str | None = None
        """Why the lease is gone, in words (`lost_because` is the code)."""
        self.task: asyncio.Task[None] | None = None
        self.reporting = False
        """The handler has finished and its completion is on its way: the job keeps its
        slot (and its heartbeats) until the completion is settled."""
        self.lease_deadline = time.monotonic() + lease.lease_seconds

    def time_out(self, detail: str) -> None:
        """The handler ran past its timeout and the attempt was failed: the job is no longer
        ours, and whatever the handler (a plain function's thread, still running) reports
        from now on is refused here, without asking the server."""
        if self.lost.is_set():
            return
        self.lost_because = LeaseLossReason.TIMED_OUT
        self.lost_reason = detail
        self.lost.set()

    def lose(self, gone: LeaseGone) -> None:
        """The lease is gone: stop the handler; nothing more will be reported."""
        if self.lost.is_set():
            return
        self.lost_because = gone.reason
        self.lost_reason = gone.detail
        self.lost.set()
        if self._on_lost is not None:
            self._on_lost(self)
        log.info("job %s: %s; stopping its handler", self.job.id, gone.detail)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def report(self, call: Callable[[WorkerBackend], Awaitable[T]]) -> T:
        """Send a report, riding out outages while the lease may still hold."""
        backoff = Backoff()
        while True:
            if self.lost.is_set():
                raise LeaseGone(
                    self.lost_because or LeaseLossReason.GONE, self.lost_reason or "lease gone"
                )
            try:
                return await call(self.backend)
            except LeaseGone as gone:
                self.lose(gone)
                raise
            except BackendUnavailable:
                if time.monotonic() > self.lease_deadline:
                    raise
                await asyncio.sleep(backoff.next())
