"""What every job use case needs: the store, the wake-ups, and the one way a decided
change is stored (decide on a fresh read, compare-and-set, again while others win)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from conveyor.bus.work import WorkSignal
from conveyor.domain.errors import ConcurrentUpdate, JobNotFound
from conveyor.domain.jobs import DEFAULT_TIMEOUT_GRACE_SECONDS, Job, JobChange
from conveyor.domain.limits import JsonLimits
from conveyor.service.observer import JobObserver, Unobserved
from conveyor.service.retry import RetryPolicy, WriteConflict, retry_on_conflict
from conveyor.service.stats import WorkerRegistry
from conveyor.store import Store

T = TypeVar("T")

DEFAULT_POLL_INTERVAL = 10.0
"""A long-poll looks again this often even without a wake-up: a safety net, since claims
are woken when work is queued or room appears, and time their wait to the next due job."""


class JobServiceCore:
    def __init__(
        self,
        store: Store,
        *,
        work_signal: WorkSignal | None = None,
        retry_policy: RetryPolicy | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        rng: random.Random | None = None,
        observer: JobObserver | None = None,
        workers: WorkerRegistry | None = None,
        limits: JsonLimits | None = None,
        timeout_grace_seconds: float = DEFAULT_TIMEOUT_GRACE_SECONDS,
    ) -> None:
        self.store = store
        self.jobs = store.jobs
        self.work_signal = work_signal or WorkSignal()
        self.retry_policy = retry_policy or RetryPolicy()
        self.poll_interval = poll_interval
        self._rng = rng or random.Random()
        self.observer: JobObserver = observer or Unobserved()
        self.workers = workers
        self.limits = limits or JsonLimits()
        self.timeout_grace_seconds = timeout_grace_seconds
        """How long past a job's timeout its lease may still run (domain/timeouts.py)."""

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await retry_on_conflict(
            operation,
            self.retry_policy,
            jitter=self._rng.random,
            on_retry=self.observer.conflict_retried,
        )

    async def require_job(self, workspace_id: UUID, job_id: UUID) -> Job:
        job = await self.jobs.get_job(workspace_id, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def _decide_and_store(
        self,
        workspace_id: UUID,
        job_id: UUID,
        decide: Callable[[Job], JobChange | None],
        *,
        expected_version: int | None = None,
        refuse: Callable[[Job], Awaitable[None]] | None = None,
    ) -> Job:
        """Decide on a fresh read and compare-and-set, again while others win the race.
        `decide` returning None means "nothing to do": the job is returned as it is.
        `refuse`, given the fresh read before each decision, raises what the database's
        state beside the job forbids (a guard of the change that the store checks too)."""

        async def attempt() -> Job:
            job = await self.require_job(workspace_id, job_id)
            if expected_version is not None and job.version != expected_version:
                raise ConcurrentUpdate(
                    job_id, expected_version=expected_version, current_version=job.version
                )
            if refuse is not None:
                await refuse(job)
            change = decide(job)
            if change is None:
                return job
            stored = await self.jobs.apply_change(workspace_id, change)
            if stored is None:
                raise WriteConflict(job_id)
            return stored

        return await self._retrying_on_job(workspace_id, job_id, attempt, expected_version)

    async def _retrying_on_job(
        self,
        workspace_id: UUID,
        job_id: UUID,
        operation: Callable[[], Awaitable[T]],
        expected_version: int | None = None,
    ) -> T:
        """`_retrying`, for an operation on one job: when the races cannot be won, the
        caller gets a 409 with the job's current version, never a 500."""
        try:
            return await self._retrying(operation)
        except WriteConflict:
            current = await self.require_job(workspace_id, job_id)
            raise ConcurrentUpdate(
                job_id, expected_version=expected_version, current_version=current.version
            ) from None
