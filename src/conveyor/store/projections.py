"""What a claim or a completion answers: the projection a caller names.

The HTTP API answers whole jobs; the in-process worker needs only what running a job
takes (`ClaimedJob`) and what the metrics count of a completion (`CompletedJob`). Decoding
26 columns and six timestamps per job cost more than the rest of the worker's path, so
PostgreSQL returns only the projection's columns; SQLite, whose batches return whole rows
on the writer's thread anyway, projects the decoded job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from conveyor.domain.jobs import ClaimedJob, CompletedJob, Job
from conveyor.store.connection import Row
from conveyor.store.queries import JOB_COLUMNS, columns
from conveyor.store.rows import Rows

T = TypeVar("T", Job, ClaimedJob, CompletedJob)
Claimed = TypeVar("Claimed", Job, ClaimedJob)
"""What a claim answers: whole jobs (`AS_JOB`) or what running them takes (`AS_CLAIMED_JOB`)."""
Completed = TypeVar("Completed", Job, CompletedJob)
"""What a completion answers: whole jobs (`AS_JOB`) or what the metrics count
(`AS_COMPLETED_JOB`)."""


@dataclass(frozen=True, slots=True)
class Projection(Generic[T]):
    name: str
    columns: str
    """The SQL column list a statement returns for it."""
    from_row: Callable[[Rows, Row], T]
    """A row of `columns` as the projection (PostgreSQL)."""
    from_job: Callable[[Job], T]
    """A whole job as the projection (SQLite)."""


def _claimed(job: Job) -> ClaimedJob:
    assert job.lease_id is not None, "a claimed job holds a lease"
    return ClaimedJob(
        job.id,
        job.type,
        job.payload,
        job.attempt,
        job.max_attempts,
        job.priority,
        job.agent_task_id,
        job.lease_id,
        job.lease_expires_at,
        job.run_at,
        job.started_at,
        job.timeout_seconds,
        job.workspace_id,
    )


def _claimed_row(rows: Rows, row: Row) -> ClaimedJob:
    record: Any = row  # typed values, in ClaimedJob's field order
    return ClaimedJob(*record)


def _completed_row(rows: Rows, row: Row) -> CompletedJob:
    record: Any = row
    return CompletedJob(*record)


AS_JOB: Projection[Job] = Projection("job", columns(JOB_COLUMNS), Rows.job, lambda job: job)
AS_CLAIMED_JOB: Projection[ClaimedJob] = Projection(
    "claimed job", columns(ClaimedJob._fields), _claimed_row, _claimed
)
AS_COMPLETED_JOB: Projection[CompletedJob] = Projection(
    "completed job",
    columns(CompletedJob._fields),
    _completed_row,
    lambda job: CompletedJob(job.id, job.type, job.started_at, job.completed_at),
)
