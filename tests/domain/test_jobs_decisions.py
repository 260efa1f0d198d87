"""The job decisions, without a database: what each proposes (target, guard, values, stamps,
delays, events in order) and what each refuses, with which error.

Messages are prose and may be reworded; the tests pin error types and their fields."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.backoff import backoff_delay
from conveyor.domain.errors import (
    InvalidInput,
    InvalidTransition,
    JobConflict,
    LeaseLost,
    ProgressRegressed,
    ResultConflict,
)
from conveyor.domain.events import (
    JOB_CANCELLED,
    JOB_COMPLETED,
    JOB_CREATED,
    JOB_FAILED,
    JOB_LEASE_EXPIRED,
    JOB_PROGRESS,
    JOB_QUEUED,
    JOB_RELEASED,
    JOB_RETRYING,
    JOB_STARTED,
    SYSTEM_ACTOR,
    NewEvent,
)
from conveyor.domain.jobs import (
    ERROR_MAX_CHARS,
    MAX_ATTEMPTS_LIMIT,
    RETRY_BACKOFF_LIMIT_SECONDS,
    SYSTEM_ONLY_TRANSITIONS,
    TERMINAL_STATUSES,
    Job,
    JobChange,
    JobSpec,
    JobStatus,
    can_transition,
    decide_cancel,
    decide_completion,
    decide_creation_events,
    decide_enqueue,
    decide_failure,
    decide_handback,
    decide_lease_expiry,
    decide_progress,
    decide_start,
    decide_status_request,
    ensure_lease,
    is_repeat_completion,
    progress_report,
    reportable_statuses,
    sources_for,
)
from tests.domain.factories import WORKER_ID, held_lease, make_completed_job, make_job

S = JobStatus
ACTOR = "key:client-1"
WORKER_ACTOR = "worker:worker-1"
NOT_RUNNING = [status for status in JobStatus if status != S.RUNNING]
LIVE = [status for status in JobStatus if not status.is_terminal]


def assert_refused_move(error: InvalidTransition, job: Job, target: JobStatus) -> None:
    assert error.job_id == job.id
    assert error.source == job.status.value
    assert error.target == target.value
    assert error.current_version == job.version


# ---------------------------------------------------------------------------------------
# JobSpec.validate


def test_a_plain_spec_is_valid() -> None:
    JobSpec(type="email.send").validate()


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(type="a"),
        JobSpec(type="x" * 100),
        JobSpec(type="ns.sub:kind-1_2"),
        JobSpec(type="t", priority=1),
        JobSpec(type="t", priority=10),
        JobSpec(type="t", max_attempts=1),
        JobSpec(type="t", max_attempts=MAX_ATTEMPTS_LIMIT),
        JobSpec(type="t", agent_task_id="a"),
        JobSpec(type="t", agent_task_id="a" * 200),
        JobSpec(type="t", idempotency_key="k"),
        JobSpec(type="t", idempotency_key="k" * 200),
        JobSpec(type="t", retry_backoff_seconds=0.0, retry_backoff_max_seconds=0.0),
        JobSpec(
            type="t",
            retry_backoff_seconds=RETRY_BACKOFF_LIMIT_SECONDS,
            retry_backoff_max_seconds=RETRY_BACKOFF_LIMIT_SECONDS,
        ),
        JobSpec(type="t", run_at=datetime(2030, 1, 1, tzinfo=UTC)),
        JobSpec(type="t", hold=True, retry_of=uuid4(), payload=[1, 2]),
    ],
)
def test_spec_values_at_the_limits_are_valid(spec: JobSpec) -> None:
    spec.validate()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec(type=""), "type"),
        (JobSpec(type="x" * 101), "type"),
        (JobSpec(type="Email.Send"), "type"),
        (JobSpec(type="email send"), "type"),
        (JobSpec(type="email/send"), "type"),
        (JobSpec(type="t", priority=0), "priority"),
        (JobSpec(type="t", priority=11), "priority"),
        (JobSpec(type="t", max_attempts=0), "max_attempts"),
        (JobSpec(type="t", max_attempts=MAX_ATTEMPTS_LIMIT + 1), "max_attempts"),
        (JobSpec(type="t", agent_task_id=""), "agent_task_id"),
        (JobSpec(type="t", agent_task_id="a" * 201), "agent_task_id"),
        (JobSpec(type="t", idempotency_key=""), "idempotency_key"),
        (JobSpec(type="t", idempotency_key="k" * 201), "idempotency_key"),
        (JobSpec(type="t", retry_backoff_seconds=-0.5), "retry_backoff_seconds"),
        (
            JobSpec(
                type="t",
                retry_backoff_seconds=RETRY_BACKOFF_LIMIT_SECONDS + 1,
                retry_backoff_max_seconds=RETRY_BACKOFF_LIMIT_SECONDS + 1,
            ),
            "retry_backoff_seconds",
        ),
        (
            JobSpec(type="t", retry_backoff_seconds=10.0, retry_backoff_max_seconds=5.0),
            "retry_backoff_max_seconds",
        ),
        (
            JobSpec(type="t", retry_backoff_max_seconds=RETRY_BACKOFF_LIMIT_SECONDS + 1),
            "retry_backoff_max_seconds",
        ),
        (JobSpec(type="t", run_at=datetime(2030, 1, 1)), "run_at"),
    ],
)
def test_spec_refusals_name_the_field(spec: JobSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        spec.validate()
    assert refused.value.field == field


def test_a_type_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        JobSpec(type="email.send\n").validate()
    assert refused.value.field == "type"


# ---------------------------------------------------------------------------------------
# Fencing: ensure_lease, reportable_statuses, is_repeat_completion


def test_the_lease_holder_may_report_on_its_running_job() -> None:
    job = make_job(S.RUNNING)
    ensure_lease(job, job.lease_id)


def test_another_lease_on_a_running_job_has_lost_it() -> None:
    job = make_job(S.RUNNING)
    with pytest.raises(LeaseLost) as refused:
        ensure_lease(job, uuid4())
    assert refused.value.job_id == job.id
    assert refused.value.current_version == job.version


@pytest.mark.parametrize("status", NOT_RUNNING)
def test_any_lease_on_a_job_that_is_not_running_has_lost_it(status: JobStatus) -> None:
    held = uuid4()
    job = make_job(status, lease_id=held, attempt=2)
    with pytest.raises(LeaseLost) as refused:
        ensure_lease(job, held)
    assert refused.value.current_version == job.version


def test_a_report_without_a_lease_on_a_running_job_must_name_the_lease() -> None:
    with pytest.raises(InvalidInput) as refused:
        ensure_lease(make_job(S.RUNNING), None)
    assert refused.value.field == "lease_id"


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_a_report_without_a_lease_on_a_finished_job_conflicts(status: JobStatus) -> None:
    job = make_job(status)
    with pytest.raises(JobConflict) as refused:
        ensure_lease(job, None)
    assert type(refused.value) is JobConflict  # not LeaseLost: nobody held a lease
    assert refused.value.current_version == job.version


@pytest.mark.parametrize("status", [S.PENDING, S.QUEUED])
def test_a_job_nobody_holds_takes_reports_without_a_lease(status: JobStatus) -> None:
    ensure_lease(make_job(status), None)


def test_reportable_statuses_are_what_ensure_lease_lets_through() -> None:
    assert reportable_statuses(uuid4()) == {S.RUNNING}
    assert reportable_statuses(None) == {S.PENDING, S.QUEUED}
    for status in JobStatus:
        job = make_job(status)
        for lease in (job.lease_id or uuid4(), None):
            try:
                ensure_lease(job, lease)
            except (InvalidInput, JobConflict):
                accepted = False
            else:
                accepted = True
            assert accepted == (status in reportable_statuses(lease)), (status, lease)


@pytest.mark.parametrize("status", [S.PENDING, S.QUEUED, S.RUNNING, S.FAILED, S.CANCELLED])
def test_a_job_not_yet_completed_is_never_a_repeat_completion(status: JobStatus) -> None:
    job = make_job(status)
    assert is_repeat_completion(job, job.lease_id, job.result) is False
    assert is_repeat_completion(job, uuid4(), {"other": True}) is False
    assert is_repeat_completion(job, None, None) is False


def test_the_same_worker_completing_twice_with_the_same_result_is_a_repeat() -> None:
    lease = uuid4()
    job = make_completed_job(lease, {"sent": 3})
    assert is_repeat_completion(job, lease, {"sent": 3}) is True


def test_the_same_worker_completing_with_another_result_conflicts() -> None:
    lease = uuid4()
    job = make_completed_job(lease, {"sent": 3})
    with pytest.raises(ResultConflict) as refused:
        is_repeat_completion(job, lease, {"sent": 4})
    assert refused.value.current_version == job.version


@pytest.mark.parametrize("lease", [uuid4(), None])
def test_completing_a_job_another_attempt_completed_has_lost_the_lease(lease: UUID | None) -> None:
    job = make_completed_job(uuid4(), {"sent": 3})
    with pytest.raises(LeaseLost):
        is_repeat_completion(job, lease, {"sent": 3})


# ---------------------------------------------------------------------------------------
# Creation, enqueue, start


def test_a_new_job_is_created_then_queued() -> None:
    retry_of = uuid4()
    spec = JobSpec(type="email.send", priority=8, retry_of=retry_of)
    assert decide_creation_events(spec, ACTOR) == (
        NewEvent(
            JOB_CREATED, ACTOR, {"type": "email.send", "priority": 8, "retry_of": str(retry_of)}
        ),
        NewEvent(JOB_QUEUED, ACTOR, {"attempt": 1}),
    )


def test_a_held_job_is_only_created() -> None:
    spec = JobSpec(type="email.send", hold=True)
    assert decide_creation_events(spec, ACTOR) == (
        NewEvent(JOB_CREATED, ACTOR, {"type": "email.send", "priority": 5, "retry_of": None}),
    )


def test_enqueue_releases_a_held_job() -> None:
    job = make_job(S.PENDING, attempt=1)
    change = decide_enqueue(job, ACTOR)
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.QUEUED,
        allowed_sources=sources_for(S.QUEUED),
        events=(NewEvent(JOB_QUEUED, ACTOR, {"attempt": 1}),),
    )
    assert change.allowed_sources == {S.PENDING}


@pytest.mark.parametrize("status", [s for s in JobStatus if s != S.PENDING])
def test_enqueue_refuses_any_job_but_a_held_one(status: JobStatus) -> None:
    job = make_job(status)
    with pytest.raises(InvalidTransition) as refused:
        decide_enqueue(job, ACTOR)
    assert_refused_move(refused.value, job, S.QUEUED)


@pytest.mark.parametrize("status", [S.PENDING, S.QUEUED])
def test_start_runs_a_job_under_a_new_lease(status: JobStatus) -> None:
    job = make_job(status, attempt=2)
    lease = uuid4()
    change = decide_start(
        job, worker_id="w-9", lease_id=lease, lease_seconds=45.0, grace_seconds=5.0, actor=ACTOR
    )
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.RUNNING,
        allowed_sources=sources_for(S.RUNNING),
        values={"worker_id": "w-9", "lease_id": lease, "lease_seconds": 45.0},
        stamp=frozenset({"started_at"}),
        delay={"lease_expires_at": 45.0},
        events=(NewEvent(JOB_STARTED, ACTOR, {"attempt": 2, "worker_id": "w-9"}),),
        unless_limits=("type:email.send",),
    )
    assert change.allowed_sources == {S.PENDING, S.QUEUED}


def test_start_by_name_is_stored_only_while_no_limit_governs_the_job() -> None:
    job = make_job(S.QUEUED, concurrency_key="acme")
    change = decide_start(
        job, worker_id="w-9", lease_id=uuid4(), lease_seconds=45.0, grace_seconds=5.0, actor=ACTOR
    )
    assert set(change.unless_limits) == {"acme", "type:email.send"}


@pytest.mark.parametrize("status", [S.RUNNING, *sorted(TERMINAL_STATUSES)])
def test_start_refuses_a_running_or_finished_job(status: JobStatus) -> None:
    job = make_job(status)
    with pytest.raises(InvalidTransition) as refused:
        decide_start(
            job, worker_id="w", lease_id=uuid4(), lease_seconds=30.0, grace_seconds=5.0, actor=ACTOR
        )
    assert_refused_move(refused.value, job, S.RUNNING)


# ---------------------------------------------------------------------------------------
# Cancel


@pytest.mark.parametrize("status", LIVE)
def test_cancel_stops_a_live_job(status: JobStatus) -> None:
    job = make_job(status)
    change = decide_cancel(job, ACTOR, "no longer needed")
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.CANCELLED,
        allowed_sources=sources_for(S.CANCELLED),
        values={"lease_expires_at": None},
        stamp=frozenset({"completed_at"}),
        events=(
            NewEvent(
                JOB_CANCELLED,
                ACTOR,
                {"previous_status": status.value, "reason": "no longer needed"},
            ),
        ),
    )
    assert change.allowed_sources == set(LIVE)


def test_cancel_without_a_reason_says_none() -> None:
    change = decide_cancel(make_job(S.QUEUED), ACTOR)
    assert change.events[0].payload == {"previous_status": "QUEUED", "reason": None}


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_cancel_refuses_a_finished_job(status: JobStatus) -> None:
    job = make_job(status)
    with pytest.raises(InvalidTransition) as refused:
        decide_cancel(job, ACTOR)
    assert_refused_move(refused.value, job, S.CANCELLED)


# ---------------------------------------------------------------------------------------
# Completion


def test_completion_stores_the_result_and_finishes_the_job() -> None:
    job = make_job(S.RUNNING, attempt=2, progress_percent=40, error="earlier attempt failed")
    change = decide_completion(job, held_lease(job), {"sent": 3}, WORKER_ACTOR)
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.COMPLETED,
        allowed_sources=sources_for(S.COMPLETED),
        values={
            "result": {"sent": 3},
            "error": None,
            "error_detail": None,
            "progress_percent": 100,
            "lease_expires_at": None,
        },
        stamp=frozenset({"completed_at"}),
        events=(NewEvent(JOB_COMPLETED, WORKER_ACTOR, {"attempt": 2}),),
    )
    assert change.allowed_sources == {S.RUNNING}
    assert "lease_id" not in change.values  # kept: it recognises a repeated completion


def test_completion_under_another_lease_is_refused() -> None:
    job = make_job(S.RUNNING)
    with pytest.raises(LeaseLost):
        decide_completion(job, uuid4(), None, WORKER_ACTOR)


@pytest.mark.parametrize("status", NOT_RUNNING)
def test_completion_of_a_job_that_is_not_running_has_lost_the_lease(status: JobStatus) -> None:
    held = uuid4()
    job = make_job(status, lease_id=held)
    with pytest.raises(LeaseLost):
        decide_completion(job, held, None, WORKER_ACTOR)


# ---------------------------------------------------------------------------------------
# Failure


def test_a_retryable_failure_with_attempts_left_queues_the_next_attempt() -> None:
    job = make_job(S.RUNNING, attempt=1, max_attempts=3, progress_percent=60)
    change = decide_failure(job, held_lease(job), "boom", retryable=True, jitter=0.25, actor=ACTOR)
    delay = retry_delay(job, 0.25)
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.QUEUED,
        allowed_sources=frozenset({S.RUNNING}),  # a requeue is only ever of a running job
        values={
            "attempt": 2,
            "error_detail": None,
            "error": "boom",
            "progress_percent": 0,
            "lease_id": None,
            "worker_id": None,
            "lease_expires_at": None,
        },
        delay={"run_at": delay},
        events=(
            NewEvent(
                JOB_RETRYING,
                ACTOR,
                {"attempt": 2, "error": "boom", "retry_in_seconds": round(delay, 3)},
            ),
            NewEvent(JOB_QUEUED, ACTOR, {"attempt": 2}),
        ),
    )
    assert change.allowed_sources == {S.RUNNING}
    assert not change.stamp


def test_a_failure_on_the_last_attempt_fails_the_job() -> None:
    job = make_job(S.RUNNING, attempt=3, max_attempts=3)
    change = decide_failure(job, held_lease(job), "boom", retryable=True, jitter=0.5, actor=ACTOR)
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.FAILED,
        allowed_sources=sources_for(S.FAILED),
        values={"error": "boom", "error_detail": None, "lease_expires_at": None},
        stamp=frozenset({"completed_at"}),
        events=(NewEvent(JOB_FAILED, ACTOR, {"attempt": 3, "error": "boom"}),),
    )
    assert change.allowed_sources == {S.RUNNING}


def test_a_failure_that_is_not_retryable_fails_the_job_with_attempts_left() -> None:
    job = make_job(S.RUNNING, attempt=1, max_attempts=5)
    change = decide_failure(
        job, held_lease(job), "bad input", retryable=False, jitter=0.5, actor=ACTOR
    )
    assert change.target == S.FAILED
    assert change.values["error"] == "bad input"
    assert change.events == (NewEvent(JOB_FAILED, ACTOR, {"attempt": 1, "error": "bad input"}),)


@pytest.mark.parametrize("retryable", [True, False])
def test_a_long_error_is_kept_to_its_limit_everywhere(retryable: bool) -> None:
    job = make_job(S.RUNNING, attempt=1, max_attempts=2)
    error = "x" * ERROR_MAX_CHARS + "tail"
    change = decide_failure(
        job, held_lease(job), error, retryable=retryable, jitter=0.0, actor=ACTOR
    )
    assert change.values["error"] == "x" * ERROR_MAX_CHARS
    assert change.events[0].payload["error"] == "x" * ERROR_MAX_CHARS


def test_failure_under_another_lease_is_refused() -> None:
    job = make_job(S.RUNNING)
    with pytest.raises(LeaseLost):
        decide_failure(job, uuid4(), "boom", retryable=True, jitter=0.0, actor=ACTOR)


@pytest.mark.parametrize("status", NOT_RUNNING)
def test_failure_of_a_job_that_is_not_running_has_lost_the_lease(status: JobStatus) -> None:
    held = uuid4()
    job = make_job(status, lease_id=held)
    with pytest.raises(LeaseLost):
        decide_failure(job, held, "boom", retryable=False, jitter=0.0, actor=ACTOR)


# ---------------------------------------------------------------------------------------
# Lease expiry (the reaper)


def test_an_expired_lease_with_attempts_left_queues_the_next_attempt() -> None:
    job = make_job(S.RUNNING, attempt=1, max_attempts=2, progress_percent=30)
    change = decide_lease_expiry(job)
    error = change.values["error"]
    assert isinstance(error, str)
    assert error
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.QUEUED,
        allowed_sources=frozenset({S.RUNNING}),  # a retry is only ever of a running job
        values={
            "error_detail": None,
            "attempt": 2,
            "error": error,
            "progress_percent": 0,
            "lease_id": None,
            "worker_id": None,
            "lease_expires_at": None,
        },
        # A crash is not the job's failure: queued again where it was, no backoff.
        events=(
            NewEvent(JOB_LEASE_EXPIRED, SYSTEM_ACTOR, {"attempt": 1, "worker_id": WORKER_ID}),
            NewEvent(JOB_QUEUED, SYSTEM_ACTOR, {"attempt": 2}),
        ),
        only_if_lease_expired=True,
    )


def test_an_expired_lease_on_the_last_attempt_fails_the_job() -> None:
    job = make_job(S.RUNNING, attempt=2, max_attempts=2)
    change = decide_lease_expiry(job)
    error = change.values["error"]
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.FAILED,
        allowed_sources=sources_for(S.FAILED),
        values={"error": error, "error_detail": None, "lease_expires_at": None},
        stamp=frozenset({"completed_at"}),
        events=(
            NewEvent(JOB_LEASE_EXPIRED, SYSTEM_ACTOR, {"attempt": 2, "worker_id": WORKER_ID}),
            NewEvent(JOB_FAILED, SYSTEM_ACTOR, {"attempt": 2, "error": error}),
        ),
        only_if_lease_expired=True,
    )
    assert isinstance(error, str)
    assert WORKER_ID in error  # the failure says whose lease ran out


@pytest.mark.parametrize("attempt", [1, 3])
@pytest.mark.parametrize("status", [S.QUEUED, *sorted(TERMINAL_STATUSES)])
def test_lease_expiry_refuses_a_job_nobody_runs(status: JobStatus, attempt: int) -> None:
    job = make_job(status, attempt=attempt, max_attempts=3)
    with pytest.raises(InvalidTransition) as refused:
        decide_lease_expiry(job)
    assert_refused_move(refused.value, job, S.QUEUED if attempt < 3 else S.FAILED)


# ---------------------------------------------------------------------------------------
# Handback (a worker shutting down)


def test_handback_queues_the_job_again_where_it_was_on_the_same_attempt() -> None:
    job = make_job(S.RUNNING, attempt=2, progress_percent=70)
    change = decide_handback(job, held_lease(job), WORKER_ACTOR)
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=S.QUEUED,
        allowed_sources=frozenset({S.RUNNING}),  # a requeue is only ever of a running job
        values={
            "lease_id": None,
            "worker_id": None,
            "lease_expires_at": None,
            "progress_percent": 0,
        },
        events=(  # no delay: due when it was, so it keeps its place in the queue
            NewEvent(JOB_RELEASED, WORKER_ACTOR, {"attempt": 2, "worker_id": WORKER_ID}),
            NewEvent(JOB_QUEUED, WORKER_ACTOR, {"attempt": 2}),
        ),
    )
    assert "attempt" not in change.values


def test_handback_under_another_lease_is_refused() -> None:
    job = make_job(S.RUNNING)
    with pytest.raises(LeaseLost):
        decide_handback(job, uuid4(), WORKER_ACTOR)


@pytest.mark.parametrize("status", NOT_RUNNING)
def test_handback_of_a_job_that_is_not_running_has_lost_the_lease(status: JobStatus) -> None:
    held = uuid4()
    with pytest.raises(LeaseLost):
        decide_handback(make_job(status, lease_id=held), held, WORKER_ACTOR)


# ---------------------------------------------------------------------------------------
# Progress


def test_progress_from_the_lease_holder_changes_only_the_percentage() -> None:
    job = make_job(S.RUNNING, progress_percent=20)
    change = decide_progress(
        job, lease_id=job.lease_id, percent=55, message="half", allow_decrease=False, actor=ACTOR
    )
    assert change == JobChange(
        job_id=job.id,
        expected_version=job.version,
        target=None,
        allowed_sources=frozenset({S.RUNNING}),
        values={"progress_percent": 55},
        events=(NewEvent(JOB_PROGRESS, ACTOR, {"progress_percent": 55, "message": "half"}),),
    )


@pytest.mark.parametrize("status", [S.PENDING, S.QUEUED])
def test_progress_on_a_job_nobody_holds_needs_no_lease(status: JobStatus) -> None:
    job = make_job(status)
    change = decide_progress(
        job, lease_id=None, percent=10, message=None, allow_decrease=False, actor=ACTOR
    )
    assert change.target is None
    assert change.allowed_sources == {status}
    assert change.values == {"progress_percent": 10}


@pytest.mark.parametrize("percent", [20, 21, 100])
def test_progress_may_stay_or_grow(percent: int) -> None:
    job = make_job(S.RUNNING, progress_percent=20)
    change = decide_progress(
        job, lease_id=job.lease_id, percent=percent, message=None, allow_decrease=False, actor=ACTOR
    )
    assert change.values == {"progress_percent": percent}


def test_progress_going_back_is_refused_unless_asked_for() -> None:
    job = make_job(S.RUNNING, progress_percent=50)
    with pytest.raises(ProgressRegressed) as refused:
        decide_progress(
            job, lease_id=job.lease_id, percent=49, message=None, allow_decrease=False, actor=ACTOR
        )
    assert refused.value.current_version == job.version
    change = decide_progress(
        job, lease_id=job.lease_id, percent=0, message="restart", allow_decrease=True, actor=ACTOR
    )
    assert change.values == {"progress_percent": 0}


@pytest.mark.parametrize("percent", [-1, 101])
@pytest.mark.parametrize("status", list(JobStatus))
def test_progress_out_of_range_is_refused_before_anything_else(
    status: JobStatus, percent: int
) -> None:
    job = make_job(status)
    with pytest.raises(InvalidInput) as refused:
        decide_progress(
            job, lease_id=uuid4(), percent=percent, message=None, allow_decrease=True, actor=ACTOR
        )
    assert refused.value.field == "progress_percent"


def test_progress_under_another_lease_is_refused() -> None:
    job = make_job(S.RUNNING)
    with pytest.raises(LeaseLost):
        decide_progress(
            job, lease_id=uuid4(), percent=50, message=None, allow_decrease=False, actor=ACTOR
        )


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_progress_on_a_finished_job_is_refused(status: JobStatus) -> None:
    job = make_job(status)
    with pytest.raises(JobConflict):
        decide_progress(
            job, lease_id=None, percent=50, message=None, allow_decrease=True, actor=ACTOR
        )
    with pytest.raises(LeaseLost):
        decide_progress(
            job, lease_id=uuid4(), percent=50, message=None, allow_decrease=True, actor=ACTOR
        )


@pytest.mark.parametrize(("allow_decrease", "at_most"), [(False, 40), (True, None)])
def test_progress_report_carries_the_rules_as_guards(
    allow_decrease: bool, at_most: int | None
) -> None:
    job_id, lease = uuid4(), uuid4()
    change = progress_report(
        job_id,
        lease_id=lease,
        percent=40,
        message="m",
        allow_decrease=allow_decrease,
        actor=ACTOR,
    )
    assert change == JobChange(
        job_id=job_id,
        expected_version=None,
        target=None,
        allowed_sources=reportable_statuses(lease),
        values={"progress_percent": 40},
        events=(NewEvent(JOB_PROGRESS, ACTOR, {"progress_percent": 40, "message": "m"}),),
        lease_id=lease,
        progress_at_most=at_most,
    )


def test_progress_report_without_a_lease_is_guarded_to_jobs_nobody_holds() -> None:
    change = progress_report(
        uuid4(), lease_id=None, percent=5, message=None, allow_decrease=False, actor=ACTOR
    )
    assert change.allowed_sources == {S.PENDING, S.QUEUED}
    assert change.lease_id is None


@pytest.mark.parametrize("percent", [-1, 101])
def test_progress_report_out_of_range_is_refused(percent: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        progress_report(
            uuid4(), lease_id=None, percent=percent, message=None, allow_decrease=True, actor=ACTOR
        )
    assert refused.value.field == "progress_percent"


# ---------------------------------------------------------------------------------------
# A status asked for by name (PATCH …/status)


def status_request(
    job: Job,
    target: JobStatus,
    *,
    lease_id: UUID | None = None,
    worker_id: str | None = "w-2",
    new_lease_id: UUID | None = None,
    result: Any = None,
    error: str | None = None,
    reason: str | None = None,
) -> JobChange:
    return decide_status_request(
        job,
        target,
        actor=ACTOR,
        lease_id=lease_id,
        worker_id=worker_id,
        new_lease_id=new_lease_id or uuid4(),
        lease_seconds=30.0,
        grace_seconds=5.0,
        result=result,
        error=error,
        reason=reason,
    )


def test_asking_for_queued_is_an_enqueue() -> None:
    job = make_job(S.PENDING)
    assert status_request(job, S.QUEUED) == decide_enqueue(job, ACTOR)


@pytest.mark.parametrize(("worker_id", "named"), [("w-2", "w-2"), (None, "unnamed")])
def test_asking_for_running_is_a_start_under_the_new_lease(
    worker_id: str | None, named: str
) -> None:
    job = make_job(S.QUEUED)
    lease = uuid4()
    assert status_request(job, S.RUNNING, worker_id=worker_id, new_lease_id=lease) == decide_start(
        job, worker_id=named, lease_id=lease, lease_seconds=30.0, grace_seconds=5.0, actor=ACTOR
    )


def test_asking_for_cancelled_is_a_cancel_with_the_reason() -> None:
    job = make_job(S.RUNNING)
    assert status_request(job, S.CANCELLED, reason="why") == decide_cancel(job, ACTOR, "why")


def test_asking_for_completed_is_a_completion() -> None:
    job = make_job(S.RUNNING)
    assert status_request(job, S.COMPLETED, lease_id=job.lease_id, result=[1]) == (
        decide_completion(job, held_lease(job), [1], ACTOR)
    )


def test_asking_for_failed_fails_for_good_even_with_attempts_left() -> None:
    job = make_job(S.RUNNING, attempt=1, max_attempts=5)
    change = status_request(job, S.FAILED, lease_id=job.lease_id, error="gave up")
    assert change == decide_failure(
        job, held_lease(job), "gave up", retryable=False, jitter=0.0, actor=ACTOR
    )
    assert change.target == S.FAILED
    unexplained = status_request(job, S.FAILED, lease_id=job.lease_id)
    assert unexplained.values["error"]  # a failure always says something


@pytest.mark.parametrize("target", [S.COMPLETED, S.FAILED])
@pytest.mark.parametrize("status", list(JobStatus))
def test_asking_to_finish_a_job_must_name_the_lease(status: JobStatus, target: JobStatus) -> None:
    with pytest.raises(InvalidInput) as refused:
        status_request(make_job(status), target, lease_id=None)
    assert refused.value.field == "lease_id"


@pytest.mark.parametrize("status", list(JobStatus))
def test_nobody_may_ask_for_pending(status: JobStatus) -> None:
    job = make_job(status)
    with pytest.raises(InvalidTransition) as refused:
        status_request(job, S.PENDING, lease_id=job.lease_id)
    assert_refused_move(refused.value, job, S.PENDING)


def test_a_caller_cannot_ask_for_the_system_only_requeue() -> None:
    job = make_job(S.RUNNING)
    with pytest.raises(InvalidTransition) as refused:
        status_request(job, S.QUEUED, lease_id=job.lease_id)
    assert_refused_move(refused.value, job, S.QUEUED)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobStatus, JobStatus)))
def test_a_status_request_follows_the_callers_table(source: JobStatus, target: JobStatus) -> None:
    """With the lease in hand, asking for any status by name succeeds exactly when the
    table lets a caller make that move, and is refused as a conflict otherwise."""
    job = make_job(source)
    try:
        change = status_request(job, target, lease_id=job.lease_id or uuid4(), result={})
    except (InvalidTransition, LeaseLost):
        assert not can_transition(source, target)
    else:
        assert can_transition(source, target)
        assert change.target == target
        assert change.allowed_sources == sources_for(target)


# ---------------------------------------------------------------------------------------
# Properties over the transition table: every decision, every status, generated jobs.


@dataclass(frozen=True)
class Request:
    """What a decision is asked with, drawn at random."""

    own_lease: bool
    percent: int
    allow_decrease: bool
    retryable: bool
    jitter: float
    target: JobStatus
    result: Any


@st.composite
def jobs(draw: st.DrawFn, status: JobStatus | None = None) -> Job:
    if status is None:
        status = draw(st.sampled_from(JobStatus))
    max_attempts = draw(st.integers(1, MAX_ATTEMPTS_LIMIT))
    base = draw(st.floats(0.0, 3600.0))
    return make_job(
        status,
        attempt=draw(st.integers(1, max_attempts)),
        max_attempts=max_attempts,
        progress_percent=draw(st.integers(0, 100)),
        retry_backoff_seconds=base,
        retry_backoff_max_seconds=draw(st.floats(base, RETRY_BACKOFF_LIMIT_SECONDS)),
        # a finished job keeps the lease it last ran under; a running one always has one
        lease_id=draw(st.uuids() if status == S.RUNNING else st.none() | st.uuids()),
        version=draw(st.integers(1, 10_000)),
    )


requests = st.builds(
    Request,
    own_lease=st.booleans(),
    percent=st.integers(-2, 102),
    allow_decrease=st.booleans(),
    retryable=st.booleans(),
    jitter=st.floats(0.0, 1.0, exclude_max=True),
    target=st.sampled_from(JobStatus),
    result=st.none() | st.integers() | st.dictionaries(st.text(max_size=3), st.booleans()),
)


def lease_for(job: Job, request: Request) -> UUID:
    """The job's own lease, or one it does not hold."""
    return job.lease_id if request.own_lease and job.lease_id is not None else uuid4()


