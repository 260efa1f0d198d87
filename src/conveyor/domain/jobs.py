"""Jobs: the status machine, the one place that decides which moves are legal, and the
decisions that turn a request (complete, fail, cancel…) into a proposed change.

A decision reads the job as it was, checks the move against the transition table and
returns a `JobChange`. The store applies that change as a compare-and-set on the job's
version and on the statuses the table allows, so a decision made on a stale read can
never be stored: the write misses and the service decides again on a fresh read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, NamedTuple
from uuid import UUID

from conveyor.domain import events
from conveyor.domain.backoff import backoff_delay
from conveyor.domain.capacity import (
    LIMIT_NAME_MAX_LENGTH,
    TYPE_LIMIT_PREFIX,
    limit_names,
    validate_limit_name,
)
from conveyor.domain.errors import (
    InvalidInput,
    InvalidTransition,
    JobConflict,
    LeaseLossReason,
    LeaseLost,
    ProgressRegressed,
    ResultConflict,
)
from conveyor.domain.events import JsonValue, NewEvent
from conveyor.domain.job_types import JOB_TYPE_PATTERN, JOB_TYPE_RULE
from conveyor.domain.limits import validate_instant
from conveyor.domain.status import (
    CLAIMABLE_STATUS,
    LEASED_STATUS,
    SYSTEM_ONLY_TRANSITIONS,
    TERMINAL_STATUSES,
    TRANSITIONS,
    JobStatus,
    can_transition,
    sources_for,
)

__all__ = [  # the status machine, importable from here as before
    "CLAIMABLE_STATUS",
    "LEASED_STATUS",
    "SYSTEM_ONLY_TRANSITIONS",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "JobStatus",
    "can_transition",
    "sources_for",
]


# ---------------------------------------------------------------------------------------
# Limits on what a job may be created with.

PRIORITY_MIN: Final = 1
PRIORITY_MAX: Final = 10
PRIORITY_DEFAULT: Final = 5
MAX_ATTEMPTS_LIMIT: Final = 100
AGENT_TASK_ID_MAX_LENGTH: Final = 200
IDEMPOTENCY_KEY_MAX_LENGTH: Final = 200
CONCURRENCY_KEY_MAX_LENGTH: Final = LIMIT_NAME_MAX_LENGTH
"""A concurrency key names a limit: it is one of the names a limit may have."""
TIMEOUT_LIMIT_SECONDS: Final = 7 * 24 * 3600.0
DEFAULT_TIMEOUT_GRACE_SECONDS: Final = 5.0
"""How long past a job's timeout the server still leases it: its worker's time to stop the
handler and report the failure itself (see domain/timeouts.py)."""
DEFAULT_LEASE_SECONDS: Final = 30.0
"""A lease's length where a claim (or a start by status) names none. A job keeps the length
its claim or start asked for (`lease_seconds`), and a heartbeat that names none renews the
lease for that long (one that names a length gets it, once): a lease is never shortened by
a heartbeat that left it out."""
ERROR_MAX_CHARS: Final = 16 * 1024
ERROR_DETAIL_MAX_CHARS: Final = 64 * 1024
"""A failure's detail (a traceback) is kept to its last this many characters: the end of
a traceback is where the error was raised."""
CLAIM_LIMIT_OVER_HTTP: Final = 500
"""The most jobs one claim request over HTTP may ask for."""
DEFAULT_RETRY_BACKOFF_SECONDS: Final = 1.0
DEFAULT_RETRY_BACKOFF_MAX_SECONDS: Final = 300.0
RETRY_BACKOFF_LIMIT_SECONDS: Final = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a client asks for when it creates a job."""

    type: str
    payload: JsonValue = field(default_factory=dict)
    priority: int = PRIORITY_DEFAULT
    agent_task_id: str | None = None
    max_attempts: int = 1
    run_at: datetime | None = None
    idempotency_key: str | None = None
    hold: bool = False
    """Create the job PENDING: not claimable until it is released (moved to QUEUED)."""
    retry_backoff_seconds: float = DEFAULT_RETRY_BACKOFF_SECONDS
    retry_backoff_max_seconds: float = DEFAULT_RETRY_BACKOFF_MAX_SECONDS
    retry_of: UUID | None = None
    concurrency_key: str | None = None
    """The limit (a customer, a model API…) this job counts against, besides `type:<type>`."""
    timeout_seconds: float | None = None
    """How long one attempt may run before it is cancelled and fails; None: no limit."""
    origin: Mapping[str, JsonValue] | None = None
    """Where the job came from when no client asked for it directly (a schedule and its
    tick): said in its `job.created` event, not stored on the job."""

    def validate(self) -> None:
        if not JOB_TYPE_PATTERN.match(self.type):
            raise InvalidInput("type", JOB_TYPE_RULE)
        if not PRIORITY_MIN <= self.priority <= PRIORITY_MAX:
            raise InvalidInput("priority", f"must be between {PRIORITY_MIN} and {PRIORITY_MAX}")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise InvalidInput("max_attempts", f"must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        if self.agent_task_id is not None and not (
            0 < len(self.agent_task_id) <= AGENT_TASK_ID_MAX_LENGTH
        ):
            raise InvalidInput("agent_task_id", f"must be 1..{AGENT_TASK_ID_MAX_LENGTH} characters")
        if self.idempotency_key is not None and not (
            0 < len(self.idempotency_key) <= IDEMPOTENCY_KEY_MAX_LENGTH
        ):
            raise InvalidInput(
                "idempotency_key", f"must be 1..{IDEMPOTENCY_KEY_MAX_LENGTH} characters"
            )
        if not 0 <= self.retry_backoff_seconds <= RETRY_BACKOFF_LIMIT_SECONDS:
            raise InvalidInput("retry_backoff_seconds", "must be between 0 and 7 days")
        if not self.retry_backoff_seconds <= self.retry_backoff_max_seconds:
            raise InvalidInput(
                "retry_backoff_max_seconds", "must not be smaller than retry_backoff_seconds"
            )
        if not self.retry_backoff_max_seconds <= RETRY_BACKOFF_LIMIT_SECONDS:
            raise InvalidInput("retry_backoff_max_seconds", "must be at most 7 days")
        if self.run_at is not None:
            validate_instant(self.run_at, "run_at")
        if self.concurrency_key is not None:
            if self.concurrency_key.startswith(TYPE_LIMIT_PREFIX):
                raise InvalidInput(
                    "concurrency_key",
                    f"must not begin with {TYPE_LIMIT_PREFIX!r}: that prefix names the limit of "
                    f"a job type ({TYPE_LIMIT_PREFIX}<job type>)",
                )
            validate_limit_name(self.concurrency_key, "concurrency_key")
        if self.timeout_seconds is not None and not (
            0 < self.timeout_seconds <= TIMEOUT_LIMIT_SECONDS
        ):
            raise InvalidInput("timeout_seconds", "must be more than 0 and at most 7 days")


