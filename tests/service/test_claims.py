"""Claims, leases, expiry and retries in the service, on both stores."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from conveyor.domain.errors import InvalidInput, LeaseLossReason, LeaseLost
from conveyor.domain.jobs import ClaimRequest, Job, JobSpec, JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_CLAIMED_JOB, AS_JOB, JobService
from conveyor.store import Store
from tests.service.helpers import ACTOR, job_in_status
from tests.worker.conftest import eventually

pytestmark = pytest.mark.usefixtures("workspace")


async def claim(service: JobService, workspace: Workspace, limit: int = 1, **options: object):  # type: ignore[no-untyped-def]
    return await service.claim_jobs(
        workspace.id,
        types=options.pop("types", None),  # type: ignore[arg-type]
        limit=limit,
        lease_seconds=options.pop("lease_seconds", 30),  # type: ignore[arg-type]
        worker_id=str(options.pop("worker_id", "w1")),
        actor=ACTOR,
        wait_seconds=options.pop("wait_seconds", 0),  # type: ignore[arg-type]
        answer=AS_JOB,
    )


async def test_a_single_claimer_gets_jobs_most_urgent_first(
    service: JobService, workspace: Workspace
) -> None:
    rng = random.Random(7)
    specs = [JobSpec(type="t", priority=rng.randint(1, 10)) for _ in range(60)]
    created = [job for job, _ in await service.create_jobs(workspace.id, specs, ACTOR)]
    order = {job.id: index for index, job in enumerate(created)}
    claimed = []
    while batch := await claim(service, workspace, limit=rng.randint(1, 7)):
        claimed += batch
    keys = [(job.priority, order[job.id]) for job in claimed]
    assert keys == sorted(keys), "lowest priority number first, then oldest"


async def test_claims_respect_types_run_at_and_held_jobs(
    service: JobService, workspace: Workspace
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    await service.create_jobs(
        workspace.id,
        [
            JobSpec(type="a"),
            JobSpec(type="b"),
            JobSpec(type="a", run_at=later),
            JobSpec(type="a", hold=True),
        ],
        ACTOR,
    )
    claimed = await claim(service, workspace, limit=10, types=["a"])
    assert [job.type for job in claimed] == ["a"]
    assert claimed[0].status == JobStatus.RUNNING
    assert claimed[0].lease_id is not None
    assert claimed[0].worker_id == "w1"
    assert [job.type for job in await claim(service, workspace, limit=10)] == ["b"]
    assert await claim(service, workspace, limit=10) == []


@dataclass
class ClaimCall:
    started: int
    ended: int = 0
    jobs: list[UUID] = field(default_factory=list)


async def test_eight_concurrent_claimers_take_two_thousand_jobs_exactly_once(
    services: list[JobService], workspace: Workspace
) -> None:
    rng = random.Random(2026)
    specs = [JobSpec(type="t", priority=rng.randint(1, 10)) for _ in range(2000)]
    created = []
    for start in range(0, len(specs), 500):
        chunk = specs[start : start + 500]
        created += [job for job, _ in await services[0].create_jobs(workspace.id, chunk, ACTOR)]
    urgency = {job.id: (job.priority, job.run_at, job.id) for job in created}
    clock = itertools.count()
    calls: list[ClaimCall] = []

    async def claimer(number: int) -> None:
        service = services[number % len(services)]
        local = random.Random(number)
        while True:
            call = ClaimCall(started=next(clock))
            batch = await claim(
                service, workspace, limit=local.randint(1, 25), worker_id=f"w{number}"
            )
            call.ended = next(clock)
            if not batch:
                return
            call.jobs = [job.id for job in batch]
            calls.append(call)

    await asyncio.gather(*(claimer(number) for number in range(8)))
    claimed = [job_id for call in calls for job_id in call.jobs]
    assert len(claimed) == 2000, "every job claimed"
    assert len(set(claimed)) == 2000, "no job claimed twice"
    assert set(claimed) == set(urgency), "no job lost"

    # Priority order within what was claimable: when a claim finished, every job more urgent
    # than the least urgent one it took had already been taken by a claim under way.
    claimed_by = {job_id: call for call in calls for job_id in call.jobs}
    ranked = sorted(urgency, key=urgency.__getitem__)
    rank = {job_id: index for index, job_id in enumerate(ranked)}
    for call in calls:
        least_urgent = max(rank[job_id] for job_id in call.jobs)
        for more_urgent in ranked[:least_urgent]:
            assert claimed_by[more_urgent].started < call.ended, (
                f"a claim ending at {call.ended} skipped job {more_urgent}, which was only "
                f"claimed later (at {claimed_by[more_urgent].started})"
            )
    for call in calls:
        batch_ranks = [rank[job_id] for job_id in call.jobs]
        assert batch_ranks == sorted(batch_ranks), "each batch comes back most urgent first"


async def test_long_poll_claim_is_woken_by_a_new_job(store: Store, workspace: Workspace) -> None:
    """The service looks again on its own only once an hour here: only the create's
    wake-up ends the wait within the bound (tests/service/test_guarantees.py does the
    same through a server, across processes on PostgreSQL)."""
    service = JobService(store, poll_interval=3600)
    waiting = asyncio.create_task(claim(service, workspace, wait_seconds=60))

    async def watching() -> bool:
        return bool(service.work_signal._watchers.get(workspace.id))

    await eventually(watching, what="the claim to wait")
    assert not waiting.done(), "nothing to claim yet: the claim waits"
    job, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    claimed = await asyncio.wait_for(waiting, 30)  # well inside the claim's 60 s
    assert [j.id for j in claimed] == [job.id]


async def test_a_job_due_between_a_claims_two_looks_is_looked_for_again_at_once(
    service: JobService, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that finds nothing due asks when the next job comes due; a job that came
    due after its first look answers "now" (look again at once), not the job after it."""
    due_at = datetime.now(UTC) + timedelta(seconds=0.5)
    await service.create_jobs(workspace.id, [JobSpec(type="t", run_at=due_at)], ACTOR)
    await service.create_jobs(
        workspace.id, [JobSpec(type="t", run_at=due_at + timedelta(hours=1))], ACTOR
    )
    planner = service.jobs.planner  # type: ignore[attr-defined]
    looked = planner.planned

    def planned_then_slow(rows: Any) -> Any:
        plan = looked(rows)
        assert plan == [], "the first look finds nothing due yet"
        time.sleep(1.0)  # the job comes due before the second look (`next_due`)
        return plan

    monkeypatch.setattr(planner, "planned", planned_then_slow)
    outcome = await service.jobs.claim_jobs(
        ClaimRequest(None, 1, 30, "w1", ACTOR, (workspace.id,)), AS_JOB
    )
    assert outcome.jobs == []
    assert outcome.wake_in == 0, "the job due meanwhile, not the one an hour later"


