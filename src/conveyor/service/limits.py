"""Limits: a workspace's caps on what runs at once, how often jobs start, or whether they
start at all; and why a queued job waits."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from conveyor.bus.work import WorkSignal
from conveyor.domain.capacity import Limit, Rate, WaitReason, limit_names
from conveyor.domain.errors import LimitConflict, NotFound, Resource
from conveyor.domain.jobs import CLAIMABLE_STATUS, Job
from conveyor.domain.limits import validate_text
from conveyor.service.observer import JobObserver, Unobserved
from conveyor.service.retry import RetryPolicy, retry_on_conflict
from conveyor.store import Store
from conveyor.store.limits import LimitCounts


@dataclass(frozen=True, slots=True)
class Wait:
    """A limit that keeps a queued job from starting, and why."""

    limit: LimitCounts
    reason: WaitReason


class LimitService:
    def __init__(
        self,
        store: Store,
        work_signal: WorkSignal,
        *,
        retry_policy: RetryPolicy | None = None,
        observer: JobObserver | None = None,
    ) -> None:
        self._limits = store.limits
        self._work_signal = work_signal
        self._retry_policy = retry_policy or RetryPolicy()
        self._observer: JobObserver = observer or Unobserved()

    async def put(
        self,
        workspace_id: UUID,
        name: str,
        *,
        max_running: int | None,
        rate: Rate | None,
        paused: bool,
        expected_version: int | None = None,
    ) -> LimitCounts:
        """Set a limit (the whole of it: what is left out is no cap). With
        `expected_version`, only the limit at that version (`UNMADE_VERSION`: only if there
        is none): one changed (or made) since is LimitConflict, one deleted since NotFound,
        and nothing is written. Claimers waiting in the workspace look again at once: there
        may be room now."""
        validate_text(name, "name")
        limit = Limit(workspace_id, name, max_running, rate, paused)
        limit.validate()
        # Creating a limit locks its running jobs to count them while a batch of
        # completions may lock the same jobs in another order: PostgreSQL may end the
        # creation as a deadlock, and it is tried again (completions are, too).
        put = await retry_on_conflict(
            lambda: self._limits.put(limit, expected_version),
            self._retry_policy,
            on_retry=self._observer.conflict_retried,
        )
        if put.now is None:  # deleted since it was read: nothing written
            raise NotFound(Resource.LIMIT, name)
        if expected_version is not None and not put.written:
            raise LimitConflict(
                name, expected_version=expected_version, current_version=put.now.version
            )
        self._work_signal.notify(workspace_id)
        return put.now

    async def get(self, workspace_id: UUID, name: str) -> LimitCounts:
        found = await self._limits.with_counts(workspace_id, [name])
        if not found:
            raise NotFound(Resource.LIMIT, name)
        return found[0]

    async def list_limits(self, workspace_id: UUID) -> list[LimitCounts]:
        return await self._limits.with_counts(workspace_id)

    async def everywhere(self) -> list[LimitCounts]:
        """Every workspace's limits (for the metrics)."""
        return await self._limits.with_counts()

    async def delete(self, workspace_id: UUID, name: str) -> None:
        """Deleting a limit locks the running jobs of its name, as creating one does, and
        is tried again when PostgreSQL ends it as a deadlock."""
        deleted = await retry_on_conflict(
            lambda: self._limits.delete(workspace_id, name),
            self._retry_policy,
            on_retry=self._observer.conflict_retried,
        )
        if not deleted:
            raise NotFound(Resource.LIMIT, name)
        self._work_signal.notify(workspace_id)

    async def waits(self, job: Job) -> list[Wait]:
        """Why a queued job does not start: each limit governing it that lets none of its
        jobs start now ([] for a job not queued, or one nothing holds back)."""
        if job.status != CLAIMABLE_STATUS:
            return []
        names = limit_names(job.type, job.concurrency_key)
        governing = await self._limits.with_counts(job.workspace_id, names)
        return [
            Wait(counts, reason)
            for counts in governing
            if (reason := counts.waiting_because) is not None
        ]