Decide = Callable[[Job, Request], JobChange]

DECISIONS: dict[str, tuple[Decide, tuple[type[Exception], ...]]] = {
    "enqueue": (lambda job, r: decide_enqueue(job, ACTOR), (InvalidTransition,)),
    "start": (
        lambda job, r: decide_start(
            job, worker_id="w", lease_id=uuid4(), lease_seconds=30.0, grace_seconds=5.0, actor=ACTOR
        ),
        (InvalidTransition,),
    ),
    "cancel": (lambda job, r: decide_cancel(job, ACTOR, None), (InvalidTransition,)),
    "completion": (
        lambda job, r: decide_completion(job, lease_for(job, r), r.result, ACTOR),
        (LeaseLost,),
    ),
    "failure": (
        lambda job, r: decide_failure(
            job, lease_for(job, r), "boom", retryable=r.retryable, jitter=r.jitter, actor=ACTOR
        ),
        (LeaseLost,),
    ),
    "lease_expiry": (
        lambda job, r: decide_lease_expiry(job),
        (InvalidTransition,),
    ),
    "handback": (lambda job, r: decide_handback(job, lease_for(job, r), ACTOR), (LeaseLost,)),
    "progress": (
        lambda job, r: decide_progress(
            job,
            lease_id=lease_for(job, r) if r.own_lease or job.status == S.RUNNING else None,
            percent=r.percent,
            message=None,
            allow_decrease=r.allow_decrease,
            actor=ACTOR,
        ),
        (InvalidInput, LeaseLost, JobConflict, ProgressRegressed),
    ),
    "status_request": (
        lambda job, r: status_request(
            job, r.target, lease_id=lease_for(job, r), result=r.result, error="e"
        ),
        (InvalidTransition, LeaseLost),
    ),
}
CALLER_DECISIONS = {"enqueue", "start", "cancel", "completion", "status_request"}
"""Decisions that make only moves a caller may ask for (never a system-only one); the
others are Conveyor's own (a retry, the reaper, a handback) and are guarded by the
system's table."""