async def test_heartbeat_extends_the_lease_without_a_new_version(
    service: JobService, workspace: Workspace
) -> None:
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    assert job.lease_id is not None
    assert job.lease_expires_at is not None
    await asyncio.sleep(0.05)
    extended = await service.heartbeat(workspace.id, job.id, job.lease_id, 120)
    assert extended.lease_expires_at is not None
    assert extended.lease_expires_at > job.lease_expires_at
    assert extended.version == job.version


async def test_reports_with_a_stale_lease_are_refused_and_change_nothing(
    service: JobService, workspace: Workspace
) -> None:
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    stale = UUID(int=1)
    for report in (
        service.heartbeat(workspace.id, job.id, stale, 30),
        service.report_progress(workspace.id, job.id, percent=5, lease_id=stale, actor=ACTOR),
        service.complete_job(workspace.id, job.id, stale, {"x": 1}, ACTOR),
        service.fail_job(workspace.id, job.id, stale, "boom", retryable=False, actor=ACTOR),
        service.append_event(
            workspace.id,
            job.id,
            event_type="ai.tool_called",
            payload={},
            actor=ACTOR,
            lease_id=stale,
        ),
    ):
        with pytest.raises(LeaseLost) as refused:
            await report
        assert refused.value.reason == LeaseLossReason.REASSIGNED
    after = await service.get_job(workspace.id, job.id)
    assert (after.status, after.version) == (JobStatus.RUNNING, job.version)


async def test_a_report_on_a_running_job_needs_the_lease(
    service: JobService, workspace: Workspace
) -> None:
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    with pytest.raises(InvalidInput, match="lease_id"):
        await service.report_progress(workspace.id, job.id, percent=5, actor=ACTOR)


async def test_cancelling_a_running_job_ends_its_lease(
    service: JobService, workspace: Workspace
) -> None:
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    assert job.lease_id is not None
    await service.cancel_job(workspace.id, job.id, ACTOR)
    with pytest.raises(LeaseLost, match="cancelled"):
        await service.heartbeat(workspace.id, job.id, job.lease_id, 30)
    with pytest.raises(LeaseLost, match="cancelled"):
        await service.complete_job(workspace.id, job.id, job.lease_id, {"late": True}, ACTOR)
    events = [e.type for e in await service.list_events(workspace.id, job.id)]
    assert "job.completed" not in events


