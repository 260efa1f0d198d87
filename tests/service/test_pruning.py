"""The pruner on both databases: retention by final status, instance defaults against a
workspace's own values, `null` keeps, `0` prunes, batches, the dry run, the lock, and what
it records for streams; and, with real concurrency, that it never deletes an unfinished
job while claims, completions, failures and retries run."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID

import pytest

from conveyor.domain.errors import JobNotFound
from conveyor.domain.job_lists import JobFilter
from conveyor.domain.jobs import Job, JobSpec, JobStatus
from conveyor.domain.lifetime import DEFAULT_RETENTION, Retention
from conveyor.domain.schedules import ScheduledJob, ScheduleSpec
from conveyor.domain.settings import WorkspaceSettings
from conveyor.domain.status import UNFINISHED_STATUSES
from conveyor.domain.steps import StepPhase, StepStatus, StepType
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_JOB, JobService
from conveyor.service.pruning import PrunedCount, Pruner
from conveyor.service.schedules import ScheduleService
from conveyor.service.settings import WorkspaceSettingsService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store
from tests.service.helpers import ACTOR, job_in_status

S = JobStatus
DAY = 86_400.0


async def backdate(store: Store, job_id: UUID, days: float) -> None:
    """Pretend the job finished `days` ago (on the database's clock)."""
    async with store.database.write() as connection:
        await connection.execute(
            "UPDATE jobs SET completed_at = conveyor_after(:age) WHERE id = :id",
            {"age": -days * DAY, "id": job_id},
        )


async def finished(
    service: JobService, store: Store, workspace: Workspace, status: JobStatus, days_ago: float
) -> Job:
    job = await job_in_status(service, workspace.id, status)
    await backdate(store, job.id, days_ago)
    return job


async def exists(service: JobService, workspace: Workspace, job_id: UUID) -> bool:
    try:
        await service.get_job(workspace.id, job_id)
    except JobNotFound:
        return False
    return True


async def rows(store: Store, table: str, job_id: UUID) -> int:
    async with store.database.read() as connection:
        row = await connection.fetchrow(
            f"SELECT count(*) AS n FROM {table} WHERE job_id = :id", {"id": job_id}
        )
    assert row is not None
    return int(row["n"])


async def test_each_final_status_keeps_its_own_days(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    # Defaults: completed 14 days, failed 30, cancelled 14.
    young = {
        s: await finished(service, store, workspace, s, 13) for s in (S.COMPLETED, S.CANCELLED)
    }
    old = {s: await finished(service, store, workspace, s, 15) for s in (S.COMPLETED, S.CANCELLED)}
    failed_young = await finished(service, store, workspace, S.FAILED, 29)
    failed_old = await finished(service, store, workspace, S.FAILED, 31)
    unfinished = [await job_in_status(service, workspace.id, s) for s in (S.PENDING, S.QUEUED)]

    report = await Pruner(store, DEFAULT_RETENTION).run_once()

    assert sorted((c.status, c.jobs) for c in report.counts) == [
        (S.CANCELLED, 1),
        (S.COMPLETED, 1),
        (S.FAILED, 1),
    ]
    for job in (*old.values(), failed_old):
        assert not await exists(service, workspace, job.id), job.status
    for job in (*young.values(), failed_young, *unfinished):
        assert await exists(service, workspace, job.id), job.status


async def test_a_pruned_job_goes_with_its_steps_and_events(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    running = await job_in_status(service, workspace.id, S.RUNNING)
    step = await service.add_step(
        workspace.id,
        running.id,
        name="build",
        phase=StepPhase.EXECUTION,
        step_type=StepType.COMMAND,
        status=StepStatus.RUNNING,
        lease_id=running.lease_id,
        actor=ACTOR,
    )
    assert running.lease_id is not None
    await service.complete_job(workspace.id, running.id, running.lease_id, {}, ACTOR)
    assert await rows(store, "events", running.id) >= 4
    assert await rows(store, "steps", running.id) == 1
    report = await Pruner(store, Retention(0, 0, 0)).run_once()
    assert report.jobs == 1
    assert report.events >= 4
    assert not await exists(service, workspace, running.id)
    assert await rows(store, "events", running.id) == 0
    assert await rows(store, "steps", running.id) == 0, f"step {step.id} outlived its job"


async def test_zero_prunes_at_once_and_null_keeps_forever(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    settings = WorkspaceSettingsService(store, DEFAULT_RETENTION)
    await settings.update(workspace.id, {"retention": {"completed_days": 0, "failed_days": None}})
    just_now = await job_in_status(service, workspace.id, S.COMPLETED)
    ancient = await finished(service, store, workspace, S.FAILED, 10_000)
    report = await Pruner(store, DEFAULT_RETENTION).run_once()
    assert [(c.status, c.jobs) for c in report.counts] == [(S.COMPLETED, 1)]
    assert not await exists(service, workspace, just_now.id)
    assert await exists(service, workspace, ancient.id)


async def test_the_instance_default_applies_where_a_workspace_sets_nothing(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    other = await WorkspaceService(store).create_workspace("other")
    await WorkspaceSettingsService(store, DEFAULT_RETENTION).update(
        other.id, {"retention": {"completed_days": 30}}
    )
    mine = await finished(service, store, workspace, S.COMPLETED, 5)
    theirs = await finished(service, store, other, S.COMPLETED, 5)
    # The instance keeps completed jobs 2 days; `other` says 30 for itself.
    report = await Pruner(store, Retention(2, 30, 14)).run_once()
    assert report.counts == [PrunedCount("acme", S.COMPLETED, 1, report.counts[0].events)]
    assert not await exists(service, workspace, mine.id)
    assert await exists(service, other, theirs.id)
    # Back to the instance's default: pruned too.
    await WorkspaceSettingsService(store, DEFAULT_RETENTION).update(
        other.id, {"retention": {"completed_days": "default"}}
    )
    await Pruner(store, Retention(2, 30, 14)).run_once()
    assert not await exists(service, other, theirs.id)


async def test_batches_dry_runs_and_one_workspace(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    other = await WorkspaceService(store).create_workspace("other")
    jobs = [await finished(service, store, workspace, S.CANCELLED, 20) for _ in range(5)]
    theirs = await finished(service, store, other, S.CANCELLED, 20)
    pruner = Pruner(store, DEFAULT_RETENTION, batch_size=2)

    dry = await pruner.run_once(dry_run=True)
    assert [(c.workspace, c.status, c.jobs) for c in dry.counts] == [
        ("acme", S.CANCELLED, 5),
        ("other", S.CANCELLED, 1),
    ]
    assert all([await exists(service, workspace, job.id) for job in jobs]), "a dry run deletes"

    report = await pruner.run_once(workspace_id=workspace.id)
    assert report.jobs == 5, "three batches of at most two"
    assert not any([await exists(service, workspace, job.id) for job in jobs])
    assert await exists(service, other, theirs.id), "another workspace was not asked for"
    assert await store.lifetime.jobs_pruned(workspace.id) == 5
    assert await store.lifetime.jobs_pruned(other.id) == 0


async def test_the_pruner_records_how_far_the_deleted_events_reached(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    assert await store.lifetime.pruned_events(workspace.id) is None
    first = await finished(service, store, workspace, S.CANCELLED, 20)
    kept = await job_in_status(service, workspace.id, S.CANCELLED)
    events = await service.list_events(workspace.id, first.id)
    await Pruner(store, DEFAULT_RETENTION).run_once()
    pruned = await store.lifetime.pruned_events(workspace.id)
    assert pruned is not None
    assert pruned.highest_id == max(event.id for event in events)
    assert pruned.position == max(event.position for event in events)
    assert await exists(service, workspace, kept.id)


async def test_settings_changes_are_partial_and_do_not_lose_each_other(
    store: Store, workspace: Workspace
) -> None:
    settings = WorkspaceSettingsService(store, DEFAULT_RETENTION)
    await asyncio.gather(
        *(
            settings.update(workspace.id, {"retention": {name: days}})
            for name, days in (("completed_days", 1), ("failed_days", 2), ("cancelled_days", 3))
        )
    )
    view = await settings.get(workspace.id)
    assert view.own == WorkspaceSettings(
        retention={"completed_days": 1, "failed_days": 2, "cancelled_days": 3}
    )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_one_pruner_at_a_time_on_postgresql(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    from conveyor.store.lifetime import PRUNE_LOCK

    job = await finished(service, store, workspace, S.COMPLETED, 20)
    async with store.database.transaction() as connection:
        await connection.execute("SELECT pg_advisory_xact_lock(:lock)", {"lock": PRUNE_LOCK})
        busy = await Pruner(store, DEFAULT_RETENTION).run_once()
        assert busy.busy
        assert busy.jobs == 0
    assert await exists(service, workspace, job.id)
    report = await Pruner(store, DEFAULT_RETENTION).run_once()
    assert not report.busy
    assert report.jobs == 1


async def test_the_pruner_never_deletes_an_unfinished_job_while_jobs_run(
    services: list[JobService], store: Store, workspace: Workspace
) -> None:
    """Retention 0 and prune passes back to back, while workers claim, complete and fail
    (retrying) jobs and a client retries failed ones. A deleted unfinished job would make a
    worker's report fail (the job gone); every report must land, and in the end every job
    ever created has finished and been pruned."""
    service = services[0]
    total = 240
    specs = [JobSpec(type="race", payload={"i": i}, max_attempts=3) for i in range(total)]
    created = {job.id for job, _ in await service.create_jobs(workspace.id, specs, ACTOR)}
    pruner = Pruner(store, Retention(0, 0, 0), batch_size=7)
    rng = random.Random(15)
    stop = asyncio.Event()
    reports: list[str] = []
    failed_for_good: asyncio.Queue[UUID] = asyncio.Queue()
    deciding = 0  # failed jobs the retrier has not yet retried or let be

    async def worker(number: int) -> None:
        nonlocal deciding
        mine = services[number % len(services)]
        while not stop.is_set():
            claimed = await mine.claim_jobs(
                workspace.id,
                types=["race"],
                limit=5,
                lease_seconds=60,
                worker_id=f"w{number}",
                actor=ACTOR,
                answer=AS_JOB,
            )
            if not claimed:
                await asyncio.sleep(0.005)
                continue
            for job in claimed:
                assert job.lease_id is not None
                await asyncio.sleep(0)  # let a prune pass in while the job runs
                if rng.random() < 0.6:
                    await mine.complete_job(workspace.id, job.id, job.lease_id, {}, ACTOR)
                    reports.append("completed")
                else:
                    after = await mine.fail_job(
                        workspace.id, job.id, job.lease_id, "no", retryable=True, actor=ACTOR
                    )
                    reports.append("failed")
                    if after.status == S.FAILED:
                        deciding += 1
                        failed_for_good.put_nowait(after.id)

    async def retrier() -> None:
        nonlocal deciding
        while not stop.is_set():
            try:
                job_id = await asyncio.wait_for(failed_for_good.get(), 0.05)
            except TimeoutError:
                continue
            try:
                if rng.random() < 0.5:
                    again, _ = await service.retry_job(workspace.id, job_id, ACTOR)
                    created.add(again.id)
            except JobNotFound:
                pass  # pruned first: fine, it had finished
            finally:
                deciding -= 1

    pruned_while_running = 0

    async def prune() -> None:
        nonlocal pruned_while_running
        while not stop.is_set():
            report = await pruner.run_once()
            if not stop.is_set():
                pruned_while_running += report.jobs
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(worker(n)) for n in range(4)]
    tasks += [asyncio.create_task(retrier()), asyncio.create_task(prune())]
    try:
        while True:
            await asyncio.sleep(0.05)
            for task in tasks:
                if task.done():
                    task.result()  # a report that failed (the job gone) ends the test here
            unfinished = await service.list_jobs(workspace.id, UNFINISHED_RACE, limit=1)
            if not unfinished.total and not deciding and len(reports) >= total:
                break
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        task.result()
    # A retry the retrier made as the loop ended (its job failed for good while the loop
    # looked) is a job no worker ran, or one a worker claimed as it stopped and failed into
    # its retry backoff (queued, due in a second): run what is left before the last pass,
    # waiting for what is not due yet.
    deadline = asyncio.get_running_loop().time() + 30
    while (await service.list_jobs(workspace.id, UNFINISHED_RACE, limit=1)).total:
        assert asyncio.get_running_loop().time() < deadline, "a job never came due"
        leftovers = await service.claim_jobs(
            workspace.id, types=["race"], limit=50, lease_seconds=60, worker_id="w-last",
            actor=ACTOR, answer=AS_JOB,
        )  # fmt: skip
        for job in leftovers:
            assert job.lease_id is not None
            await service.complete_job(workspace.id, job.id, job.lease_id, {}, ACTOR)
        if not leftovers:
            await asyncio.sleep(0.05)
    await pruner.run_once()
    assert pruned_while_running > total // 4, "the passes ran while the jobs did"
    assert len(reports) >= total
    assert (await service.list_jobs(workspace.id, JobFilter(type="race"), limit=10)).total == 0
    assert await store.lifetime.jobs_pruned(workspace.id) == len(created)


UNFINISHED_RACE = JobFilter(type="race", statuses=UNFINISHED_STATUSES)


async def test_a_schedules_history_is_kept_as_long_as_the_longest_retention(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    schedules = ScheduleService(store, service)
    schedule = await schedules.create_schedule(
        workspace.id, ScheduleSpec(name="nightly", cron="@daily", job=ScheduledJob(type="t"))
    )
    for _ in range(3):
        await schedules.trigger(workspace.id, schedule.name, ACTOR)
    async with store.database.write() as connection:  # two of the runs are 31 days old
        await connection.execute(
            "UPDATE schedule_runs SET created_at = conveyor_after(:age) WHERE id IN "
            "(SELECT id FROM schedule_runs ORDER BY id LIMIT 2)",
            {"age": -31 * DAY},
        )

    kept = await Pruner(store, Retention(14, None, 14)).run_once()  # failed: forever
    assert kept.schedule_runs == 0
    assert len((await schedules.list_runs(workspace.id, schedule.name)).runs) == 3

    report = await Pruner(store, DEFAULT_RETENTION, batch_size=1).run_once()  # 30 at most
    assert report.schedule_runs == 2
    assert len((await schedules.list_runs(workspace.id, schedule.name)).runs) == 1