class Job(NamedTuple):
    """A job as it was read or written: an immutable snapshot. A named tuple rather than a
    frozen dataclass because the hot paths build thousands a second (a claim or completion
    batch is hundreds of rows): building one is ten times cheaper."""

    id: UUID
    workspace_id: UUID
    type: str
    status: JobStatus
    priority: int
    payload: JsonValue
    result: JsonValue
    error: str | None
    progress_percent: int
    agent_task_id: str | None
    attempt: int
    max_attempts: int
    run_at: datetime
    idempotency_key: str | None
    worker_id: str | None
    lease_id: UUID | None
    lease_expires_at: datetime | None
    retry_of: UUID | None
    retry_backoff_seconds: float
    retry_backoff_max_seconds: float
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    version: int
    last_event_seq: int
    error_detail: str | None
    """What the worker said of its last failure beyond `error`: a traceback, say."""
    concurrency_key: str | None
    timeout_seconds: float | None


class Completion(NamedTuple):
    """A worker's report that a job of `workspace_id` it holds under `lease_id` finished
    with `result` (a named tuple, like `Job`: a completion batch builds hundreds; one batch
    may complete jobs of many workspaces, as an instance worker's does)."""

    workspace_id: UUID
    job_id: UUID
    lease_id: UUID
    result: JsonValue


class ClaimRequest(NamedTuple):
    """What a worker asks a claim for: up to `limit` jobs of `types` (any type if None)
    from `workspaces` (every workspace if None), each under a fresh lease of
    `lease_seconds` held by `worker_id`; `actor` is who the jobs' `job.started` events
    name."""

    types: Sequence[str] | None
    limit: int
    lease_seconds: float
    worker_id: str
    actor: str
    workspaces: Sequence[UUID] | None = None
    timeout_grace_seconds: float = DEFAULT_TIMEOUT_GRACE_SECONDS
    """A job with a timeout is leased no further than its deadline, `timeout_seconds` plus
    this after it starts."""


