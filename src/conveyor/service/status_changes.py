"""Changes a client or admin asks for by name: cancel a job, or move it to a status."""

from __future__ import annotations

from uuid import UUID, uuid4

from conveyor.domain import jobs as rules
from conveyor.domain.capacity import limit_names
from conveyor.domain.errors import StartsOnlyByClaim
from conveyor.domain.events import JsonValue
from conveyor.domain.jobs import DEFAULT_LEASE_SECONDS, Job, JobStatus
from conveyor.domain.limits import validate_json
from conveyor.domain.status import can_transition
from conveyor.service.core import JobServiceCore


class StatusChanges(JobServiceCore):
    async def cancel_job(
        self, workspace_id: UUID, job_id: UUID, actor: str, reason: str | None = None
    ) -> Job:
        job = await self._decide_and_store(
            workspace_id, job_id, lambda job: rules.decide_cancel(job, actor, reason)
        )
        self.observer.job_settled(job)
        return job

    async def change_status(
        self,
        workspace_id: UUID,
        job_id: UUID,
        target: JobStatus,
        *,
        actor: str,
        expected_version: int | None = None,
        lease_id: UUID | None = None,
        worker_id: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        result: JsonValue = None,
        error: str | None = None,
        reason: str | None = None,
    ) -> Job:
        """Move a job to a status by name, through the same decisions the named routes use.
        Not to RUNNING where a limit governs the job: only a claim counts what limits let
        start (StartsOnlyByClaim)."""
        validate_json(result, "result", self.limits)
        new_lease_id = uuid4()
        job = await self._decide_and_store(
            workspace_id,
            job_id,
            lambda job: (
                None
                if target == JobStatus.COMPLETED
                and rules.is_repeat_completion(job, lease_id, result)
                else rules.decide_status_request(
                    job,
                    target,
                    actor=actor,
                    lease_id=lease_id,
                    worker_id=worker_id,
                    new_lease_id=new_lease_id,
                    lease_seconds=lease_seconds,
                    grace_seconds=self.timeout_grace_seconds,
                    result=result,
                    error=error,
                    reason=reason,
                )
            ),
            expected_version=expected_version,
            refuse=self._refuse_if_limited if target == JobStatus.RUNNING else None,
        )
        if job.status == JobStatus.QUEUED:
            self.work_signal.notify(workspace_id)
        if target == JobStatus.COMPLETED:
            self.observer.jobs_completed([job])
        elif target in (JobStatus.FAILED, JobStatus.CANCELLED):
            self.observer.job_settled(job)
        return job

    async def _refuse_if_limited(self, job: Job) -> None:
        """StartsOnlyByClaim if limits govern the job and its status may move to RUNNING
        (where it may not, the change itself says why). Checked on each attempt's fresh
        read: a limit put after one attempt refuses the next, whose guard
        (`JobChange.unless_limits`) it failed."""
        if not can_transition(job.status, JobStatus.RUNNING):
            return
        names = limit_names(job.type, job.concurrency_key)
        governing = await self.store.limits.existing(job.workspace_id, names)
        if governing:
            raise StartsOnlyByClaim(job.id, tuple(governing), current_version=job.version)
