"""Execution timeouts as the server enforces them, on both databases: an attempt is never
leased past its deadline (started_at + timeout + grace), heartbeats after it are refused
as `timed_out`, and the reaper takes the job back then with `job.timed_out`, retried or
failed; a completion or heartbeat that lands first wins."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from conveyor.domain import timeouts
from conveyor.domain.errors import LeaseLossReason, LeaseLost
from conveyor.domain.events import SYSTEM_ACTOR, Event
from conveyor.domain.jobs import Job, JobSpec, JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_JOB, JobService
from conveyor.store import Store
from tests.service.helpers import ACTOR

GRACE = 0.2
LEASE = 60.0


@pytest.fixture
def service(store: Store) -> JobService:
    return JobService(store, timeout_grace_seconds=GRACE)


async def start(service: JobService, workspace: Workspace, spec: JobSpec) -> Job:
    await service.create_job(workspace.id, spec, ACTOR)
    [job] = await service.claim_jobs(
        workspace.id,
        types=[spec.type],
        limit=1,
        lease_seconds=LEASE,
        worker_id="w1",
        actor=ACTOR,
        answer=AS_JOB,
    )
    return job


def lease_of(job: Job) -> UUID:
    assert job.lease_id is not None
    return job.lease_id


def leased_for(job: Job) -> float:
    """How long after its start the job's lease runs."""
    assert job.lease_expires_at is not None
    assert job.started_at is not None
    return (job.lease_expires_at - job.started_at).total_seconds()


async def until(store: Store, moment: datetime) -> None:
    """Wait until the database's clock has passed `moment` (within a minute)."""
    for _ in range(3000):
        if await store.clock.now() > moment:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the database's clock never passed {moment}")


async def past_deadline(store: Store, job: Job) -> None:
    ends = timeouts.deadline(job, GRACE)
    assert ends is not None
    await until(store, ends)


def kinds(events: list[Event]) -> list[str]:
    return [event.type for event in events]


async def test_a_claim_leases_an_attempt_no_further_than_its_deadline(
    service: JobService, workspace: Workspace
) -> None:
    bounded = await start(service, workspace, JobSpec(type="bounded", timeout_seconds=1.0))
    unbounded = await start(service, workspace, JobSpec(type="unbounded"))
    assert leased_for(bounded) == pytest.approx(1.0 + GRACE, abs=0.05)
    assert leased_for(unbounded) == pytest.approx(LEASE, abs=0.05)
    assert bounded.timeout_seconds == 1.0


async def test_starting_a_job_by_name_leases_it_no_further_than_its_deadline(
    service: JobService, workspace: Workspace
) -> None:
    job, _ = await service.create_job(workspace.id, JobSpec(type="t", timeout_seconds=1.0), ACTOR)
    started = await service.change_status(
        workspace.id, job.id, JobStatus.RUNNING, actor=ACTOR, worker_id="w1", lease_seconds=LEASE
    )
    assert leased_for(started) == pytest.approx(1.0 + GRACE, abs=0.05)