class ClaimedJob(NamedTuple):
    """A claimed job as its worker holds it: what running it takes and the lease to
    report under; with when it was due and when it started, where the claim's answer
    says (the API's does, for the metrics; a worker needs neither)."""

    id: UUID
    type: str
    payload: JsonValue
    attempt: int
    max_attempts: int
    priority: int
    agent_task_id: str | None
    lease_id: UUID
    lease_expires_at: datetime | None
    run_at: datetime | None = None
    started_at: datetime | None = None
    timeout_seconds: float | None = None
    """How long this attempt may run (the worker cancels its handler after it)."""
    workspace_id: UUID | None = None
    """Its workspace: where reports on it go (a worker may serve several)."""


class CompletedJob(NamedTuple):
    """A job just completed, in brief: which one, its type, and when it started and
    completed (what the metrics count of it)."""

    id: UUID
    type: str
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobChange:
    """A proposed change to one job, applied by the store as one compare-and-set.

    `values` are plain column values; `stamp` names timestamp columns set to the database's
    clock; `delay` sets timestamp columns to that clock plus some seconds. Keeping time on
    the database's clock means several machines agree on when a lease ends.
    """

    job_id: UUID
    expected_version: int | None
    """None: the change does not depend on the version read (its guards say it all)."""
    target: JobStatus | None
    allowed_sources: frozenset[JobStatus]
    values: Mapping[str, object] = field(default_factory=dict)
    stamp: frozenset[str] = frozenset()
    delay: Mapping[str, float] = field(default_factory=dict)
    events: tuple[NewEvent, ...] = ()
    only_if_lease_expired: bool = False
    """Store the change only while the lease deadline is still past: a heartbeat extends a
    lease without changing the version, and must win against the reaper."""
    lease_id: UUID | None = None
    """Store the change only while the job holds this lease."""
    progress_at_most: int | None = None
    """Store the change only while the job's progress is at most this."""
    unless_limits: tuple[str, ...] = ()
    """Store the change only while the workspace has none of these limits: only a claim
    counts what limits let start. The store checks under the workspace's claim lock, so a
    claim counting what runs never misses a start made this way."""


def _change(
    job: Job,
    target: JobStatus | None,
    *,
    by_system: bool = False,
    values: Mapping[str, object] | None = None,
    stamp: frozenset[str] = frozenset(),
    delay: Mapping[str, float] | None = None,
    events: tuple[NewEvent, ...] = (),
    only_if_lease_expired: bool = False,
) -> JobChange:
    if target is not None and not can_transition(job.status, target, by_system=by_system):
        raise InvalidTransition(job.id, job.status.value, target.value, current_version=job.version)
    allowed = (
        sources_for(target, by_system=by_system) if target is not None else frozenset({job.status})
    )
    return JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=target,
        allowed_sources=allowed,
        values=values or {},
        stamp=stamp,
        delay=delay or {},
        events=events,
        only_if_lease_expired=only_if_lease_expired,
    )


# ---------------------------------------------------------------------------------------
# Fencing: who may report on a job.


def ensure_lease(job: Job, lease_id: UUID | None) -> None:
    """Refuse a report from a worker that no longer holds the job's lease.

    A lease lasts until it is reclaimed (by the reaper, a cancel or a new claim), not
    merely until its deadline: while nobody else has the job, a late report is harmless.
    """
    if lease_id is None:
        if job.status == LEASED_STATUS:
            raise InvalidInput("lease_id", "is required to report on a RUNNING job")
        if job.status.is_terminal:
            raise JobConflict(
                job.id, f"job {job.id} is {job.status.value}", current_version=job.version
            )
        return
    if job.status == LEASED_STATUS and job.lease_id == lease_id:
        return
    raise LeaseLost(job.id, _why_lease_is_gone(job), current_version=job.version)


def reportable_statuses(lease_id: UUID | None) -> frozenset[JobStatus]:
    """The statuses in which a report (step, event) is accepted, with or without a lease:
    the guard `ensure_lease` explains when a guarded write misses."""
    if lease_id is not None:
        return frozenset({LEASED_STATUS})
    return frozenset({JobStatus.PENDING, JobStatus.QUEUED})


