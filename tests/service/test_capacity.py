"""Fair claims and limits, on both databases: turns between workspaces (by weight) and
between concurrency keys; limits that hold under concurrent claimers; slots freed at once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from conveyor.domain.capacity import Rate
from conveyor.domain.errors import StartsOnlyByClaim
from conveyor.domain.job_lists import JobFilter
from conveyor.domain.jobs import ClaimRequest, Job, JobSpec, JobStatus
from conveyor.domain.lifetime import DEFAULT_RETENTION
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_JOB, JobService
from conveyor.service.limits import LimitService
from conveyor.service.settings import WorkspaceSettingsService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, claims, open_store, scans_ahead
from conveyor.store.urls import DatabaseURL
from tests.service.helpers import ACTOR


async def claim(
    service: JobService,
    scope: object,
    limit: int,
    worker: str = "w",
    *,
    types: list[str] | None = None,
    wait_seconds: float = 0.0,
) -> list[Job]:
    return await service.claim_jobs(
        scope,  # type: ignore[arg-type]
        types=types,
        limit=limit,
        lease_seconds=60,
        worker_id=worker,
        actor=ACTOR,
        answer=AS_JOB,
        wait_seconds=wait_seconds,
    )


async def running_count(store: Store, workspace_id: UUID, key: str) -> int:
    async with store.database.read() as connection:
        row = await connection.fetchrow(
            "SELECT count(*) AS n FROM jobs WHERE workspace_id = :ws AND concurrency_key = :k "
            "AND status = 'RUNNING'",
            {"ws": workspace_id, "k": key},
        )
    assert row is not None
    return int(row["n"])


async def test_a_tenant_with_many_jobs_does_not_hold_back_another(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Workspace A has 300 jobs queued first; B's 10, queued after, start in the very next
    claim batch of a worker serving both."""
    other = await WorkspaceService(store).create_workspace("tenant-b")
    await service.create_jobs(workspace.id, [JobSpec(type="t")] * 300, ACTOR)
    b_jobs = [
        job for job, _ in await service.create_jobs(other.id, [JobSpec(type="t")] * 10, ACTOR)
    ]
    first = await claim(service, None, 40)
    by_workspace = Counter(job.workspace_id for job in first)
    assert by_workspace[other.id] == 10, by_workspace
    assert by_workspace[workspace.id] == 30, "the rest of the batch goes to the other tenant"
    assert {job.id for job in first} >= {job.id for job in b_jobs}