async def test_expired_leases_are_queued_again_then_failed_when_attempts_run_out(
    service: JobService, workspace: Workspace
) -> None:
    job, _ = await service.create_job(
        workspace.id, JobSpec(type="t", max_attempts=2, retry_backoff_seconds=0), ACTOR
    )
    [first] = await claim(service, workspace, lease_seconds=0.05)
    await asyncio.sleep(0.1)
    [requeued] = await service.expire_leases()
    assert (requeued.status, requeued.attempt, requeued.lease_id) == (JobStatus.QUEUED, 2, None)
    assert first.lease_id is not None
    with pytest.raises(LeaseLost, match="expired"):
        await service.complete_job(workspace.id, job.id, first.lease_id, {"late": True}, ACTOR)

    [second] = await claim(service, workspace, lease_seconds=0.05)
    assert second.attempt == 2
    assert second.lease_id != first.lease_id
    await asyncio.sleep(0.1)
    [failed] = await service.expire_leases()
    assert failed.status == JobStatus.FAILED
    assert failed.error is not None
    assert "lease expired" in failed.error
    types = [e.type for e in await service.list_events(workspace.id, job.id)]
    assert types.count("job.lease_expired") == 2
    assert types[-1] == "job.failed"


async def test_a_job_whose_worker_died_runs_again_before_jobs_queued_after_it(
    service: JobService, workspace: Workspace
) -> None:
    """A crash is not the job's failure: lease expiry queues it again where it was (its
    priority and due time), not after a backoff behind everything queued since."""
    job, _ = await service.create_job(
        workspace.id,
        JobSpec(type="t", max_attempts=3, retry_backoff_seconds=60, retry_backoff_max_seconds=60),
        ACTOR,
    )
    await claim(service, workspace, lease_seconds=0.05)  # its worker then dies
    later = [
        job for job, _ in await service.create_jobs(workspace.id, [JobSpec(type="t")] * 5, ACTOR)
    ]
    await asyncio.sleep(0.1)
    [requeued] = await service.expire_leases()
    assert requeued.run_at == job.run_at, "due when it was first due: no backoff"
    assert (requeued.attempt, requeued.retry_backoff_seconds) == (2, 60)
    [again] = await claim(service, workspace)
    assert again.id == job.id, "it goes before the jobs queued while it ran"
    assert again.attempt == 2
    assert {j.id for j in await claim(service, workspace, limit=10)} == {j.id for j in later}


async def test_a_heartbeat_beats_the_reaper_to_an_expired_lease(
    service: JobService, workspace: Workspace
) -> None:
    await service.create_job(workspace.id, JobSpec(type="t", max_attempts=3), ACTOR)
    [job] = await claim(service, workspace, lease_seconds=0.05)
    assert job.lease_id is not None
    await asyncio.sleep(0.1)
    stale_read = (await service.jobs.find_expired_leases(10))[0]
    await service.heartbeat(workspace.id, job.id, job.lease_id, 60)
    from conveyor.domain.jobs import decide_lease_expiry

    change = decide_lease_expiry(stale_read)
    assert await service.jobs.apply_change(workspace.id, change) is None
    assert (await service.get_job(workspace.id, job.id)).status == JobStatus.RUNNING


async def test_retryable_failure_queues_again_with_backoff(
    service: JobService, workspace: Workspace
) -> None:
    job, _ = await service.create_job(
        workspace.id,
        JobSpec(type="t", max_attempts=2, retry_backoff_seconds=30, retry_backoff_max_seconds=60),
        ACTOR,
    )
    [running] = await claim(service, workspace)
    assert running.lease_id is not None
    retried = await service.fail_job(
        workspace.id, job.id, running.lease_id, "flaky", retryable=True, actor=ACTOR
    )
    assert (retried.status, retried.attempt, retried.error) == (JobStatus.QUEUED, 2, "flaky")
    wait = (retried.run_at - retried.updated_at).total_seconds()
    assert 15 <= wait <= 30, f"first retry waits half to all of the 30 s base, not {wait}"
    assert await claim(service, workspace) == [], "not claimable during the backoff"
    events = await service.list_events(workspace.id, job.id)
    assert [e.type for e in events[-2:]] == ["job.retrying", "job.queued"]
    assert events[-2].payload["attempt"] == 2


