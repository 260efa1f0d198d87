"""Claiming jobs: the most urgent claimable ones, at once or after a wait for some."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from conveyor.domain import jobs as rules
from conveyor.domain.jobs import ClaimRequest, Job, JobChange
from conveyor.service.core import JobServiceCore
from conveyor.store.projections import Claimed, Projection


class JobClaims(JobServiceCore):
    async def claim_jobs(
        self,
        workspace_id: UUID,
        *,
        types: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        worker_id: str,
        actor: str,
        answer: Projection[Claimed],
        wait_seconds: float = 0.0,
        abandoned: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[Claimed]:
        """Claim up to `limit` jobs, answered as `answer` (whole jobs for the HTTP API,
        `ClaimedJob`s for a worker in this process); with `wait_seconds`, wait that long
        for some to come. `abandoned` is asked after each wait: a caller who has gone away
        (an HTTP client that hung up) must not be handed jobs it will never receive."""
        request = ClaimRequest(
            types, limit, lease_seconds, worker_id, actor, self.timeout_grace_seconds
        )
        if self.workers is not None:
            await self.workers.claiming(
                workspace_id,
                worker_id,
                types,
                lease_seconds=lease_seconds,
                wait_seconds=wait_seconds,
            )
        deadline = time.monotonic() + wait_seconds
        first = True
        while True:
            if not first and abandoned is not None and await abandoned():
                return []
            first = False
            # Watch before looking, so a job queued between the look and the wait wakes us.
            with self.work_signal.watch(workspace_id) as woken:
                claimed = await self._retrying(
                    lambda: self.jobs.claim_jobs(workspace_id, request, answer)
                )
                remaining = deadline - time.monotonic()
                if claimed and abandoned is not None and await abandoned():
                    # The caller left while we claimed: hand the jobs straight back.
                    await self._hand_back(workspace_id, claimed, request.actor)
                    return []
                if claimed or remaining <= 0:
                    self.observer.jobs_claimed(claimed)
                    return claimed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(remaining, self.poll_interval))

    async def _hand_back(self, workspace_id: UUID, claimed: Sequence[Claimed], actor: str) -> None:
        for job in claimed:
            assert job.lease_id is not None, "a claimed job holds a lease"
            await self._decide_and_store(workspace_id, job.id, _handback(job.lease_id, actor))
        self.work_signal.notify(workspace_id)


def _handback(lease_id: UUID, actor: str) -> Callable[[Job], JobChange]:
    return lambda job: rules.decide_handback(job, lease_id, actor)