async def test_workspaces_get_turns_in_proportion_to_their_weight(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    workspaces = WorkspaceService(store)
    heavy = await workspaces.create_workspace("heavy")
    await WorkspaceSettingsService(store, DEFAULT_RETENTION).update(heavy.id, {"weight": 3})
    await service.create_jobs(workspace.id, [JobSpec(type="t")] * 100, ACTOR)
    await service.create_jobs(heavy.id, [JobSpec(type="t")] * 100, ACTOR)
    taken = Counter(job.workspace_id for job in await claim(service, None, 40))
    assert (taken[heavy.id], taken[workspace.id]) == (30, 10)


async def test_concurrency_keys_take_turns_and_priority_orders_within_one(
    service: JobService, workspace: Workspace
) -> None:
    await service.create_jobs(
        workspace.id,
        [JobSpec(type="t", concurrency_key="big", priority=1 + n % 10) for n in range(200)],
        ACTOR,
    )
    small = [
        job
        for job, _ in await service.create_jobs(
            workspace.id, [JobSpec(type="t", concurrency_key=f"k{n}") for n in range(4)], ACTOR
        )
    ]
    plain = [job for job, _ in await service.create_jobs(workspace.id, [JobSpec(type="t")], ACTOR)]
    first = await claim(service, workspace.id, 12)
    ids = {job.id for job in first}
    assert ids >= {job.id for job in small + plain}, "every key (and no key) gets a turn"
    big = [job for job in first if job.concurrency_key == "big"]
    assert len(big) == 12 - 5
    assert all(job.priority == 1 for job in big), "within a key, most urgent first"


async def test_a_keys_turn_of_one_job_starts_its_most_urgent_due_job_of_the_types_asked(
    service: JobService, workspace: Workspace
) -> None:
    """A group's share of one is its key's first due job in the claim's order (SQLite takes
    it from the key scan, not a read of its own): not a job that is not due, of another
    type, or less urgent."""
    now = datetime.now(UTC)
    keys = ["a", "b", "c"]
    created = await service.create_jobs(
        workspace.id,
        [
            spec
            for key in keys
            for spec in (
                JobSpec(type="t", concurrency_key=key, priority=5),
                JobSpec(type="t", concurrency_key=key, priority=1, run_at=now + timedelta(hours=1)),
                JobSpec(type="u", concurrency_key=key, priority=1),
                # Of one priority, the one due first goes first, though created later.
                JobSpec(
                    type="t", concurrency_key=key, priority=3, run_at=now - timedelta(minutes=1)
                ),
                JobSpec(
                    type="t", concurrency_key=key, priority=3, run_at=now - timedelta(minutes=2)
                ),
            )
        ],
        ACTOR,
    )
    due_first = {job.id for job, _ in created[4::5]}
    first = await claim(service, workspace.id, 3, types=["t"])
    assert sorted(str(job.concurrency_key) for job in first) == keys
    assert {job.id for job in first} == due_first, first
    second = await claim(service, workspace.id, 6, types=["t"])
    assert sorted((str(job.concurrency_key), job.priority) for job in second) == [
        (key, priority) for key in keys for priority in (3, 5)
    ], "then two each: the other of priority 3, then 5; never the one not due"


async def test_many_keys_all_get_turns_however_many_there_are(
    service: JobService, workspace: Workspace
) -> None:
    """More keys than a claim's batch: the next claims start after the last key reached,
    so every key's job starts within a few batches."""
    keys = [f"customer-{n:03}" for n in range(60)]
    await service.create_jobs(
        workspace.id,
        [JobSpec(type="t", concurrency_key=key) for key in keys for _ in range(3)],
        ACTOR,
    )
    claimed = [
        {str(job.concurrency_key) for job in await claim(service, workspace.id, 25)}
        for _ in range(3)
    ]
    assert set().union(*claimed) == set(keys)
    # The third goes on after the last key the second reached, then round from the first.
    assert claimed[2] == set(keys[50:]) | set(keys[:15]), sorted(claimed[2])


async def test_keys_of_several_workspaces_each_take_turns_in_one_scope(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    """An instance claim over keyed workspaces scans each one's keys from where its last
    turn stopped (on PostgreSQL, every workspace's scan in one statement): workspaces with
    different keys go round their own, wrapping each on its own."""
    other = await WorkspaceService(store).create_workspace("other")
    third = await WorkspaceService(store).create_workspace("third")
    keys = {
        workspace.id: [f"a-{n:02}" for n in range(12)],
        other.id: [f"b-{n:02}" for n in range(5)],
        third.id: [f"c-{n:02}" for n in range(30)],
    }
    for workspace_id, names in keys.items():
        specs = [JobSpec(type="t", concurrency_key=key) for key in names for _ in range(10)]
        await service.create_jobs(workspace_id, specs, ACTOR)
    seen: dict[UUID, list[str]] = {workspace_id: [] for workspace_id in keys}
    for _ in range(5):  # 30 turns a workspace: every key of each, evenly
        for job in await claim(service, None, 18):
            assert job.workspace_id is not None
            seen[job.workspace_id].append(str(job.concurrency_key))
    for workspace_id, names in keys.items():
        taken = Counter(seen[workspace_id])
        assert set(taken) == set(names), (workspace_id, sorted(taken))
        assert max(taken.values()) - min(taken.values()) <= 1, taken


async def test_a_key_whose_jobs_come_after_a_claim_gets_the_next_turn(
    service: JobService, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a claim that started every job it asked for reads its scope's next
    key scans ahead; keyed jobs created through the same store drop them, so the next claim
    still finds their key."""
    monkeypatch.setattr(scans_ahead, "SCAN_AHEAD_SECONDS", 60.0)
    await service.create_jobs(
        workspace.id,
        [JobSpec(type="t", concurrency_key=key) for key in ("k1", "k2", "k3") for _ in range(5)],
        ACTOR,
    )
    first = {job.concurrency_key for job in await claim(service, workspace.id, 2)}
    assert first == {"k1", "k2"}
    await asyncio.sleep(0.5)  # the scans read ahead have read their keys: a0 is not among them
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="a0")], ACTOR)
    second = {job.concurrency_key for job in await claim(service, workspace.id, 2)}
    assert second == {"k3", "a0"}, "after k2: k3, then round from the first key, a0"


async def test_a_claim_whose_keys_read_ahead_missed_one_looks_again_at_once(
    services: list[JobService], workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a claim may take key scans read ahead that miss a key another server's
    jobs brought since: starting fewer than it asked, it looks again at once, with fresh
    scans, in the same call (and does not wait for the next poll)."""
    monkeypatch.setattr(claims, "PLAN_REUSE_SECONDS", 0.0)  # each claim plans afresh
    monkeypatch.setattr(scans_ahead, "SCAN_AHEAD_SECONDS", 60.0)  # however slow the test
    mine, other = services[0], services[1]
    await mine.create_jobs(
        workspace.id,
        [JobSpec(type="t", concurrency_key=key) for key in ("k1", "k2") for _ in range(3)],
        ACTOR,
    )
    assert {job.concurrency_key for job in await claim(mine, workspace.id, 2)} == {"k1", "k2"}
    assert len(await claim(other, workspace.id, 10)) == 4
    await other.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k0")], ACTOR)
    assert [job.concurrency_key for job in await claim(mine, workspace.id, 2)] == ["k0"]


async def test_keyed_claims_drain_on_a_pool_of_one_connection(
    database_url: DatabaseURL, workspace: Workspace
) -> None:
    """Scans read ahead wait for a connection of their own: a claim takes them before it
    holds one, so even a pool of one connection drains keyed jobs, with two claimers."""
    store = await open_store(database_url, sqlite_synchronous="NORMAL", pool_size=1)
    try:
        service = JobService(store)
        await service.create_jobs(
            workspace.id,
            [JobSpec(type="t", concurrency_key=f"k{n % 7}") for n in range(60)],
            ACTOR,
        )

        async def drain(worker: str) -> int:
            taken = 0
            while batch := await claim(service, workspace.id, 3, worker):
                taken += len(batch)
            return taken

        drained = await asyncio.wait_for(asyncio.gather(drain("a"), drain("b")), timeout=60)
        assert sum(drained) == 60
    finally:
        await store.close()


async def test_claims_of_one_job_go_round_the_workspaces_by_weight(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """A worker with one free slot claims one job at a time: the workspaces still take
    turns (weight 2 gets two of every three), not the first workspace every time."""
    workspaces = WorkspaceService(store)
    heavy = await workspaces.create_workspace("heavy")
    light = await workspaces.create_workspace("light")
    await WorkspaceSettingsService(store, DEFAULT_RETENTION).update(heavy.id, {"weight": 2})
    for tenant in (workspace, heavy, light):
        await service.create_jobs(tenant.id, [JobSpec(type="t")] * 20, ACTOR)
    taken: Counter[UUID] = Counter()
    for _ in range(16):
        taken.update(job.workspace_id for job in await claim(service, None, 1))
    assert (taken[heavy.id], taken[workspace.id], taken[light.id]) == (8, 4, 4), taken


@pytest.mark.parametrize("limit", [None, "type:other", "other-key"])
async def test_claims_of_one_job_follow_the_weight_where_a_limit_governs(
    service: JobService, store: Store, workspace: Workspace, limit: str | None
) -> None:
    """Where a limit governs a workspace, a claim offers turns for more jobs than it asks
    and weighs them (`fit_shares`, or `fair_order` where a type limit may refuse): what
    each workspace has been served counts there too, so a claim of one does not go to the
    heavier workspace every time. The limit governs none of these jobs."""
    heavy = await WorkspaceService(store).create_workspace("heavy")
    await WorkspaceSettingsService(store, DEFAULT_RETENTION).update(heavy.id, {"weight": 3})
    if limit is not None:
        limits = LimitService(store, service.work_signal)
        await limits.put(heavy.id, limit, max_running=1, rate=None, paused=False)
    for tenant in (workspace, heavy):
        await service.create_jobs(tenant.id, [JobSpec(type="t")] * 20, ACTOR)
    taken: Counter[UUID] = Counter()
    for _ in range(16):
        taken.update(job.workspace_id for job in await claim(service, None, 1))
    assert (taken[heavy.id], taken[workspace.id]) == (12, 4), taken


@pytest.mark.parametrize("held_back_seconds", [60.0, 0.0])
async def test_a_shut_key_costs_its_workspace_no_share_of_jobs(
    service: JobService,
    store: Store,
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    held_back_seconds: float,
) -> None:
    """A workspace with jobs its key limit holds back (max_running 0) and open work gets
    half of claims of one against another workspace of the same weight: the held key's
    turn, once found held, comes after its open work (`HELD_BACK_SECONDS`), where it cost
    the workspace a turn each time (a third of the jobs). Remembered for no time, it is
    looked at in its place again every round, and costs that turn."""
    monkeypatch.setattr(claims, "HELD_BACK_SECONDS", held_back_seconds)
    other = await WorkspaceService(store).create_workspace("other")
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "held", max_running=0, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="held")] * 5, ACTOR)
    for tenant in (workspace, other):
        await service.create_jobs(tenant.id, [JobSpec(type="t")] * 30, ACTOR)
    taken: Counter[UUID] = Counter()
    for _ in range(40):
        taken.update(job.workspace_id for job in await claim(service, None, 1))
    assert await running_count(store, workspace.id, "held") == 0
    if held_back_seconds:
        assert (taken[workspace.id], taken[other.id]) in ((20, 20), (19, 21), (21, 19)), taken
    else:
        assert taken[workspace.id] < taken[other.id], taken


async def test_claims_of_one_job_go_round_the_keys_and_the_jobs_without_one(
    service: JobService, workspace: Workspace
) -> None:
    await service.create_jobs(workspace.id, [JobSpec(type="t")] * 10, ACTOR)
    for key in ("k1", "k2"):
        await service.create_jobs(
            workspace.id, [JobSpec(type="t", concurrency_key=key)] * 10, ACTOR
        )
    taken: Counter[str | None] = Counter()
    for _ in range(9):
        taken.update(job.concurrency_key for job in await claim(service, workspace.id, 1))
    assert taken == {None: 3, "k1": 3, "k2": 3}, taken


async def test_a_claim_of_one_passes_groups_with_nothing_due_for_it(
    service: JobService, workspace: Workspace
) -> None:
    """Keys whose jobs are not due yet, or of a type the worker does not take, do not make
    a claim of one come back empty while a job it can take is due."""
    later = datetime.now(UTC) + timedelta(hours=1)
    for key in ("a", "b", "c", "d"):
        await service.create_job(
            workspace.id, JobSpec(type="t", concurrency_key=key, run_at=later), ACTOR
        )
        await service.create_job(workspace.id, JobSpec(type="other", concurrency_key=key), ACTOR)
    due, _ = await service.create_job(workspace.id, JobSpec(type="t", concurrency_key="z"), ACTOR)
    [job] = await claim(service, workspace.id, 1, types=["t"])
    assert job.id == due.id


async def test_claims_of_one_job_go_round_workspaces_where_limits_govern_too(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """A's jobs are older and more urgent, and a limit (with room) governs B: claims of one
    job still alternate."""
    other = await WorkspaceService(store).create_workspace("tenant-b")
    await service.create_jobs(workspace.id, [JobSpec(type="t", priority=1)] * 10, ACTOR)
    await service.create_jobs(other.id, [JobSpec(type="t", priority=9)] * 10, ACTOR)
    limits = LimitService(store, service.work_signal)
    await limits.put(other.id, "type:t", max_running=100, rate=None, paused=False)
    taken: Counter[UUID] = Counter()
    for _ in range(6):
        taken.update(job.workspace_id for job in await claim(service, None, 1))
    assert (taken[workspace.id], taken[other.id]) == (3, 3), taken


async def test_full_keys_do_not_hold_back_a_key_with_room(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Keys a..e are full (a limit of 0 each); f has room: a claim of one job reaches f
    within its own long-poll, not after a poll interval per key."""
    limits = LimitService(store, service.work_signal)
    for key in "abcde":
        await limits.put(workspace.id, key, max_running=0, rate=None, paused=False)
        await service.create_job(workspace.id, JobSpec(type="t", concurrency_key=key), ACTOR)
    free, _ = await service.create_job(workspace.id, JobSpec(type="t", concurrency_key="f"), ACTOR)
    [job] = await asyncio.wait_for(claim(service, workspace.id, 1, wait_seconds=5), timeout=5)
    assert job.id == free.id


async def test_a_workspace_whose_groups_a_limit_holds_does_not_take_every_turn(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """A's 40 keys are all under a paused limit; B has jobs without a key. A turn a limit
    spent still counts as A's: every claim of five keeps starting B's jobs."""
    other = await WorkspaceService(store).create_workspace("tenant-b")
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "type:t", max_running=None, rate=None, paused=True)
    held = [JobSpec(type="t", concurrency_key=f"k{index:02}") for index in range(40)]
    await service.create_jobs(workspace.id, held, ACTOR)
    await service.create_jobs(other.id, [JobSpec(type="t")] * 200, ACTOR)
    started = [len(await claim(service, None, 5)) for _ in range(20)]
    assert min(started) >= 1, f"a claim started none of B's jobs: {started}"
    assert sum(started) >= 40, started


async def test_a_claim_held_back_by_limits_waits_to_be_woken_not_polling(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Twenty keys, all full: a waiting claim of one goes round them once, then waits for
    room (a limit changing wakes it), not looking again every few milliseconds."""
    limits = LimitService(store, service.work_signal)
    for index in range(20):
        await limits.put(workspace.id, f"k{index:02}", max_running=0, rate=None, paused=False)
    held = [JobSpec(type="t", concurrency_key=f"k{index:02}") for index in range(20)]
    await service.create_jobs(workspace.id, held, ACTOR)
    looks = 0
    claim_jobs = service.jobs.claim_jobs

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal looks
        looks += 1
        return await claim_jobs(*args, **kwargs)  # type: ignore[arg-type]

    service.jobs.claim_jobs = counted  # type: ignore[method-assign]
    waiting = asyncio.create_task(claim(service, workspace.id, 1, wait_seconds=10))
    await asyncio.sleep(1.5)
    gone_round = looks
    assert gone_round <= 15, f"{gone_round} looks in 1.5 s: the claim polls while limits hold"
    await limits.put(workspace.id, "k07", max_running=1, rate=None, paused=False)
    [job] = await asyncio.wait_for(waiting, timeout=5)
    assert job.concurrency_key == "k07", "woken by the limit's room"


async def test_workers_of_different_types_keep_their_own_turns(
    service: JobService, workspace: Workspace
) -> None:
    """Workers taking type x (keys a, m, z) and type y (key n) claim in turn: every x key
    still gets its turn."""
    for key in ("a", "m", "z"):
        await service.create_jobs(workspace.id, [JobSpec(type="x", concurrency_key=key)] * 3, ACTOR)
    await service.create_jobs(workspace.id, [JobSpec(type="y", concurrency_key="n")] * 3, ACTOR)
    seen: Counter[str | None] = Counter()
    for _ in range(3):
        for types in (["x"], ["y"]):
            [job] = await claim(service, workspace.id, 1, types=types)
            seen[job.concurrency_key] += 1
    assert seen == {"a": 1, "m": 1, "z": 1, "n": 3}, seen


async def test_a_job_a_limit_governs_starts_only_through_a_claim(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Moving a job to RUNNING by name would pass the limit's count: refused, with the
    limits named; a job no limit governs still may."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "db", max_running=1, rate=None, paused=False)
    await service.create_job(workspace.id, JobSpec(type="t", concurrency_key="db"), ACTOR)
    [running] = await claim(service, workspace.id, 5)
    waiting, _ = await service.create_job(
        workspace.id, JobSpec(type="t", concurrency_key="db"), ACTOR
    )
    with pytest.raises(StartsOnlyByClaim) as refused:
        await service.change_status(
            workspace.id, waiting.id, JobStatus.RUNNING, actor=ACTOR, worker_id="w"
        )
    assert refused.value.limits == ("db",)
    assert (await service.get_job(workspace.id, waiting.id)).status == JobStatus.QUEUED
    assert await running_count(store, workspace.id, "db") == 1
    assert (await service.get_job(workspace.id, running.id)).status == JobStatus.RUNNING
    free, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    started = await service.change_status(
        workspace.id, free.id, JobStatus.RUNNING, actor=ACTOR, worker_id="w"
    )
    assert started.status == JobStatus.RUNNING


async def test_a_limit_that_comes_after_the_check_still_refuses_a_start_by_name(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """The race: the service's look for limits finds none, a limit is put right after; the
    start itself (guarded in the database, under the claim lock on PostgreSQL) still
    refuses, and the caller learns why."""
    limits = LimitService(store, service.work_signal)
    job, _ = await service.create_job(workspace.id, JobSpec(type="t", concurrency_key="db"), ACTOR)
    existing = store.limits.existing
    looks = 0

    async def a_limit_comes_after_the_first_look(workspace_id: UUID, names: list[str]) -> list[str]:
        nonlocal looks
        looks += 1
        if looks == 1:
            await limits.put(workspace.id, "db", max_running=0, rate=None, paused=False)
            return []
        return await existing(workspace_id, names)

    store.limits.existing = a_limit_comes_after_the_first_look  # type: ignore[method-assign]
    with pytest.raises(StartsOnlyByClaim) as refused:
        await service.change_status(
            workspace.id, job.id, JobStatus.RUNNING, actor=ACTOR, worker_id="w"
        )
    assert refused.value.limits == ("db",)
    assert looks == 2, "the attempt after the guard refused said why, not a retry loop"
    assert (await service.get_job(workspace.id, job.id)).status == JobStatus.QUEUED


async def test_concurrent_claimers_never_run_more_than_max_running(
    services: list[JobService], store: Store, workspace: Workspace
) -> None:
    """Ten claimers on five stores (own connections) race for one limit, round after round
    (each round's jobs completed before the next): never one more than max_running."""
    limits = LimitService(store, services[0].work_signal)
    await limits.put(workspace.id, "openai", max_running=5, rate=None, paused=False)
    await services[0].create_jobs(
        workspace.id, [JobSpec(type="t", concurrency_key="openai")] * 60, ACTOR
    )
    for _ in range(5):
        claims = await asyncio.gather(
            *(claim(service, workspace.id, 20, f"w{n}") for n, service in enumerate(services * 2))
        )
        started = [job for batch in claims for job in batch]
        assert len(started) == 5, f"{len(started)} started under max_running 5"
        assert await running_count(store, workspace.id, "openai") == 5
        counts = await limits.get(workspace.id, "openai")
        assert (counts.running, counts.waiting_because) == (5, "full")
        for job in started:
            assert job.lease_id is not None
            await services[0].complete_job(workspace.id, job.id, job.lease_id, None, ACTOR)


async def test_a_type_limit_and_a_key_limit_both_hold(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "type:render", max_running=3, rate=None, paused=False)
    await limits.put(workspace.id, "acme-corp", max_running=2, rate=None, paused=False)
    await service.create_jobs(
        workspace.id,
        [JobSpec(type="render", concurrency_key="acme-corp")] * 5
        + [JobSpec(type="render", concurrency_key="globex")] * 5
        + [JobSpec(type="email", concurrency_key="acme-corp")] * 5,
        ACTOR,
    )
    started = await claim(service, workspace.id, 50)
    renders = [job for job in started if job.type == "render"]
    acme = [job for job in started if job.concurrency_key == "acme-corp"]
    described = [(job.type, job.concurrency_key) for job in started]
    assert len(renders) == 3, described
    assert len(acme) == 2, described
    assert len(started) == 3 + 2 - len([j for j in acme if j.type == "render"]), described


@pytest.mark.parametrize("held", ["paused", "full", "rate"])
async def test_jobs_a_type_limit_holds_back_are_not_in_the_way_of_other_types(
    service: JobService, store: Store, workspace: Workspace, held: str
) -> None:
    """A type limit without room (paused, full of its running jobs, over its rate) leaves
    its queued jobs out of a claim's candidates: the most urgent of them took a small
    claim's turns, the limit refused them, and the claim started nothing while jobs of
    other types waited (an embedded server's job stayed QUEUED until the limit went)."""
    limits = LimitService(store, service.work_signal)
    if held == "paused":
        await limits.put(workspace.id, "type:render", max_running=None, rate=None, paused=True)
    else:
        rate = Rate(1, 3600) if held == "rate" else None
        most = 1 if held == "full" else None
        await limits.put(workspace.id, "type:render", max_running=most, rate=rate, paused=False)
        await service.create_jobs(workspace.id, [JobSpec(type="render", priority=1)], ACTOR)
        [first] = await claim(service, workspace.id, 1)
        assert first.type == "render"
    await service.create_jobs(
        workspace.id,
        [JobSpec(type="render", priority=1)] * 10
        + [JobSpec(type="render", priority=1, concurrency_key="acme")] * 5,
        ACTOR,
    )
    created = await service.create_jobs(
        workspace.id,
        [JobSpec(type="email", priority=5), JobSpec(type="email", concurrency_key="acme")],
        ACTOR,
    )
    emails = {job.id for job, _ in created}
    started = [job for _ in range(2) for job in await claim(service, workspace.id, 1)]
    assert {job.id for job in started} == emails, [(j.type, j.concurrency_key) for j in started]
    assert await claim(service, workspace.id, 5) == [], "the render jobs still wait"
    waiting = JobFilter(statuses=frozenset({JobStatus.QUEUED}), type="render")
    assert (await service.list_jobs(workspace.id, waiting, page=1, limit=50)).total == 15


async def test_a_claim_waiting_on_a_type_limits_rate_starts_its_job_when_the_window_ends(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """The jobs a type limit's rate holds back are left out of the candidates, and the
    claim still knows when its window lets the next one start: it wakes then (not at the
    end of its wait, with nothing)."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "type:mail", max_running=None, rate=Rate(1, 1), paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="mail")] * 2, ACTOR)
    [first] = await claim(service, workspace.id, 1)
    began = time.monotonic()
    [second] = await claim(service, workspace.id, 1, wait_seconds=30)
    assert second.id != first.id
    waited = time.monotonic() - began
    assert waited < service.poll_interval, f"{waited:.1f} s: not woken by its window's end"


async def test_a_cancelled_or_expired_job_frees_its_slot_at_once(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "one", max_running=1, rate=None, paused=False)
    await service.create_jobs(
        workspace.id, [JobSpec(type="t", concurrency_key="one", max_attempts=2)] * 3, ACTOR
    )
    [first] = await claim(service, workspace.id, 5)
    assert await claim(service, workspace.id, 5) == [], "full"
    await service.cancel_job(workspace.id, first.id, ACTOR)
    [second] = await claim(service, workspace.id, 5)
    assert second.id != first.id
    async with store.database.write() as connection:  # its worker died long ago
        await connection.execute(
            "UPDATE jobs SET lease_expires_at = conveyor_after(-60) WHERE id = :id",
            {"id": second.id},
        )
    [requeued] = await service.expire_leases()
    assert requeued.status == JobStatus.QUEUED
    [again] = await claim(service, workspace.id, 5)
    assert again.id == second.id, "the expired job went back where it was, and had the slot"


async def test_pause_stops_starts_and_a_rate_window_holds(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "type:t", max_running=None, rate=None, paused=True)
    await service.create_jobs(workspace.id, [JobSpec(type="t")] * 10, ACTOR)
    assert await claim(service, workspace.id, 10) == []
    job = (await service.list_jobs(workspace.id, JobFilter(), page=1, limit=1)).jobs[0]
    [wait] = await limits.waits(job)
    assert wait.reason == "paused"
    await limits.put(workspace.id, "type:t", max_running=None, rate=Rate(4, 3600), paused=False)
    assert len(await claim(service, workspace.id, 10)) == 4
    assert await claim(service, workspace.id, 10) == [], "four starts an hour"
    outcome = await service.jobs.claim_jobs(
        ClaimRequest(None, 10, 60, "w", ACTOR, (workspace.id,)), AS_JOB
    )
    assert outcome.jobs == []
    assert outcome.wake_in is not None
    assert 3500 < outcome.wake_in <= 3600, "looks again when the window lets one more start"


@pytest.mark.parametrize("count", [3])
async def test_rate_windows_hold_across_claimers_of_two_stores(
    services: list[JobService], store: Store, workspace: Workspace, count: int
) -> None:
    limits = LimitService(store, services[0].work_signal)
    await limits.put(workspace.id, "api", max_running=None, rate=Rate(count, 3600), paused=False)
    await services[0].create_jobs(
        workspace.id, [JobSpec(type="t", concurrency_key="api")] * 30, ACTOR
    )
    claims = await asyncio.gather(
        *(claim(service, workspace.id, 10, f"w{n}") for n, service in enumerate(services * 3))
    )
    assert sum(len(batch) for batch in claims) == count


async def test_a_limited_start_is_stamped_when_it_starts_not_when_its_claim_began_waiting(
    service: JobService, store: Store, workspace: Workspace, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("claim locks are PostgreSQL's (SQLite has one writer)")
    await LimitService(store, service.work_signal).put(
        workspace.id, "type:t", max_running=5, rate=None, paused=False
    )
    await service.create_jobs(workspace.id, [JobSpec(type="t")], ACTOR)
    async with store.database.transaction() as holder:  # another claimer holds the lock
        await holder.execute(
            store.jobs.queries["take_claim_locks"].sql,  # type: ignore[attr-defined]
            {"workspaces": [workspace.id], "shared": []},
        )
        waiting = asyncio.create_task(claim(service, workspace.id, 1))
        await asyncio.sleep(0.5)
        released = await holder.fetchrow("SELECT clock_timestamp() AS at")
    [job] = await waiting
    assert released is not None
    assert job.started_at >= released["at"], "stamped before the claim could start anything"


async def test_limits_of_one_name_in_several_workspaces_each_hold_their_own(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    """An instance claim reads the limits of every workspace it takes from at once (on
    PostgreSQL in one statement, folding their leaves in one more): a limit is its
    workspace's, even where another workspace has one of the same name."""
    other = await WorkspaceService(store).create_workspace("other")
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "api", max_running=1, rate=None, paused=False)
    await limits.put(other.id, "api", max_running=3, rate=None, paused=False)
    await limits.put(workspace.id, "type:mail", max_running=None, rate=Rate(2, 3600), paused=False)
    await limits.put(other.id, "type:mail", max_running=None, rate=Rate(1, 3600), paused=False)
    for workspace_id in (workspace.id, other.id):
        specs = [JobSpec(type="t", concurrency_key="api")] * 10 + [JobSpec(type="mail")] * 5
        await service.create_jobs(workspace_id, specs, ACTOR)

    started = await claim(service, None, 20)
    by_place = Counter((job.workspace_id, job.type) for job in started)
    assert by_place == {
        (workspace.id, "t"): 1,
        (other.id, "t"): 3,
        (workspace.id, "mail"): 2,
        (other.id, "mail"): 1,
    }
    assert await claim(service, None, 20) == [], "every limit is full or out of starts"

    for job in started:  # every slot frees in both workspaces; the rate windows do not
        if job.type == "t":
            assert job.lease_id is not None
            await service.complete_job(
                job.workspace_id or workspace.id, job.id, job.lease_id, None, ACTOR
            )
    again = Counter((job.workspace_id, job.type) for job in await claim(service, None, 20))
    assert again == {(workspace.id, "t"): 1, (other.id, "t"): 3}


async def test_old_starts_are_forgotten_by_each_workspaces_own_window(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    """A claim that starts rated jobs in several workspaces forgets, in one statement, the
    starts older than each workspace's own longest window, not another's."""
    other = await WorkspaceService(store).create_workspace("other")
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "type:mail", max_running=None, rate=Rate(1, 1), paused=False)
    await limits.put(other.id, "type:mail", max_running=None, rate=Rate(5, 3600), paused=False)
    async with store.database.transaction() as connection:
        for workspace_id in (workspace.id, other.id):  # a start a minute ago in each
            await connection.execute(
                "INSERT INTO limit_starts (workspace_id, name, started_at) "
                "VALUES (:ws, 'type:mail', conveyor_after(-60))",
                {"ws": workspace_id},
            )
    for workspace_id in (workspace.id, other.id):
        await service.create_jobs(workspace_id, [JobSpec(type="mail")] * 5, ACTOR)

    started = Counter(job.workspace_id for job in await claim(service, None, 10))
    assert started == {workspace.id: 1, other.id: 4}, "the minute-old start fills one of 5"

    async with store.database.read() as connection:
        rows = await connection.fetch(
            "SELECT workspace_id, count(*) AS n FROM limit_starts GROUP BY workspace_id", {}
        )
    kept = {store.database.codec.uuid(row["workspace_id"]): int(row["n"]) for row in rows}
    assert kept == {workspace.id: 1, other.id: 5}, "a 1 s window forgets the old start"