def _why_lease_is_gone(job: Job) -> LeaseLossReason:
    if job.status == JobStatus.CANCELLED:
        return LeaseLossReason.CANCELLED
    if job.status.is_terminal:
        return LeaseLossReason.FINISHED
    if job.status == LEASED_STATUS:
        return LeaseLossReason.REASSIGNED
    if job.status == JobStatus.QUEUED and job.attempt > 1:
        return LeaseLossReason.EXPIRED
    return LeaseLossReason.REQUEUED


# ---------------------------------------------------------------------------------------
# Decisions.


def decide_creation_events(spec: JobSpec, actor: str) -> tuple[NewEvent, ...]:
    payload: dict[str, JsonValue] = {
        "type": spec.type,
        "priority": spec.priority,
        "retry_of": _str_or_none(spec.retry_of),
    }
    if spec.origin:
        payload.update(spec.origin)
    created = NewEvent(events.JOB_CREATED, actor, payload)
    if spec.hold:
        return (created,)
    return (created, NewEvent(events.JOB_QUEUED, actor, {"attempt": 1}))


def decide_enqueue(job: Job, actor: str) -> JobChange:
    """PENDING → QUEUED: a held job becomes claimable."""
    return _change(
        job,
        JobStatus.QUEUED,
        events=(NewEvent(events.JOB_QUEUED, actor, {"attempt": job.attempt}),),
    )


def first_lease_seconds(
    timeout_seconds: float | None, lease_seconds: float, grace_seconds: float
) -> float:
    """How long a lease taken as an attempt starts may last: never past its deadline
    (conveyor/domain/timeouts.py)."""
    if timeout_seconds is None:
        return lease_seconds
    return min(lease_seconds, timeout_seconds + grace_seconds)


def decide_start(
    job: Job,
    *,
    worker_id: str,
    lease_id: UUID,
    lease_seconds: float,
    grace_seconds: float,
    actor: str,
) -> JobChange:
    """PENDING/QUEUED → RUNNING for one named job (a claim of a particular job), under a
    lease of `lease_seconds` (never past the attempt's deadline: `grace_seconds` after its
    timeout), which its heartbeats renew: only while no limit governs it
    (`StartsOnlyByClaim` otherwise)."""
    change = _change(
        job,
        JobStatus.RUNNING,
        values={"worker_id": worker_id, "lease_id": lease_id, "lease_seconds": lease_seconds},
        stamp=frozenset({"started_at"}),
        delay={
            "lease_expires_at": first_lease_seconds(
                job.timeout_seconds, lease_seconds, grace_seconds
            )
        },
        events=(start_event(job.attempt, worker_id, actor),),
    )
    return replace(change, unless_limits=limit_names(job.type, job.concurrency_key))


def start_event(attempt: int, worker_id: str, actor: str) -> NewEvent:
    """What every start writes, whether of one named job or of a batch claim."""
    return NewEvent(events.JOB_STARTED, actor, {"attempt": attempt, "worker_id": worker_id})


def decide_cancel(job: Job, actor: str, reason: str | None = None) -> JobChange:
    return _change(
        job,
        JobStatus.CANCELLED,
        values={"lease_expires_at": None},
        stamp=frozenset({"completed_at"}),
        events=(
            NewEvent(
                events.JOB_CANCELLED,
                actor,
                {"previous_status": job.status.value, "reason": reason},
            ),
        ),
    )


def is_repeat_completion(job: Job, lease_id: UUID | None, result: JsonValue) -> bool:
    """The same worker completing twice with the same result is a no-op (a retried
    request); with another result it is a conflict. Any other lease has lost the job."""
    if job.status != JobStatus.COMPLETED:
        return False
    if lease_id is None or job.lease_id != lease_id:
        raise LeaseLost(job.id, LeaseLossReason.FINISHED, current_version=job.version)
    if job.result != result:
        raise ResultConflict(job.id, current_version=job.version)
    return True


COMPLETED_VALUES: Final[Mapping[str, object]] = {
    "error": None,
    "error_detail": None,
    "progress_percent": 100,
    "lease_expires_at": None,
}
"""What completing a job sets besides its status, result and completed_at: the batch
completions write exactly these too (`{completed_values}` in the query files)."""


