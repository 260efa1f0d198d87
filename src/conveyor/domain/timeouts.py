"""Execution timeouts: how long one attempt of a job may run, and what ends it.

A job's `timeout_seconds` bounds each attempt; a handler may declare a default for jobs
that set none (the job's own wins). The worker cancels its handler at the timeout and
fails the attempt itself. The server enforces the job's own timeout as well, a grace
later (the worker's time to stop and report first): it never leases the attempt past its
*deadline*, `started_at + timeout_seconds + grace`, and refuses heartbeats from then on,
so the reaper takes the job back at the deadline even from a process that hangs but still
heartbeats. Either way the attempt ends the same: `job.timed_out`, then a retry after the
backoff while attempts are left, else FAILED.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from conveyor.domain.errors import LeaseLossReason, LeaseLost
from conveyor.domain.events import SYSTEM_ACTOR
from conveyor.domain.jobs import (
    LEASED_STATUS,
    Job,
    JobChange,
    decide_failure,
    decide_lease_expiry,
    ensure_lease,
)


def timeout_error(seconds: float) -> str:
    """The error of an attempt that ran past its timeout."""
    return f"timed out after {seconds:g} s"


def effective_timeout(job_timeout: float | None, handler_timeout: float | None) -> float | None:
    """The timeout a worker applies: the job's own when it has one, else its handler's."""
    return handler_timeout if job_timeout is None else job_timeout


def deadline(job: Job, grace_seconds: float) -> datetime | None:
    """When the server stops leasing the job's current attempt; None: never."""
    if job.timeout_seconds is None or job.started_at is None:
        return None
    return job.started_at + timedelta(seconds=job.timeout_seconds + grace_seconds)


def ran_past_timeout(job: Job, now: datetime) -> bool:
    """The running attempt has run for its whole timeout by `now`."""
    if job.status != LEASED_STATUS or job.timeout_seconds is None or job.started_at is None:
        return False
    return now - job.started_at >= timedelta(seconds=job.timeout_seconds)


def ensure_lease_extendable(
    job: Job, lease_id: UUID, *, now: datetime, grace_seconds: float
) -> None:
    """Refuse a heartbeat from a worker that lost the lease, or whose attempt is past its
    deadline (the rule `extend_lease` guards with, explained on a fresh read)."""
    ensure_lease(job, lease_id)
    ends = deadline(job, grace_seconds)
    if ends is not None and now >= ends:
        raise LeaseLost(job.id, LeaseLossReason.TIMED_OUT, current_version=job.version)


def decide_expired_lease(job: Job, *, now: datetime, jitter: float) -> JobChange:
    """The reaper's decision on a RUNNING job whose lease ran out. An attempt that ran its
    whole timeout timed out (its lease ends at the deadline at the latest): `job.timed_out`,
    then the retry after the backoff or the failure, as when its worker says so. Any other
    expiry is a worker gone quiet (`decide_lease_expiry`). Guarded, like that one, on the
    lease still being past its deadline, so a heartbeat or completion landing in between
    wins."""
    if not ran_past_timeout(job, now):
        return decide_lease_expiry(job)
    assert job.lease_id is not None, "a running job holds a lease"
    assert job.timeout_seconds is not None
    change = decide_failure(
        job,
        job.lease_id,
        timeout_error(job.timeout_seconds),
        retryable=True,
        jitter=jitter,
        actor=SYSTEM_ACTOR,
        timed_out=True,
    )
    return replace(change, only_if_lease_expired=True)
