"""The worker backend inside a server process: straight calls into the job service."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from conveyor.domain.errors import (
    ConveyorError,
    InvalidInput,
    JobConflict,
    LeaseLossReason,
    LeaseLost,
    NotFound,
    TransientDatabaseError,
    Unavailable,
)
from conveyor.domain.events import worker_actor
from conveyor.domain.jobs import ClaimedJob, Completion
from conveyor.domain.steps import StepPhase, StepStatus, StepType
from conveyor.service.jobs import AS_CLAIMED_JOB, AS_COMPLETED_JOB, JobService
from conveyor.worker.backend import (
    BackendUnavailable,
    CompletionReport,
    LeaseGone,
    ReportRejected,
)

T = TypeVar("T")


def translate(error: Exception) -> Exception:
    """Service errors as the worker understands them."""
    if isinstance(error, LeaseLost):
        return LeaseGone(error.reason)
    if isinstance(error, NotFound):
        return LeaseGone(LeaseLossReason.GONE, str(error))
    if isinstance(error, Unavailable | TransientDatabaseError):
        return BackendUnavailable(str(error))
    if isinstance(error, JobConflict | InvalidInput | ConveyorError):
        return ReportRejected(str(error))
    return error


async def _call(operation: Awaitable[T]) -> T:
    try:
        return await operation
    except (ConveyorError, TransientDatabaseError) as error:
        raise translate(error) from error


def _workspace(job: ClaimedJob) -> UUID:
    assert job.workspace_id is not None, "a claim says each job's workspace"
    return job.workspace_id


class ServiceBackend:
    """`workspaces`: the workspaces this worker serves (None: every workspace)."""

    def __init__(self, service: JobService, workspaces: UUID | Sequence[UUID] | None) -> None:
        self._service = service
        self._workspaces = workspaces

    async def claim(
        self,
        types: list[str] | None,
        *,
        limit: int,
        lease_seconds: float,
        wait_seconds: float,
        worker_id: str,
    ) -> list[ClaimedJob]:
        return await _call(
            self._service.claim_jobs(
                self._workspaces,
                types=types,
                limit=limit,
                lease_seconds=lease_seconds,
                worker_id=worker_id,
                actor=worker_actor(worker_id),
                wait_seconds=wait_seconds,
                answer=AS_CLAIMED_JOB,
            )
        )

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float, worker_id: str) -> None:
        await _call(self._service.heartbeat(_workspace(job), job.id, job.lease_id, lease_seconds))

    async def complete_many(
        self, reports: list[CompletionReport], worker_id: str
    ) -> list[Exception | None]:
        """The batch in one call to the store (one transaction), whatever the workspaces of
        its jobs."""
        settled = await _call(
            self._service.complete_jobs(
                [
                    Completion(
                        _workspace(report.job), report.job.id, report.job.lease_id, report.result
                    )
                    for report in reports
                ],
                worker_actor(worker_id),
                AS_COMPLETED_JOB,  # the worker needs each outcome, not the job
            )
        )
        return [None if outcome.error is None else translate(outcome.error) for outcome in settled]

    async def fail(
        self,
        job: ClaimedJob,
        error: str,
        retryable: bool,
        worker_id: str,
        detail: str | None = None,
        timed_out_after: float | None = None,
    ) -> None:
        await _call(
            self._service.fail_job(
                _workspace(job),
                job.id,
                job.lease_id,
                error,
                retryable=retryable,
                actor=worker_actor(worker_id),
                detail=detail,
                timed_out=timed_out_after is not None,
                timeout_seconds=timed_out_after,
            )
        )

    async def release(self, job: ClaimedJob, worker_id: str) -> None:
        await _call(
            self._service.release_job(
                _workspace(job), job.id, job.lease_id, worker_actor(worker_id)
            )
        )

    async def progress(
        self, job: ClaimedJob, percent: int, message: str | None, worker_id: str
    ) -> None:
        await _call(
            self._service.report_progress(
                _workspace(job),
                job.id,
                percent=percent,
                message=message,
                lease_id=job.lease_id,
                allow_decrease=True,
                actor=worker_actor(worker_id),
            )
        )

    async def add_step(
        self,
        job: ClaimedJob,
        *,
        name: str,
        phase: str,
        step_type: str,
        status: str,
        worker_id: str,
    ) -> UUID:
        step = await _call(
            self._service.add_step(
                _workspace(job),
                job.id,
                name=name,
                phase=StepPhase(phase),
                step_type=StepType(step_type),
                status=StepStatus(status),
                lease_id=job.lease_id,
                actor=worker_actor(worker_id),
            )
        )
        return step.id

    async def update_step(
        self, job: ClaimedJob, step_id: UUID, changes: dict[str, Any], worker_id: str
    ) -> None:
        status = changes.pop("status", None)
        await _call(
            self._service.update_step(
                _workspace(job),
                job.id,
                step_id,
                lease_id=job.lease_id,
                status=None if status is None else StepStatus(status),
                actor=worker_actor(worker_id),
                **changes,
            )
        )

    async def event(
        self,
        job: ClaimedJob,
        event_type: str,
        payload: Any,
        step_id: UUID | None,
        worker_id: str,
    ) -> None:
        await _call(
            self._service.append_event(
                _workspace(job),
                job.id,
                event_type=event_type,
                payload=payload,
                step_id=step_id,
                lease_id=job.lease_id,
                actor=worker_actor(worker_id),
            )
        )

    async def close(self) -> None:
        return None
