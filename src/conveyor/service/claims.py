"""Claiming jobs: fair turns across workspaces and concurrency keys, within their limits,
at once or after a wait for some."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from conveyor.domain import jobs as rules
from conveyor.domain.jobs import ClaimRequest, Job, JobChange
from conveyor.service.core import JobServiceCore
from conveyor.store.claims import ClaimOutcome
from conveyor.store.projections import Claimed, Projection

ROUNDS = 3
"""A claim that got fewer jobs than asked, while other groups may have more (some gave
their whole share, or waited for the next claim's turn), looks again at once, this many
times in all."""

NEXT_TURN_SECONDS = 0.05
"""How soon a waiting claim looks again when it found nothing in the groups it reached
while others waited their turn (more than `ROUNDS` claims' worth, all held by limits)."""

Scope = UUID | Sequence[UUID] | None
"""Where a claim takes from: one workspace, several, or (None) every workspace."""


def _workspaces(scope: Scope) -> tuple[UUID, ...] | None:
    if scope is None:
        return None
    return (scope,) if isinstance(scope, UUID) else tuple(scope)


class JobClaims(JobServiceCore):
    waiting_claims = 0
    """Claims that looked, found nothing and now wait to be woken (or for their timer)."""

    async def claim_jobs(
        self,
        scope: Scope,
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
        """Claim up to `limit` jobs from `scope`, answered as `answer` (whole jobs for the
        HTTP API, `ClaimedJob`s for a worker in this process); with `wait_seconds`, wait
        that long for some to come. A waiting claim looks again when woken (a job queued,
        room under a limit, a limit changed) or when the next job comes due, and no later
        than the poll interval. `abandoned` is asked after each wait: a caller who has gone
        away (an HTTP client that hung up) must not be handed jobs it will never receive."""
        workspaces = _workspaces(scope)
        request = ClaimRequest(
            types,
            limit,
            lease_seconds,
            worker_id,
            actor,
            workspaces,
            self.timeout_grace_seconds,
        )
        deadline = time.monotonic() + wait_seconds
        first = True
        while True:
            if not first and abandoned is not None and await abandoned():
                return []
            first = False
            # Watch before looking, so a job queued between the look and the wait wakes us.
            with self.work_signal.watch(workspaces) as woken:
                claimed, outcome = await self._claim_rounds(request, answer)
                await self._seen(workspaces or outcome.workspaces, request, wait_seconds)
                remaining = deadline - time.monotonic()
                if claimed and abandoned is not None and await abandoned():
                    # The caller left while we claimed: hand the jobs straight back.
                    await self._hand_back(claimed, request.actor)
                    return []
                if claimed or remaining <= 0:
                    self.observer.jobs_claimed(claimed)
                    return claimed
                wait = min(remaining, self.poll_interval)
                if outcome.wake_in is not None:
                    wait = min(wait, outcome.wake_in)
                if outcome.more:  # groups still wait their turn: theirs comes soon
                    wait = min(wait, NEXT_TURN_SECONDS)
                self.waiting_claims += 1
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), wait)
                finally:
                    self.waiting_claims -= 1

    async def _claim_rounds(
        self, request: ClaimRequest, answer: Projection[Claimed]
    ) -> tuple[list[Claimed], ClaimOutcome[Claimed]]:
        claimed: list[Claimed] = []
        for _ in range(ROUNDS):
            outcome = await self._retrying(
                functools.partial(
                    self.jobs.claim_jobs,
                    request._replace(limit=request.limit - len(claimed)),
                    answer,
                )
            )
            claimed += outcome.jobs
            if not (outcome.more and len(claimed) < request.limit):
                break
        return claimed, outcome

    async def _seen(
        self, workspaces: Sequence[UUID], request: ClaimRequest, wait_seconds: float
    ) -> None:
        if self.workers is None:
            return
        for workspace_id in workspaces:
            await self.workers.claiming(
                workspace_id,
                request.worker_id,
                request.types,
                lease_seconds=request.lease_seconds,
                wait_seconds=wait_seconds,
            )

    async def _hand_back(self, claimed: Sequence[Claimed], actor: str) -> None:
        for job in claimed:
            assert job.lease_id is not None, "a claimed job holds a lease"
            assert job.workspace_id is not None, "a claimed job says its workspace"
            await self._decide_and_store(job.workspace_id, job.id, _handback(job.lease_id, actor))
            self.work_signal.notify(job.workspace_id)


def _handback(lease_id: UUID, actor: str) -> Callable[[Job], JobChange]:
    return lambda job: rules.decide_handback(job, lease_id, actor)
