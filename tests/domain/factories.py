"""Jobs and steps as the store would read them, built in memory for the pure domain tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from conveyor.domain.jobs import Job, JobStatus
from conveyor.domain.steps import Step, StepPhase, StepStatus, StepType

CREATED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WORKER_ID = "worker-1"


def make_job(status: JobStatus = JobStatus.QUEUED, **overrides: Any) -> Job:
    """A job in `status`, shaped as that status leaves it: a RUNNING job holds a lease and
    a worker, a finished one has its completion stamp. Anything else comes from
    `overrides` (any field of `Job`)."""
    running = status == JobStatus.RUNNING
    fields: dict[str, Any] = {
        "id": uuid4(),
        "workspace_id": uuid4(),
        "type": "email.send",
        "status": status,
        "priority": 5,
        "payload": {"to": "someone@example.com"},
        "result": None,
        "error": None,
        "progress_percent": 0,
        "agent_task_id": None,
        "attempt": 1,
        "max_attempts": 3,
        "run_at": CREATED_AT,
        "idempotency_key": None,
        "worker_id": WORKER_ID if running else None,
        "lease_id": uuid4() if running else None,
        "lease_expires_at": CREATED_AT if running else None,
        "retry_of": None,
        "retry_backoff_seconds": 2.0,
        "retry_backoff_max_seconds": 60.0,
        "created_at": CREATED_AT,
        "started_at": CREATED_AT if running else None,
        "completed_at": CREATED_AT if status.is_terminal else None,
        "updated_at": CREATED_AT,
        "version": 7,
        "last_event_seq": 4,
        "error_detail": None,
        "concurrency_key": None,
        "timeout_seconds": None,
    }
    unknown = set(overrides) - set(Job._fields)
    if unknown:
        raise TypeError(f"Job has no fields {sorted(unknown)}")
    fields.update(overrides)
    return Job(**fields)


def held_lease(job: Job) -> UUID:
    """The lease a running job is held under (what its worker reports with)."""
    assert job.lease_id is not None, f"a {job.status} job built without a lease"
    return job.lease_id


def make_completed_job(lease_id: UUID, result: Any, **overrides: Any) -> Job:
    """A job its worker completed under `lease_id` (a completed job keeps the lease it
    finished under: that is how a repeated completion is recognised)."""
    return make_job(
        JobStatus.COMPLETED,
        lease_id=lease_id,
        worker_id=WORKER_ID,
        result=result,
        progress_percent=100,
        **overrides,
    )


def make_step(status: StepStatus = StepStatus.PENDING, **overrides: Any) -> Step:
    fields: dict[str, Any] = {
        "id": uuid4(),
        "job_id": uuid4(),
        "ordinal": 2,
        "name": "run tests",
        "phase": StepPhase.EXECUTION,
        "type": StepType.COMMAND,
        "status": status,
        "started_at": None if status == StepStatus.PENDING else CREATED_AT,
        "completed_at": CREATED_AT if status.is_terminal else None,
        "duration_ms": None,
        "tokens_input": None,
        "tokens_output": None,
        "output": None,
    }
    fields.update(overrides)
    return Step(**fields)