async def test_heartbeats_never_extend_past_the_deadline_and_are_refused_after_it(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    job = await start(service, workspace, JobSpec(type="t", timeout_seconds=0.3))
    beaten = await service.heartbeat(workspace.id, job.id, lease_of(job), LEASE)
    assert leased_for(beaten) <= 0.3 + GRACE + 0.05, "a heartbeat stops at the deadline"
    await past_deadline(store, job)
    with pytest.raises(LeaseLost) as refused:
        await service.heartbeat(workspace.id, job.id, lease_of(job), LEASE)
    assert refused.value.reason == LeaseLossReason.TIMED_OUT
    still = await service.get_job(workspace.id, job.id)
    assert (still.status, still.lease_expires_at) == (JobStatus.RUNNING, beaten.lease_expires_at)


async def test_the_reaper_fails_a_timed_out_attempt_on_its_last_attempt(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    job = await start(service, workspace, JobSpec(type="t", timeout_seconds=0.3))
    await past_deadline(store, job)
    [failed] = await service.expire_leases()
    assert (failed.id, failed.status, failed.error) == (
        job.id,
        JobStatus.FAILED,
        "timed out after 0.3 s",
    )
    detail = await service.get_job_detail(workspace.id, job.id)
    assert kinds(detail.events)[-2:] == ["job.timed_out", "job.failed"]
    timed_out = detail.events[-2]
    assert (timed_out.actor, timed_out.payload) == (
        SYSTEM_ACTOR,
        {"attempt": 1, "timeout_seconds": 0.3},
    )
    with pytest.raises(LeaseLost) as refused:
        await service.heartbeat(workspace.id, job.id, lease_of(job), LEASE)
    assert refused.value.reason == LeaseLossReason.FINISHED


async def test_the_reaper_retries_a_timed_out_attempt_after_the_backoff(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    spec = JobSpec(type="t", timeout_seconds=0.3, max_attempts=2, retry_backoff_seconds=0.05)
    first = await start(service, workspace, spec)
    await past_deadline(store, first)
    [requeued] = await service.expire_leases()
    assert (requeued.status, requeued.attempt, requeued.error) == (
        JobStatus.QUEUED,
        2,
        "timed out after 0.3 s",
    )
    assert requeued.run_at > first.run_at, "a timeout is the job's failure: it backs off"
    events = (await service.get_job_detail(workspace.id, first.id)).events
    assert kinds(events)[-3:] == ["job.timed_out", "job.retrying", "job.queued"]
    await until(store, requeued.run_at)
    [second] = await service.claim_jobs(
        workspace.id,
        types=["t"],
        limit=1,
        lease_seconds=LEASE,
        worker_id="w2",
        actor=ACTOR,
        answer=AS_JOB,
    )
    assert (second.id, second.attempt) == (first.id, 2)
    assert leased_for(second) == pytest.approx(0.3 + GRACE, abs=0.05), "a fresh deadline"


async def test_a_lease_that_runs_out_before_the_timeout_is_a_plain_expiry(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    await service.create_job(workspace.id, JobSpec(type="t", timeout_seconds=60), ACTOR)
    [job] = await service.claim_jobs(
        workspace.id,
        types=["t"],
        limit=1,
        lease_seconds=0.1,
        worker_id="w1",
        actor=ACTOR,
        answer=AS_JOB,
    )
    assert job.lease_expires_at is not None
    await until(store, job.lease_expires_at)
    [failed] = await service.expire_leases()
    assert failed.status == JobStatus.FAILED
    types = kinds(await service.list_events(workspace.id, job.id))
    assert "job.lease_expired" in types
    assert "job.timed_out" not in types


async def test_a_completion_that_lands_before_the_reaper_wins(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    job = await start(service, workspace, JobSpec(type="t", timeout_seconds=0.2))
    await past_deadline(store, job)
    [seen] = await store.jobs.find_expired_leases(10)  # the reaper reads it
    completed = await service.complete_job(workspace.id, job.id, lease_of(job), {"ok": 1}, ACTOR)
    assert completed.status == JobStatus.COMPLETED, "done late, but before it was taken back"
    stale = timeouts.decide_expired_lease(seen, now=await store.clock.now(), jitter=0.5)
    assert await store.jobs.apply_change(workspace.id, stale) is None
    assert await service.expire_leases() == []
    assert "job.timed_out" not in kinds(await service.list_events(workspace.id, job.id))


async def test_reapers_racing_take_a_timed_out_job_back_once(
    services: list[JobService], store: Store, workspace: Workspace
) -> None:
    graced = [JobService(s.store, timeout_grace_seconds=GRACE) for s in services]
    spec = JobSpec(type="t", timeout_seconds=0.2, max_attempts=3, retry_backoff_seconds=60)
    job = await start(graced[0], workspace, spec)
    await past_deadline(store, job)
    reclaimed = await asyncio.gather(*(reaper.expire_leases() for reaper in graced))
    assert sum(len(batch) for batch in reclaimed) == 1
    types = kinds(await graced[0].list_events(workspace.id, job.id))
    assert types.count("job.timed_out") == 1
    assert (await graced[0].get_job(workspace.id, job.id)).attempt == 2


async def test_a_worker_that_reports_its_timeout_records_job_timed_out(
    service: JobService, workspace: Workspace
) -> None:
    own = await start(service, workspace, JobSpec(type="own", timeout_seconds=30))
    failed = await service.fail_job(
        workspace.id,
        own.id,
        lease_of(own),
        "timed out after 30 s",
        retryable=True,
        actor=ACTOR,
        timed_out=True,
    )
    assert failed.status == JobStatus.FAILED
    events = await service.list_events(workspace.id, own.id)
    assert kinds(events)[-2:] == ["job.timed_out", "job.failed"]
    assert events[-2].payload == {"attempt": 1, "timeout_seconds": 30}

    handlers = await start(service, workspace, JobSpec(type="default", max_attempts=2))
    requeued = await service.fail_job(
        workspace.id,
        handlers.id,
        lease_of(handlers),
        "timed out after 5 s",
        retryable=True,
        actor=ACTOR,
        timed_out=True,
        timeout_seconds=5,
    )
    assert (requeued.status, requeued.attempt) == (JobStatus.QUEUED, 2)
    events = await service.list_events(workspace.id, handlers.id)
    assert kinds(events)[-3:] == ["job.timed_out", "job.retrying", "job.queued"]
    assert events[-3].payload == {"attempt": 1, "timeout_seconds": 5}, "the handler's default"


async def test_a_job_without_a_timeout_keeps_its_lease_for_as_long_as_it_heartbeats(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    job = await start(service, workspace, JobSpec(type="t"))
    await until(store, await store.clock.now() + timedelta(seconds=GRACE))
    beaten = await service.heartbeat(workspace.id, job.id, lease_of(job), LEASE)
    assert beaten.lease_expires_at is not None
    assert beaten.lease_expires_at - await store.clock.now() > timedelta(seconds=LEASE - 5)
