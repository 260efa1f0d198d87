"""The reaper: takes back jobs whose worker stopped heartbeating, or whose attempt ran
past its timeout (a lease never runs past the attempt's deadline, so both are found as
expired leases, through the same index)."""

from __future__ import annotations

from conveyor.domain import timeouts
from conveyor.domain.jobs import Job, JobStatus
from conveyor.service.core import JobServiceCore


class LeaseReaper(JobServiceCore):
    async def expire_leases(self, *, limit: int = 100) -> list[Job]:
        """Take back jobs whose worker stopped heartbeating: queue them again where they
        were, or fail them when their attempts are spent; an attempt that ran past its
        timeout is failed as timed out (retried after the backoff while it may). Safe with
        any number of reapers at once: each change is a compare-and-set, so a job is taken
        back once and a lease extended in the meantime is left alone."""
        expired = await self.jobs.find_expired_leases(limit)
        if not expired:
            return []
        now = await self.store.clock.now()
        reclaimed = []
        for job in expired:
            change = timeouts.decide_expired_lease(job, now=now, jitter=self._rng.random())
            stored = await self.jobs.apply_change(job.workspace_id, change)
            if stored is None:
                continue  # completed, cancelled, extended or reaped by someone else first
            reclaimed.append(stored)
            self.observer.job_settled(stored)
            if stored.status == JobStatus.QUEUED:
                self.work_signal.notify(stored.workspace_id)
        self.observer.leases_expired(len(reclaimed))
        return reclaimed