async def test_non_retryable_failure_and_exhausted_attempts_fail_for_good(
    service: JobService, workspace: Workspace
) -> None:
    job, _ = await service.create_job(workspace.id, JobSpec(type="t", max_attempts=5), ACTOR)
    [running] = await claim(service, workspace)
    assert running.lease_id is not None
    failed = await service.fail_job(
        workspace.id, job.id, running.lease_id, "bad input", retryable=False, actor=ACTOR
    )
    assert (failed.status, failed.attempt) == (JobStatus.FAILED, 1)


async def test_a_released_job_is_queued_again_on_the_same_attempt(
    service: JobService, workspace: Workspace
) -> None:
    job, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    [running] = await claim(service, workspace)
    assert running.lease_id is not None
    released = await service.release_job(workspace.id, job.id, running.lease_id, ACTOR)
    assert (released.status, released.attempt, released.lease_id) == (JobStatus.QUEUED, 1, None)
    [again] = await claim(service, workspace)
    assert again.id == job.id
    types = [e.type for e in await service.list_events(workspace.id, job.id)]
    assert types[-3:] == ["job.released", "job.queued", "job.started"]


@pytest.mark.parametrize(
    "leaves", ["while it waits", "while it claims"], ids=["waiting", "claiming"]
)
async def test_a_long_poll_whose_caller_left_takes_no_job_away(
    service: JobService, workspace: Workspace, leaves: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = 0
    looks = 0
    look_for_work = service.jobs.claim_jobs

    async def counted_look(*args: Any, **kwargs: Any) -> list[Job]:
        nonlocal looks
        found = await look_for_work(*args, **kwargs)
        looks += 1
        return found

    monkeypatch.setattr(service.jobs, "claim_jobs", counted_look)

    async def abandoned() -> bool:
        # The service asks before each look after a wait, and again once it has claimed.
        nonlocal asked
        asked += 1
        return leaves == "while it waits" or asked >= 2

    waiting = asyncio.create_task(
        service.claim_jobs(
            workspace.id,
            types=None,
            limit=5,
            lease_seconds=30,
            worker_id="w1",
            actor=ACTOR,
            wait_seconds=10,
            abandoned=abandoned,
            answer=AS_JOB,
        )
    )
    # The job must arrive while the claim waits, after its first (empty) look.
    for _ in range(500):
        if looks:
            break
        await asyncio.sleep(0.01)
    assert looks == 1, "the claim never looked for work"
    job, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    assert await asyncio.wait_for(waiting, 10) == [], "nobody is left to receive jobs"
    after = await service.get_job(workspace.id, job.id)
    assert (after.status, after.attempt, after.lease_id) == (JobStatus.QUEUED, 1, None), (
        f"a caller who left {leaves} leaves the job claimable, on the same attempt"
    )
    types = [e.type for e in await service.list_events(workspace.id, job.id)]
    handed_back = ["job.started", "job.released", "job.queued"]
    assert (types[-3:] == handed_back) == (leaves == "while it claims"), types
    [again] = await claim(service, workspace)
    assert again.id == job.id


async def test_a_brief_claim_answers_what_the_stored_job_says(
    service: JobService, workspace: Workspace
) -> None:
    """The in-process worker's claims answer a few columns, not whole jobs: the same jobs,
    in the same order, under the leases the database holds."""
    specs = [
        JobSpec(type="brief", priority=9, payload={"n": 1}),
        JobSpec(type="brief", priority=1, payload={"n": 2}, agent_task_id="task-3"),
        JobSpec(type="other"),
    ]
    await service.create_jobs(workspace.id, specs, ACTOR)
    claimed = await service.claim_jobs(
        workspace.id,
        types=["brief"],
        limit=5,
        lease_seconds=30,
        worker_id="w1",
        actor=ACTOR,
        answer=AS_CLAIMED_JOB,
    )
    assert [job.payload for job in claimed] == [{"n": 2}, {"n": 1}], "most urgent first"
    for job in claimed:
        stored = await service.get_job(workspace.id, job.id)
        assert stored.status == JobStatus.RUNNING
        assert job == (
            stored.id,
            stored.type,
            stored.payload,
            stored.attempt,
            stored.max_attempts,
            stored.priority,
            stored.agent_task_id,
            stored.lease_id,
            stored.lease_expires_at,
            stored.run_at,
            stored.started_at,
            stored.timeout_seconds,
            stored.workspace_id,
        )
