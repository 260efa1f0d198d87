"""Execution timeouts, without a database: which timeout applies, how long a lease may run,
when a heartbeat is refused, and what ends an attempt that ran past its timeout."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import uuid4

import pytest

from conveyor.domain.backoff import backoff_delay
from conveyor.domain.errors import InvalidInput, LeaseLossReason, LeaseLost
from conveyor.domain.events import (
    JOB_FAILED,
    JOB_LEASE_EXPIRED,
    JOB_QUEUED,
    JOB_RETRYING,
    JOB_TIMED_OUT,
    SYSTEM_ACTOR,
    SYSTEM_EVENT_TYPES,
    NewEvent,
    validate_custom_event_type,
)
from conveyor.domain.jobs import JobStatus, decide_failure, decide_lease_expiry, first_lease_seconds
from conveyor.domain.timeouts import (
    deadline,
    decide_expired_lease,
    effective_timeout,
    ensure_lease_extendable,
    ran_past_timeout,
    timeout_error,
)
from tests.domain.factories import CREATED_AT, held_lease, make_job

S = JobStatus
ACTOR = "worker:w-1"
GRACE = 5.0


def test_the_error_says_how_long_the_attempt_was_allowed() -> None:
    assert timeout_error(30) == "timed out after 30 s"
    assert timeout_error(0.3) == "timed out after 0.3 s"
    assert timeout_error(7 * 24 * 3600) == "timed out after 604800 s"


@pytest.mark.parametrize(
    ("job_timeout", "handler_timeout", "applied"),
    [
        (None, None, None),
        (None, 30.0, 30.0),
        (10.0, None, 10.0),
        (10.0, 30.0, 10.0),
        (60.0, 30.0, 60.0),
    ],
)
def test_the_job_s_own_timeout_wins_over_its_handler_s_default(
    job_timeout: float | None, handler_timeout: float | None, applied: float | None
) -> None:
    assert effective_timeout(job_timeout, handler_timeout) == applied


@pytest.mark.parametrize(
    ("timeout", "lease", "leased"),
    [(None, 30.0, 30.0), (60.0, 30.0, 30.0), (10.0, 30.0, 15.0), (25.0, 30.0, 30.0)],
)
def test_a_first_lease_never_runs_past_the_deadline(
    timeout: float | None, lease: float, leased: float
) -> None:
    assert first_lease_seconds(timeout, lease, GRACE) == leased


def test_the_deadline_is_the_timeout_plus_the_grace_after_the_start() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0)
    assert deadline(job, GRACE) == CREATED_AT + timedelta(seconds=35)
    assert deadline(make_job(S.RUNNING), GRACE) is None, "no timeout, no deadline"
    assert deadline(make_job(S.QUEUED, timeout_seconds=30.0), GRACE) is None, "not started"


def test_a_heartbeat_before_the_deadline_is_accepted() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0)
    just_before = CREATED_AT + timedelta(seconds=35) - timedelta(microseconds=1)
    ensure_lease_extendable(job, held_lease(job), now=just_before, grace_seconds=GRACE)


def test_a_heartbeat_at_or_after_the_deadline_is_refused_as_timed_out() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0)
    for now in (CREATED_AT + timedelta(seconds=35), CREATED_AT + timedelta(hours=1)):
        with pytest.raises(LeaseLost) as refused:
            ensure_lease_extendable(job, held_lease(job), now=now, grace_seconds=GRACE)
        assert refused.value.reason == LeaseLossReason.TIMED_OUT
        assert refused.value.current_version == job.version


def test_a_job_without_a_timeout_extends_its_lease_forever() -> None:
    job = make_job(S.RUNNING)
    later = CREATED_AT + timedelta(days=30)
    ensure_lease_extendable(job, held_lease(job), now=later, grace_seconds=GRACE)


def test_a_lost_lease_is_explained_as_before_whatever_the_time() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0)
    late = CREATED_AT + timedelta(hours=1)
    with pytest.raises(LeaseLost) as other:
        ensure_lease_extendable(job, uuid4(), now=late, grace_seconds=GRACE)
    assert other.value.reason == LeaseLossReason.REASSIGNED
    cancelled = make_job(S.CANCELLED, timeout_seconds=30.0, lease_id=held_lease(job))
    with pytest.raises(LeaseLost) as gone:
        ensure_lease_extendable(cancelled, held_lease(job), now=late, grace_seconds=GRACE)
    assert gone.value.reason == LeaseLossReason.CANCELLED


def test_an_attempt_ran_past_its_timeout_once_it_has_run_that_long() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0)
    assert not ran_past_timeout(job, CREATED_AT + timedelta(seconds=29.999))
    assert ran_past_timeout(job, CREATED_AT + timedelta(seconds=30))
    assert not ran_past_timeout(make_job(S.RUNNING), CREATED_AT + timedelta(days=1))
    queued = make_job(S.QUEUED, timeout_seconds=30.0, started_at=CREATED_AT)
    assert not ran_past_timeout(queued, CREATED_AT + timedelta(days=1)), "no attempt running"


def test_a_timed_out_failure_with_attempts_left_says_so_then_retries() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0, attempt=1, max_attempts=3)
    error = timeout_error(30)
    change = decide_failure(
        job, held_lease(job), error, retryable=True, jitter=0.5, actor=ACTOR, timed_out=True
    )
    plain = decide_failure(job, held_lease(job), error, retryable=True, jitter=0.5, actor=ACTOR)
    timed_out = NewEvent(JOB_TIMED_OUT, ACTOR, {"attempt": 1, "timeout_seconds": 30.0})
    assert change == replace(plain, events=(timed_out, *plain.events))
    assert [event.type for event in change.events] == [JOB_TIMED_OUT, JOB_RETRYING, JOB_QUEUED]
    assert change.target == S.QUEUED
    assert change.values["error"] == error


def test_a_timed_out_failure_on_the_last_attempt_says_so_then_fails() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0, attempt=3, max_attempts=3)
    change = decide_failure(
        job,
        held_lease(job),
        timeout_error(30),
        retryable=True,
        jitter=0.5,
        actor=ACTOR,
        timed_out=True,
    )
    assert change.target == S.FAILED
    assert change.events == (
        NewEvent(JOB_TIMED_OUT, ACTOR, {"attempt": 3, "timeout_seconds": 30.0}),
        NewEvent(JOB_FAILED, ACTOR, {"attempt": 3, "error": "timed out after 30 s"}),
    )


def test_a_timed_out_failure_names_the_timeout_that_ran_out() -> None:
    """A handler's default applies to a job without a timeout of its own: the worker says
    which."""
    job = make_job(S.RUNNING, attempt=1, max_attempts=1)
    change = decide_failure(
        job,
        held_lease(job),
        timeout_error(12),
        retryable=True,
        jitter=0.5,
        actor=ACTOR,
        timed_out=True,
        timeout_seconds=12.0,
    )
    assert change.events[0] == NewEvent(
        JOB_TIMED_OUT, ACTOR, {"attempt": 1, "timeout_seconds": 12.0}
    )


def test_a_failure_that_did_not_time_out_writes_no_timeout_event() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0, max_attempts=1)
    change = decide_failure(job, held_lease(job), "boom", retryable=True, jitter=0.5, actor=ACTOR)
    assert JOB_TIMED_OUT not in [event.type for event in change.events]


def test_the_reaper_times_out_an_attempt_past_its_timeout_and_retries_it_after_the_backoff() -> (
    None
):
    job = make_job(S.RUNNING, timeout_seconds=30.0, attempt=1, max_attempts=2)
    now = CREATED_AT + timedelta(seconds=35)
    change = decide_expired_lease(job, now=now, jitter=0.25)
    assert change.only_if_lease_expired, "a heartbeat or completion landing first wins"
    assert change.expected_version == job.version
    assert change.target == S.QUEUED
    delay = backoff_delay(
        1, first=job.retry_backoff_seconds, cap=job.retry_backoff_max_seconds, jitter=0.25
    )
    assert change.delay == {"run_at": delay}, "a timeout is the job's failure: it backs off"
    assert change.values["error"] == "timed out after 30 s"
    assert change.events == (
        NewEvent(JOB_TIMED_OUT, SYSTEM_ACTOR, {"attempt": 1, "timeout_seconds": 30.0}),
        NewEvent(
            JOB_RETRYING,
            SYSTEM_ACTOR,
            {"attempt": 2, "error": "timed out after 30 s", "retry_in_seconds": round(delay, 3)},
        ),
        NewEvent(JOB_QUEUED, SYSTEM_ACTOR, {"attempt": 2}),
    )


def test_the_reaper_fails_a_timed_out_attempt_when_attempts_are_spent() -> None:
    job = make_job(S.RUNNING, timeout_seconds=30.0, attempt=2, max_attempts=2)
    change = decide_expired_lease(job, now=CREATED_AT + timedelta(seconds=40), jitter=0.5)
    assert change.only_if_lease_expired
    assert change.target == S.FAILED
    assert [event.type for event in change.events] == [JOB_TIMED_OUT, JOB_FAILED]


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_lease_that_ran_out_before_the_timeout_is_a_plain_expiry(timeout: float | None) -> None:
    job = make_job(S.RUNNING, timeout_seconds=timeout, attempt=1, max_attempts=2)
    change = decide_expired_lease(job, now=CREATED_AT + timedelta(seconds=20), jitter=0.5)
    assert change == decide_lease_expiry(job)
    assert change.events[0].type == JOB_LEASE_EXPIRED


def test_job_timed_out_is_written_by_conveyor_alone() -> None:
    assert JOB_TIMED_OUT == "job.timed_out"
    assert JOB_TIMED_OUT in SYSTEM_EVENT_TYPES
    with pytest.raises(InvalidInput):
        validate_custom_event_type(JOB_TIMED_OUT)


def test_every_lease_loss_reason_is_described() -> None:
    for reason in LeaseLossReason:
        assert reason.description
    assert LeaseLossReason.TIMED_OUT.value == "timed_out"