def completion_event(attempt: int, actor: str) -> NewEvent:
    return NewEvent(events.JOB_COMPLETED, actor, {"attempt": attempt})


def decide_completion(job: Job, lease_id: UUID, result: JsonValue, actor: str) -> JobChange:
    ensure_lease(job, lease_id)
    return _change(
        job,
        JobStatus.COMPLETED,
        values={"result": result, **COMPLETED_VALUES},
        stamp=frozenset({"completed_at"}),
        events=(completion_event(job.attempt, actor),),
    )


def decide_failure(
    job: Job,
    lease_id: UUID,
    error: str,
    *,
    retryable: bool,
    jitter: float,
    actor: str,
    detail: str | None = None,
    timed_out: bool = False,
    timeout_seconds: float | None = None,
) -> JobChange:
    """The job's attempt failed: run it again after the backoff while it may, else FAILED.
    `detail` (a traceback) is kept with the error, its end when it is long. An attempt that
    `timed_out` says so first (`job.timed_out`), naming the timeout that ran out: the
    job's own unless `timeout_seconds` says otherwise (a handler's default)."""
    ensure_lease(job, lease_id)
    error = error[:ERROR_MAX_CHARS]
    if detail is not None:
        detail = detail[-ERROR_DETAIL_MAX_CHARS:]
    first: tuple[NewEvent, ...] = ()
    if timed_out:
        seconds = job.timeout_seconds if timeout_seconds is None else timeout_seconds
        first = (
            NewEvent(
                events.JOB_TIMED_OUT, actor, {"attempt": job.attempt, "timeout_seconds": seconds}
            ),
        )
    if retryable and job.attempt < job.max_attempts:
        delay = backoff_delay(
            job.attempt,
            first=job.retry_backoff_seconds,
            cap=job.retry_backoff_max_seconds,
            jitter=jitter,
        )
        retrying = NewEvent(
            events.JOB_RETRYING,
            actor,
            {"attempt": job.attempt + 1, "error": error, "retry_in_seconds": round(delay, 3)},
        )
        return _requeue(job, error, (*first, retrying), run_in=delay, actor=actor, detail=detail)
    return _fail(job, error, first, actor=actor, detail=detail)


def decide_lease_expiry(job: Job) -> JobChange:
    """A RUNNING job whose worker stopped heartbeating. A crash is not the job's failure:
    it is queued again where it was (its priority and original due time, no backoff), on
    its next attempt so that a job that kills every worker still runs out of attempts;
    when they are spent it fails for good. Guarded so that a heartbeat landing in between
    wins."""
    retried = job.attempt < job.max_attempts
    if job.status != LEASED_STATUS:
        target = JobStatus.QUEUED if retried else JobStatus.FAILED
        raise InvalidTransition(job.id, job.status.value, target.value, current_version=job.version)
    actor = events.SYSTEM_ACTOR
    expired = NewEvent(
        events.JOB_LEASE_EXPIRED, actor, {"attempt": job.attempt, "worker_id": job.worker_id}
    )
    error = f"lease expired on attempt {job.attempt} (worker {job.worker_id})"
    if retried:
        change = _requeue(job, error, (expired,), run_in=None, actor=actor)
    else:
        change = _fail(job, error, (expired,), actor=actor)
    return replace(change, only_if_lease_expired=True)


def decide_handback(job: Job, lease_id: UUID, actor: str) -> JobChange:
    """A worker that is shutting down hands its job back: queued again where it was, on
    the same attempt (nothing failed), under a new lease when it is next claimed."""
    ensure_lease(job, lease_id)
    change = _change(
        job,
        JobStatus.QUEUED,
        by_system=True,
        values={
            "lease_id": None,
            "worker_id": None,
            "lease_expires_at": None,
            "progress_percent": 0,
        },
        events=(
            NewEvent(
                events.JOB_RELEASED, actor, {"attempt": job.attempt, "worker_id": job.worker_id}
            ),
            NewEvent(events.JOB_QUEUED, actor, {"attempt": job.attempt}),
        ),
    )
    return replace(change, allowed_sources=frozenset({LEASED_STATUS}))


