"""Put jobs into a given status through the service, the way real callers would."""

from __future__ import annotations

from uuid import UUID

from conveyor.domain.jobs import Job, JobSpec, JobStatus
from conveyor.service.jobs import AS_JOB, JobService

ACTOR = "test"


async def claim_one(service: JobService, workspace_id: UUID, job_type: str = "test") -> Job:
    [job] = await service.claim_jobs(
        workspace_id,
        types=[job_type],
        limit=1,
        lease_seconds=60,
        worker_id="w1",
        actor=ACTOR,
        answer=AS_JOB,
    )
    return job


async def job_in_status(
    service: JobService, workspace_id: UUID, status: JobStatus, *, job_type: str = "test"
) -> Job:
    job, _ = await service.create_job(
        workspace_id, JobSpec(type=job_type, hold=status == JobStatus.PENDING), ACTOR
    )
    if status in (JobStatus.PENDING, JobStatus.QUEUED):
        return job
    if status == JobStatus.CANCELLED:
        return await service.cancel_job(workspace_id, job.id, ACTOR)
    running = await claim_one(service, workspace_id, job_type)
    assert running.id == job.id
    assert running.lease_id is not None
    if status == JobStatus.RUNNING:
        return running
    if status == JobStatus.COMPLETED:
        return await service.complete_job(workspace_id, job.id, running.lease_id, {"ok": 1}, ACTOR)
    assert status == JobStatus.FAILED
    return await service.fail_job(
        workspace_id, job.id, running.lease_id, "boom", retryable=False, actor=ACTOR
    )