@pytest.mark.parametrize("status", list(JobStatus))
@pytest.mark.parametrize("name", sorted(DECISIONS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_no_decision_proposes_a_change_the_table_forbids(
    name: str, status: JobStatus, data: st.DataObject
) -> None:
    job, request = data.draw(jobs(status)), data.draw(requests)
    decide, refusals = DECISIONS[name]
    try:
        change = decide(job, request)
    except refusals:
        return  # anything else it raises fails the test
    assert not job.status.is_terminal, f"{name} changed a {job.status} job"
    assert change.job_id == job.id
    assert change.expected_version == job.version
    if change.target is None:
        assert change.allowed_sources == {job.status}
        return
    assert can_transition(job.status, change.target, by_system=True)
    assert change.allowed_sources <= sources_for(change.target, by_system=True)
    assert job.status in change.allowed_sources
    by_caller = name in CALLER_DECISIONS
    if change.target == S.QUEUED and job.status == S.RUNNING:
        # The system's requeues (retry, expiry, hand-back) are narrower than the table:
        # only ever of a running job.
        assert change.allowed_sources == {S.RUNNING}
    else:
        assert change.allowed_sources == sources_for(change.target, by_system=not by_caller)
    if by_caller:
        assert (job.status, change.target) not in SYSTEM_ONLY_TRANSITIONS
        assert can_transition(job.status, change.target)


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("name", sorted(DECISIONS))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_a_finished_job_admits_no_decision(
    name: str, status: JobStatus, data: st.DataObject
) -> None:
    job = data.draw(jobs(status))
    request = data.draw(requests)
    decide, refusals = DECISIONS[name]
    with pytest.raises(refusals):
        decide(job, request)


@settings(max_examples=100, deadline=None)
@given(job=jobs(), request=requests)
def test_the_reaper_only_ever_touches_a_job_whose_lease_is_still_past(
    job: Job, request: Request
) -> None:
    """Whatever the reaper read, its change is guarded by the lease deadline, so a
    heartbeat (which extends the lease without a new version) always wins."""
    try:
        change = decide_lease_expiry(job)
    except InvalidTransition:
        return
    assert change.only_if_lease_expired
    assert change.events[0].type == JOB_LEASE_EXPIRED
    assert change.target == (S.QUEUED if job.attempt < job.max_attempts else S.FAILED)


@pytest.mark.parametrize("name", ["completion", "failure", "handback"])
@settings(max_examples=60, deadline=None)
@given(job=jobs(), request=requests)
def test_only_the_lease_holder_finishes_or_hands_back(
    name: str, job: Job, request: Request
) -> None:
    decide, _ = DECISIONS[name]
    holds = job.status == S.RUNNING and request.own_lease and job.lease_id is not None
    if holds:
        assert decide(job, request).target is not None
    else:
        with pytest.raises(LeaseLost):
            decide(job, request)


@settings(max_examples=200, deadline=None)
@given(job=jobs(S.RUNNING), request=requests)
def test_a_failure_retries_exactly_while_it_may(job: Job, request: Request) -> None:
    change = decide_failure(
        job,
        held_lease(job),
        "boom",
        retryable=request.retryable,
        jitter=request.jitter,
        actor=ACTOR,
    )
    retries = request.retryable and job.attempt < job.max_attempts
    assert change.target == (S.QUEUED if retries else S.FAILED)
    if retries:
        assert change.values["attempt"] == job.attempt + 1
        assert [event.type for event in change.events] == [JOB_RETRYING, JOB_QUEUED]
        assert change.delay == {"run_at": retry_delay(job, request.jitter)}
    else:
        assert "attempt" not in change.values
        assert [event.type for event in change.events] == [JOB_FAILED]
        assert change.stamp == {"completed_at"}


@settings(max_examples=200, deadline=None)
@given(job=jobs(S.RUNNING), request=requests)
def test_progress_is_refused_exactly_when_it_would_go_back(job: Job, request: Request) -> None:
    percent = max(0, min(100, request.percent))
    try:
        change = decide_progress(
            job,
            lease_id=job.lease_id,
            percent=percent,
            message=None,
            allow_decrease=request.allow_decrease,
            actor=ACTOR,
        )
    except ProgressRegressed:
        assert percent < job.progress_percent
        assert not request.allow_decrease
    else:
        assert percent >= job.progress_percent or request.allow_decrease
        assert change.values == {"progress_percent": percent}


# ---------------------------------------------------------------------------------------
# Backoff: kept together here so that they follow the formula wherever it moves.


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float) -> float:
    return backoff_delay(attempt, first=base, cap=cap, jitter=jitter)


def retry_delay(job: Job, jitter: float) -> float:
    """The delay before the next attempt of `job`, as the backoff formula gives it."""
    return backoff_seconds(
        job.attempt, job.retry_backoff_seconds, job.retry_backoff_max_seconds, jitter
    )


def test_backoff_doubles_per_attempt_up_to_the_cap() -> None:
    assert [backoff_seconds(n, 2.0, 60.0, jitter=1.0) for n in range(1, 8)] == [
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]


def test_backoff_jitter_spreads_over_the_upper_half() -> None:
    assert backoff_seconds(3, 2.0, 60.0, jitter=0.0) == 4.0
    assert backoff_seconds(3, 2.0, 60.0, jitter=0.5) == 6.0
    assert backoff_seconds(1, 0.0, 0.0, jitter=0.9) == 0.0


def test_a_retry_waits_the_backoff_of_the_attempt_that_failed() -> None:
    job = make_job(
        S.RUNNING,
        attempt=3,
        max_attempts=5,
        retry_backoff_seconds=2.0,
        retry_backoff_max_seconds=60.0,
    )
    failed = decide_failure(job, held_lease(job), "boom", retryable=True, jitter=0.5, actor=ACTOR)
    assert failed.delay == {"run_at": 6.0}
    assert failed.events[0].payload["retry_in_seconds"] == 6.0
    assert decide_lease_expiry(job).delay == {}, "a crash waits no backoff"


backoff_bounds = st.floats(0.0, RETRY_BACKOFF_LIMIT_SECONDS).flatmap(
    lambda base: st.tuples(st.just(base), st.floats(base, RETRY_BACKOFF_LIMIT_SECONDS))
)
attempts = st.integers(1, MAX_ATTEMPTS_LIMIT)
jitters = st.floats(0.0, 1.0, exclude_max=True)


@settings(max_examples=300)
@given(attempt=attempts, bounds=backoff_bounds, jitter=jitters)
def test_backoff_stays_between_half_the_base_and_the_cap(
    attempt: int, bounds: tuple[float, float], jitter: float
) -> None:
    base, cap = bounds
    assert base / 2 <= backoff_seconds(attempt, base, cap, jitter) <= cap


@settings(max_examples=300)
@given(first=attempts, second=attempts, bounds=backoff_bounds, jitter=jitters)
def test_backoff_never_shrinks_as_attempts_grow(
    first: int, second: int, bounds: tuple[float, float], jitter: float
) -> None:
    base, cap = bounds
    earlier, later = sorted((first, second))
    assert backoff_seconds(earlier, base, cap, 1.0) <= backoff_seconds(later, base, cap, 1.0)
    assert backoff_seconds(earlier, base, cap, jitter) <= backoff_seconds(later, base, cap, jitter)
