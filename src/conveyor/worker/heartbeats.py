"""Heartbeats: every running job's lease is extended on schedule."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from conveyor.worker.backend import BackendUnavailable, LeaseGone, ReportRejected, WorkerBackend
from conveyor.worker.run import JobRun

log = logging.getLogger("conveyor.worker")


class Heartbeats:
    def __init__(
        self,
        backend: WorkerBackend,
        runs: Callable[[], Iterable[JobRun]],
        *,
        interval: float,
        lease_seconds: float,
    ) -> None:
        self._backend = backend
        self._runs = runs
        self._interval = interval
        self._lease_seconds = lease_seconds

    async def run_forever(self) -> None:
        """A round every interval, on schedule: a slow round does not push the next one
        late (each heartbeat gets the interval, at most, to answer)."""
        next_round = time.monotonic() + self._interval
        while True:
            await asyncio.sleep(max(0.0, next_round - time.monotonic()))
            next_round += self._interval
            runs = [run for run in self._runs() if not run.lost.is_set()]
            await asyncio.gather(*(self._beat(run) for run in runs))

    async def _beat(self, run: JobRun) -> None:
        try:
            sent = time.monotonic()
            await asyncio.wait_for(
                self._backend.heartbeat(run.job, self._lease_seconds, run.worker_id),
                self._interval,
            )
            run.lease_deadline = sent + self._lease_seconds
        except TimeoutError:
            log.warning("job %s: heartbeat took longer than %.1fs", run.job.id, self._interval)
        except LeaseGone as gone:
            run.lose(gone)
        except (BackendUnavailable, ReportRejected) as error:
            log.warning("job %s: heartbeat failed (%s)", run.job.id, error)
        except Exception:
            log.exception("job %s: heartbeat failed", run.job.id)
