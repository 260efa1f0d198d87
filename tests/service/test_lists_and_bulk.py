"""Job lists (the new filters, cursor pages, bounded totals) and bulk actions, on both
databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.job_lists import BulkAction, JobFilter, ListCursor
from conveyor.domain.jobs import JobSpec, JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.bulk import BulkActions
from conveyor.service.jobs import AS_JOB, JobService
from conveyor.store import Store
from conveyor.store.job_lists import JobListStore
from tests.service.helpers import ACTOR, claim_one, job_in_status

S = JobStatus


async def create(
    service: JobService, workspace: Workspace, count: int, **spec: object
) -> list[UUID]:
    specs = [JobSpec(**{"type": "t", **spec}) for _ in range(count)]  # type: ignore[arg-type]
    return [job.id for job, _ in await service.create_jobs(workspace.id, specs, ACTOR)]


async def test_cursor_pages_see_every_job_exactly_once_while_jobs_arrive(
    services: list[JobService], workspace: Workspace
) -> None:
    service = services[0]
    before: set[UUID] = set()
    for _ in range(6):  # batches: on PostgreSQL a batch shares one created_at, ids break ties
        before |= set(await create(service, workspace, 20))
    before |= {job.id for job in [await job_in_status(service, workspace.id, S.QUEUED)]}
    arriving = asyncio.Event()

    async def producer(index: int) -> None:
        while not arriving.is_set():
            await create(services[1 + index % (len(services) - 1)], workspace, 3)
            await asyncio.sleep(0)

    producers = [asyncio.create_task(producer(i)) for i in range(3)]
    seen: list[UUID] = []
    cursor: ListCursor | None = None
    pages = 0
    try:
        while True:
            page = await service.list_jobs(workspace.id, JobFilter(), limit=7, cursor=cursor)
            pages += 1
            seen += [job.id for job in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            await asyncio.sleep(0.002)  # new jobs land between pages
    finally:
        arriving.set()
        await asyncio.gather(*producers)
    assert len(seen) == len(set(seen)), "a job was listed twice"
    assert before <= set(seen), f"{len(before - set(seen))} jobs were skipped"
    assert pages >= len(before) // 7


async def test_offset_pages_and_cursor_pages_agree_on_a_quiet_list(
    service: JobService, workspace: Workspace
) -> None:
    await create(service, workspace, 23)
    by_page = []
    for number in (1, 2, 3):
        page = await service.list_jobs(workspace.id, JobFilter(), page=number, limit=10)
        assert page.page == number
        by_page += [job.id for job in page.jobs]
    by_cursor: list[UUID] = []
    cursor = None
    while True:
        page = await service.list_jobs(workspace.id, JobFilter(), limit=10, cursor=cursor)
        assert page.page is None or cursor is None
        by_cursor += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert by_page == by_cursor
    assert len(by_page) == 23


async def test_a_cursor_whose_job_was_deleted_still_goes_on(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    ids = await create(service, workspace, 6)
    first = await service.list_jobs(workspace.id, JobFilter(), limit=3)
    assert first.next_cursor is not None
    async with store.database.write() as connection:
        await connection.execute("DELETE FROM events WHERE job_id = :id", {"id": first.jobs[-1].id})
        await connection.execute("DELETE FROM jobs WHERE id = :id", {"id": first.jobs[-1].id})
    rest = await service.list_jobs(workspace.id, JobFilter(), limit=3, cursor=first.next_cursor)
    assert [job.id for job in first.jobs[:2] + rest.jobs] == [
        job_id for job_id in reversed(ids) if job_id != first.jobs[-1].id
    ]


async def test_the_new_filters(service: JobService, store: Store, workspace: Workspace) -> None:
    keyed = await create(service, workspace, 2, concurrency_key="customer-7")
    await create(service, workspace, 1, concurrency_key="customer-8")
    running = await claim_one(service, workspace.id, "t")
    failed_job, _ = await service.create_job(workspace.id, JobSpec(type="f"), ACTOR)
    [claimed] = await service.claim_jobs(
        workspace.id,
        types=["f"],
        limit=1,
        lease_seconds=60,
        worker_id="night-shift",
        actor=ACTOR,
        answer=AS_JOB,
    )
    assert claimed.lease_id is not None
    await service.fail_job(
        workspace.id,
        failed_job.id,
        claimed.lease_id,
        "Upstream said 50%_OFF is NOT a Price",
        retryable=False,
        actor=ACTOR,
    )

    async def ids(job_filter: JobFilter) -> set[UUID]:
        page = await service.list_jobs(workspace.id, job_filter, limit=200)
        assert page.total == len(page.jobs)
        return {job.id for job in page.jobs}

    assert await ids(JobFilter(concurrency_key="customer-7")) == set(keyed)
    assert await ids(JobFilter(worker_id="night-shift")) == {failed_job.id}
    assert await ids(JobFilter(worker_id="w1")) == {running.id}
    assert await ids(JobFilter(error_contains="not a price")) == {failed_job.id}, "any case"
    assert await ids(JobFilter(error_contains="50%_off")) == {failed_job.id}
    assert await ids(JobFilter(error_contains="50%x")) == set(), "% is no wildcard"
    assert await ids(JobFilter(error_contains="5_%")) == set(), "_ is no wildcard"
    earlier = {
        job.id for job in (await service.list_jobs(workspace.id, JobFilter(), limit=200)).jobs
    }
    await asyncio.sleep(0.01)
    boundary = (await service.get_job(workspace.id, failed_job.id)).updated_at
    await asyncio.sleep(0.01)
    later = set(await create(service, workspace, 2))
    assert await ids(JobFilter(created_after=boundary)) == later
    assert await ids(JobFilter(created_before=boundary)) == earlier
    assert await ids(JobFilter(created_after=boundary + timedelta(days=1))) == set()
    assert await ids(JobFilter(type_prefix="f", statuses=frozenset({S.FAILED}))) == {failed_job.id}


async def test_totals_past_the_bound_are_estimates(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    await create(service, workspace, 8)
    lists = JobListStore(store.database, exact_total_limit=5)
    jobs, total = await lists.page(workspace.id, JobFilter(), cursor=None, offset=0, limit=3)
    assert len(jobs) == 3
    assert total.is_estimate
    assert total.count >= 5, "never below the bound the count passed"
    if store.database.dialect == "postgresql":
        async with store.database.write() as connection:
            await connection.execute("ANALYZE jobs")
        _, analyzed = await lists.page(workspace.id, JobFilter(), cursor=None, offset=0, limit=3)
        assert analyzed.count == 8, "the planner's estimate, from fresh statistics"
    _, few = await lists.page(workspace.id, JobFilter(type="none"), cursor=None, offset=0, limit=3)
    assert (few.count, few.is_estimate) == (0, False)


async def test_bulk_cancel_changes_exactly_the_matched_jobs_with_their_events(
    service: JobService, workspace: Workspace
) -> None:
    done = await job_in_status(service, workspace.id, S.COMPLETED, job_type="mail")
    queued = await create(service, workspace, 5, type="mail")
    held = await create(service, workspace, 2, type="mail", hold=True)
    others = await create(service, workspace, 3, type="sms")
    bulk = BulkActions(service)

    dry = await bulk.run(
        BulkAction.CANCEL,
        workspace.id,
        JobFilter(type="mail"),
        everything=False,
        actor=ACTOR,
        dry_run=True,
    )
    assert (dry.matched, dry.changed, dry.remaining.count) == (7, 0, 7)

    outcome = await bulk.run(
        BulkAction.CANCEL,
        workspace.id,
        JobFilter(type="mail"),
        everything=False,
        actor=ACTOR,
        reason="sunset",
    )
    assert (outcome.matched, outcome.changed, outcome.remaining.count) == (7, 7, 0)
    assert not outcome.limit_reached
    for job_id in queued + held:
        job = await service.get_job(workspace.id, job_id)
        assert job.status == S.CANCELLED
        events = await service.list_events(workspace.id, job_id)
        cancelled = [e for e in events if e.type == "job.cancelled"]
        assert len(cancelled) == 1
        assert cancelled[0].payload["reason"] == "sunset"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for job_id in others:
        assert (await service.get_job(workspace.id, job_id)).status == S.QUEUED
    assert (await service.get_job(workspace.id, done.id)).status == S.COMPLETED


async def test_a_job_that_changed_after_selection_is_skipped(
    service: JobService, workspace: Workspace
) -> None:
    ids = await create(service, workspace, 4)
    bulk = BulkActions(service)
    plan = await bulk.plan(BulkAction.CANCEL, workspace.id, JobFilter(type="t"), everything=False)
    assert len(plan.jobs) == 4
    claimed = await claim_one(service, workspace.id, "t")  # changes one of them meanwhile
    outcome = await bulk.apply(plan, actor=ACTOR)
    assert (outcome.matched, outcome.changed) == (4, 3)
    assert (await service.get_job(workspace.id, claimed.id)).status == S.RUNNING, "skipped"
    assert outcome.remaining.count == 1, "the skipped job can still be cancelled"
    statuses = {(await service.get_job(workspace.id, i)).status for i in ids if i != claimed.id}
    assert statuses == {S.CANCELLED}


async def test_bulk_work_goes_in_bounded_batches_with_a_cursor(
    service: JobService, workspace: Workspace
) -> None:
    ids = await create(service, workspace, 7)
    bulk = BulkActions(service, limit=3)
    cursor = None
    rounds = []
    while True:
        outcome = await bulk.run(
            BulkAction.CANCEL,
            workspace.id,
            JobFilter(),
            everything=True,
            actor=ACTOR,
            cursor=cursor,
        )
        rounds.append((outcome.matched, outcome.changed, outcome.limit_reached))
        if not outcome.limit_reached:
            break
        cursor = outcome.next_cursor
    assert rounds == [(3, 3, True), (3, 3, True), (1, 1, False)]
    assert {(await service.get_job(workspace.id, i)).status for i in ids} == {S.CANCELLED}


async def test_bulk_retry_runs_each_failed_job_again_once(
    service: JobService, workspace: Workspace
) -> None:
    await job_in_status(service, workspace.id, S.COMPLETED)
    failed = [await job_in_status(service, workspace.id, S.FAILED) for _ in range(4)]
    cancelled = await job_in_status(service, workspace.id, S.CANCELLED)
    first, _ = await service.retry_job(workspace.id, failed[0].id, ACTOR)  # already run again
    bulk = BulkActions(service)
    outcome = await bulk.run(
        BulkAction.RETRY, workspace.id, JobFilter(), everything=True, actor=ACTOR
    )
    assert (outcome.matched, outcome.changed, outcome.remaining.count) == (4, 4, 0)
    again = await bulk.run(
        BulkAction.RETRY, workspace.id, JobFilter(), everything=True, actor=ACTOR
    )
    assert (again.matched, again.changed) == (0, 0), "nothing left: repeating ends"
    retried = await service.list_jobs(
        workspace.id, JobFilter(statuses=frozenset({S.QUEUED})), limit=50
    )
    assert sorted(str(job.retry_of) for job in retried.jobs) == sorted(
        str(job.id) for job in [*failed, cancelled]
    ), f"each once ({first.id} was the one retried before)"


async def test_a_bulk_action_needs_a_filter_or_all(
    service: JobService, workspace: Workspace
) -> None:
    with pytest.raises(InvalidInput):
        await BulkActions(service).run(
            BulkAction.CANCEL, workspace.id, JobFilter(), everything=False, actor=ACTOR
        )
