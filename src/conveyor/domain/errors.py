"""Errors the domain and service raise. The API maps each to one problem+json response."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID


class ConveyorError(Exception):
    """Base class for every error Conveyor raises on purpose."""


class Resource(StrEnum):
    """What a 404 did not find (its problem's `resource`): a client tells a limit deleted
    meanwhile from a workspace that never existed without reading the detail."""

    JOB = "job"
    STEP = "step"
    WORKSPACE = "workspace"
    SCHEDULE = "schedule"
    LIMIT = "limit"
    KEY = "key"
    INSTANCE_KEY = "instance_key"


class NotFound(ConveyorError):
    """Something does not exist, or exists in a workspace the caller cannot see."""

    def __init__(self, resource: Resource, identifier: object) -> None:
        super().__init__(f"{resource.replace('_', ' ')} {identifier} not found")
        self.resource = resource
        self.identifier = identifier


class JobNotFound(NotFound):
    def __init__(self, job_id: UUID | str) -> None:
        super().__init__(Resource.JOB, job_id)


class StepNotFound(NotFound):
    def __init__(self, step_id: UUID | str) -> None:
        super().__init__(Resource.STEP, step_id)


class WorkspaceNotFound(NotFound):
    def __init__(self, workspace: str) -> None:
        super().__init__(Resource.WORKSPACE, workspace)


class ScheduleNotFound(NotFound):
    def __init__(self, reference: UUID | str) -> None:
        super().__init__(Resource.SCHEDULE, reference)


class ScheduleConflict(ConveyorError):
    """A schedule changed between the read a change was decided on and its
    compare-and-set (or, with no expected version, kept changing until the retries ran
    out). Carries the schedule's current version."""

    def __init__(
        self, schedule_id: UUID, *, expected_version: int | None, current_version: int | None
    ) -> None:
        super().__init__(
            f"schedule {schedule_id} changed concurrently (expected version "
            f"{expected_version}, now {current_version})"
            if expected_version is not None
            else f"schedule {schedule_id} kept changing concurrently; try again"
        )
        self.schedule_id = schedule_id
        self.expected_version = expected_version
        self.current_version = current_version


class LimitConflict(ConveyorError):
    """A limit changed (or was made) since the read a PUT was decided on
    (`expected_version`; 0: there was none): the PUT changed nothing. Carries the limit's
    current version."""

    def __init__(self, name: str, *, expected_version: int, current_version: int) -> None:
        expected = "no limit" if expected_version == 0 else f"version {expected_version}"
        super().__init__(
            f"limit {name} changed concurrently (expected {expected}, now version "
            f"{current_version})"
        )
        self.name = name
        self.expected_version = expected_version
        self.current_version = current_version


class InvalidInput(ConveyorError):
    """A value the domain refuses, named by its field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class IdempotencyConflict(ConveyorError):
    """An idempotency key came back with a different request than the one it created."""

    def __init__(self, key: str, job_id: UUID) -> None:
        super().__init__(
            f"idempotency key {key!r} was used for job {job_id} with a different type or "
            "payload; use a new key for a new request"
        )
        self.key = key
        self.job_id = job_id


class BatchIdempotencyConflict(ConveyorError):
    """Two jobs of one batch give the same idempotency key with a different type or
    payload: one key stands for one request, and the batch would lose the second job."""

    def __init__(self, key: str, first_index: int, index: int) -> None:
        super().__init__(
            f"idempotency key {key!r} is given to jobs.{first_index} and jobs.{index} of this "
            "batch with a different type or payload; use a new key for a new request"
        )
        self.key = key
        self.first_index = first_index
        self.index = index


class AlreadyExists(ConveyorError):
    """A workspace or schedule of that name is there already."""

    def __init__(self, resource: Resource, identifier: str) -> None:
        super().__init__(f"{resource.value} {identifier!r} already exists")
        self.resource = resource
        self.identifier = identifier


class JobConflict(ConveyorError):
    """The job is not in a state that allows the request. Carries the job's current version."""

    def __init__(self, job_id: UUID, message: str, *, current_version: int | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.current_version = current_version


class InvalidTransition(JobConflict):
    def __init__(
        self, job_id: UUID, source: str, target: str, *, current_version: int | None
    ) -> None:
        super().__init__(
            job_id,
            f"job {job_id} cannot move from {source} to {target}",
            current_version=current_version,
        )
        self.source = source
        self.target = target


class StartsOnlyByClaim(JobConflict):
    """A job a limit governs was to be moved to RUNNING by name: only a claim counts what
    the limits let start, under their workspace's claim lock."""

    def __init__(
        self, job_id: UUID, limits: tuple[str, ...], *, current_version: int | None
    ) -> None:
        named = ", ".join(repr(name) for name in limits)
        super().__init__(
            job_id,
            f"job {job_id} is governed by the limit {named}: it starts only through a claim",
            current_version=current_version,
        )
        self.limits = limits


class ConcurrentUpdate(JobConflict):
    """Another writer changed the job between our read and our compare-and-set (or, with
    no expected version, others kept winning the race until the retries ran out)."""

    def __init__(
        self, job_id: UUID, *, expected_version: int | None, current_version: int | None
    ) -> None:
        detail = (
            f"job {job_id} changed concurrently (expected version {expected_version}, "
            f"now {current_version})"
            if expected_version is not None
            else f"job {job_id} kept changing concurrently (now version {current_version}); "
            "try again"
        )
        super().__init__(job_id, detail, current_version=current_version)
        self.expected_version = expected_version


class LeaseLossReason(StrEnum):
    """Why a worker no longer holds a job's lease: a code a worker in any language can act
    on (`cancelled` means stop quietly; the others that the job went elsewhere)."""

    CANCELLED = "cancelled"
    """The job was cancelled."""
    FINISHED = "finished"
    """The job already completed or failed, by another attempt."""
    REASSIGNED = "reassigned"
    """The job runs under another lease: claimed again since (or the lease given was
    never this job's)."""
    EXPIRED = "expired"
    """The lease ran out and the job was queued again."""
    REQUEUED = "requeued"
    """The job was queued again (handed back, or retried) and holds no lease."""
    GONE = "gone"
    """The job no longer exists."""
    TIMED_OUT = "timed_out"
    """The job ran past its timeout: its lease is not extended past the deadline. Given
    to a heartbeat only while the attempt is still RUNNING past it; once the reaper has
    taken the job back (retried or failed, as timed out), the reason is what became of
    the job (`EXPIRED`, `REASSIGNED`, `FINISHED`…)."""

    @property
    def description(self) -> str:
        return _LEASE_LOSS_DESCRIPTIONS[self]


_LEASE_LOSS_DESCRIPTIONS = {
    LeaseLossReason.CANCELLED: "the job was cancelled",
    LeaseLossReason.FINISHED: "the job already finished",
    LeaseLossReason.REASSIGNED: "the job runs under another lease (it was claimed again, "
    "or the lease given was never this job's)",
    LeaseLossReason.EXPIRED: "the lease expired and the job was queued again",
    LeaseLossReason.REQUEUED: "the job was queued again and holds no lease",
    LeaseLossReason.GONE: "the job no longer exists",
    LeaseLossReason.TIMED_OUT: "the job ran past its timeout",
}


class LeaseLost(JobConflict):
    """A worker reported on a job whose lease it no longer holds."""

    def __init__(
        self, job_id: UUID, reason: LeaseLossReason, *, current_version: int | None
    ) -> None:
        super().__init__(
            job_id,
            f"lease on job {job_id} is gone: {reason.description}",
            current_version=current_version,
        )
        self.reason = reason


class ResultConflict(JobConflict):
    """The job already completed with a different result."""

    def __init__(self, job_id: UUID, *, current_version: int | None) -> None:
        super().__init__(
            job_id,
            f"job {job_id} already completed with a different result",
            current_version=current_version,
        )


class ProgressRegressed(JobConflict):
    def __init__(self, job_id: UUID, current: int, proposed: int, *, current_version: int) -> None:
        super().__init__(
            job_id,
            f"progress of job {job_id} would go back from {current} to {proposed}; "
            "send allow_decrease to move it back on purpose",
            current_version=current_version,
        )


class StepConflict(ConveyorError):
    def __init__(self, step_id: UUID, source: str, target: str) -> None:
        super().__init__(f"step {step_id} cannot move from {source} to {target}")
        self.step_id = step_id
        self.source = source
        self.target = target


class TransientDatabaseError(ConveyorError):
    """A write lost a race the database settled for us (deadlock, serialization failure,
    a lock held too long). Trying again is the right answer."""


class Unavailable(ConveyorError):
    """The database cannot be reached right now; the caller may try again later."""


class StorageUnavailable(ConveyorError):
    """The database is up but cannot store anything now: nothing of the request was
    written, and trying again helps only once an operator has acted (freed space, made the
    database writable again)."""

    reason: str = "storage unavailable"


class StorageFull(StorageUnavailable):
    """The database has no room left (SQLite: disk full or its size limit reached;
    PostgreSQL: disk full)."""

    reason = "storage full"


class StorageReadOnly(StorageUnavailable):
    """The database refuses writes (a read-only file or file system; a PostgreSQL standby
    or a read-only database)."""

    reason = "storage read-only"


OUTAGES: tuple[type[ConveyorError], ...] = (Unavailable, TransientDatabaseError, StorageUnavailable)
"""What a background loop (reaper, scheduler, pruner) waits out with a warning and tries
again: the database is away, lost a race, or cannot store anything until an operator acts."""


class StreamPositionGone(ConveyorError):
    """A workspace stream was asked to resume after an event, but events it has not sent
    were deleted since (by retention): resuming would skip them silently. The client must
    start afresh."""

    def __init__(self, event_id: int) -> None:
        super().__init__(
            f"events this stream has not sent (after event {event_id}) were deleted by "
            "retention: start the stream afresh (without Last-Event-ID or after_id)"
        )
        self.event_id = event_id