def _requeue(
    job: Job,
    error: str,
    first_events: tuple[NewEvent, ...],
    *,
    run_in: float | None,
    actor: str,
    detail: str | None = None,
) -> JobChange:
    """RUNNING → QUEUED on the next attempt: due `run_in` seconds from now, or, with None,
    at its own run_at (its place in the queue). Stored only from the leased status (the
    table would let the system queue a PENDING job too, but a retry is not that)."""
    next_attempt = job.attempt + 1
    change = _change(
        job,
        JobStatus.QUEUED,
        by_system=True,
        values={
            "attempt": next_attempt,
            "error": error,
            "error_detail": detail,
            "progress_percent": 0,
            "lease_id": None,
            "worker_id": None,
            "lease_expires_at": None,
        },
        delay={} if run_in is None else {"run_at": run_in},
        events=(*first_events, NewEvent(events.JOB_QUEUED, actor, {"attempt": next_attempt})),
    )
    return replace(change, allowed_sources=frozenset({LEASED_STATUS}))


def _fail(
    job: Job,
    error: str,
    first_events: tuple[NewEvent, ...],
    *,
    actor: str,
    detail: str | None = None,
) -> JobChange:
    return _change(
        job,
        JobStatus.FAILED,
        values={"error": error, "error_detail": detail, "lease_expires_at": None},
        stamp=frozenset({"completed_at"}),
        events=(
            *first_events,
            NewEvent(events.JOB_FAILED, actor, {"attempt": job.attempt, "error": error}),
        ),
    )


def decide_progress(
    job: Job,
    *,
    lease_id: UUID | None,
    percent: int,
    message: str | None,
    allow_decrease: bool,
    actor: str,
) -> JobChange:
    if not 0 <= percent <= 100:
        raise InvalidInput("progress_percent", "must be between 0 and 100")
    ensure_lease(job, lease_id)
    if percent < job.progress_percent and not allow_decrease:
        raise ProgressRegressed(job.id, job.progress_percent, percent, current_version=job.version)
    return _change(
        job,
        None,
        values={"progress_percent": percent},
        events=(progress_event(percent, message, actor),),
    )


def progress_report(
    job_id: UUID,
    *,
    lease_id: UUID | None,
    percent: int,
    message: str | None,
    allow_decrease: bool,
    actor: str,
) -> JobChange:
    """A progress report as a change decided without reading the job: its guards hold the
    rules `decide_progress` applies (a status that takes reports, the worker's lease,
    never backwards unless asked), so concurrent reports queue on the row lock instead of
    failing each other's compare-and-set. When the guards refuse, `decide_progress` on a
    fresh read says why."""
    if not 0 <= percent <= 100:
        raise InvalidInput("progress_percent", "must be between 0 and 100")
    return JobChange(
        job_id=job_id,
        expected_version=None,
        target=None,
        allowed_sources=reportable_statuses(lease_id),
        values={"progress_percent": percent},
        events=(progress_event(percent, message, actor),),
        lease_id=lease_id,
        progress_at_most=None if allow_decrease else percent,
    )


def progress_event(percent: int, message: str | None, actor: str) -> NewEvent:
    return NewEvent(events.JOB_PROGRESS, actor, {"progress_percent": percent, "message": message})


def decide_status_request(
    job: Job,
    target: JobStatus,
    *,
    actor: str,
    lease_id: UUID | None,
    worker_id: str | None,
    new_lease_id: UUID,
    lease_seconds: float,
    grace_seconds: float,
    result: JsonValue,
    error: str | None,
    reason: str | None,
) -> JobChange:
    """A caller asks for a status by name (`PATCH …/status`): route it to the decision that
    owns that move, so the generic route can never do what the specific ones refuse."""
    if target == JobStatus.QUEUED:
        return decide_enqueue(job, actor)
    if target == JobStatus.RUNNING:
        return decide_start(
            job,
            worker_id=worker_id or "unnamed",
            lease_id=new_lease_id,
            lease_seconds=lease_seconds,
            grace_seconds=grace_seconds,
            actor=actor,
        )
    if target == JobStatus.CANCELLED:
        return decide_cancel(job, actor, reason)
    if target == JobStatus.COMPLETED:
        if lease_id is None:
            raise InvalidInput("lease_id", "is required to complete a job")
        return decide_completion(job, lease_id, result, actor)
    if target == JobStatus.FAILED:
        if lease_id is None:
            raise InvalidInput("lease_id", "is required to fail a job")
        return decide_failure(
            job, lease_id, error or "failed", retryable=False, jitter=0.0, actor=actor
        )
    raise InvalidTransition(job.id, job.status.value, target.value, current_version=job.version)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
