"""A limit's running count is kept, not counted per claim (migration 0018), on both
databases: it is the number of its jobs running, whatever ended them and whenever the limit
came, went or changed, under claimers, enders and limit changes racing."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID, uuid4

from conveyor.domain.capacity import Limit
from conveyor.domain.errors import TransientDatabaseError
from conveyor.domain.jobs import Completion, Job, JobChange, JobSpec, JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.service.limits import LimitService
from conveyor.service.observer import Unobserved
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store
from conveyor.store.limits import LimitPut
from conveyor.store.projections import AS_JOB
from tests.service.helpers import ACTOR
from tests.service.test_capacity import claim


async def really_running(store: Store, workspace_id: UUID, name: str) -> int:
    """The jobs of a limit's name that run, counted from the jobs themselves."""
    column, value = ("type", name[5:]) if name.startswith("type:") else ("concurrency_key", name)
    async with store.database.read() as connection:
        row = await connection.fetchrow(
            f"SELECT count(*) AS n FROM jobs WHERE workspace_id = :ws AND {column} = :v "
            "AND status = 'RUNNING'",
            {"ws": workspace_id, "v": value},
        )
    assert row is not None
    return int(row["n"])


async def assert_counts_true(limits: LimitService, store: Store, workspace_id: UUID) -> None:
    """Each limit counts the jobs of its name that run, and every running job counted in
    limits (`limited`) has a limit of its names (migration 0020: its leave is written
    without asking)."""
    for counts in await limits.list_limits(workspace_id):
        name = counts.limit.name
        assert counts.running == await really_running(store, workspace_id, name), name
    async with store.database.read() as connection:
        ungoverned = await connection.fetch(
            "SELECT id FROM jobs j WHERE j.workspace_id = :ws AND j.status = 'RUNNING' "
            "AND j.limited AND NOT EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = "
            ":ws AND l.name IN (j.concurrency_key, 'type:' || j.type))",
            {"ws": workspace_id},
        )
    assert ungoverned == [], "running jobs counted in no limit"


async def end(service: JobService, job: Job, how: str) -> None:
    assert job.lease_id is not None
    if how == "complete":
        await service.complete_job(job.workspace_id, job.id, job.lease_id, None, ACTOR)
    elif how == "fail":
        await service.fail_job(
            job.workspace_id, job.id, job.lease_id, "boom", retryable=True, actor=ACTOR
        )
    elif how == "complete by status":  # PATCH …/status: one statement of its own
        await service.change_status(
            job.workspace_id, job.id, JobStatus.COMPLETED, actor=ACTOR, lease_id=job.lease_id
        )
    elif how == "release":
        await service.release_job(job.workspace_id, job.id, job.lease_id, ACTOR)
    else:
        await service.cancel_job(job.workspace_id, job.id, ACTOR)


async def complete_batch(service: JobService, workspace_id: UUID, jobs: list[Job]) -> None:
    """Complete jobs in one batch (one statement on PostgreSQL)."""
    completions = []
    for job in jobs:
        assert job.lease_id is not None
        completions.append(Completion(workspace_id, job.id, job.lease_id, None))
    if completions:
        outcomes = await service.complete_jobs(completions, ACTOR, AS_JOB)
        assert all(outcome.error is None for outcome in outcomes), outcomes


async def test_a_limit_created_while_its_jobs_run_counts_them_until_they_end(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    limits = LimitService(store, service.work_signal)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 6, ACTOR)
    running = await claim(service, workspace.id, 3)
    counts = await limits.put(workspace.id, "k", max_running=2, rate=None, paused=False)
    assert (counts.running, counts.waiting_because) == (3, "full")
    assert await claim(service, workspace.id, 5) == [], "three run under a limit of two"
    await end(service, running[0], "complete")
    assert await claim(service, workspace.id, 5) == [], "two still run"
    await end(service, running[1], "cancel")
    [started] = await claim(service, workspace.id, 5)
    assert started.concurrency_key == "k"
    assert (await limits.get(workspace.id, "k")).running == 2
    await assert_counts_true(limits, store, workspace.id)


async def test_a_type_limit_and_a_key_limit_each_count_a_job_of_both(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "k", max_running=10, rate=None, paused=False)
    await limits.put(workspace.id, "type:t", max_running=10, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 4, ACTOR)
    started = await claim(service, workspace.id, 4)
    assert [(await limits.get(workspace.id, n)).running for n in ("k", "type:t")] == [4, 4]
    await end(service, started[0], "fail")
    await end(service, started[1], "release")
    assert [(await limits.get(workspace.id, n)).running for n in ("k", "type:t")] == [2, 2]
    await assert_counts_true(limits, store, workspace.id)


async def test_a_limit_deleted_and_put_again_counts_afresh(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """The jobs that ended while it was gone are not taken off it again."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "k", max_running=5, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 4, ACTOR)
    started = await claim(service, workspace.id, 4)
    await limits.delete(workspace.id, "k")
    await end(service, started[0], "complete")
    await limits.put(workspace.id, "k", max_running=5, rate=None, paused=False)
    await end(service, started[1], "complete")
    assert (await limits.get(workspace.id, "k")).running == 2
    await limits.put(workspace.id, "k", max_running=3, rate=None, paused=False)
    assert (await limits.get(workspace.id, "k")).running == 2, "a change keeps the count"
    await assert_counts_true(limits, store, workspace.id)


async def test_an_expired_lease_takes_its_job_off_its_limits(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "type:t", max_running=5, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", max_attempts=1)] * 2, ACTOR)
    await claim(service, workspace.id, 2)
    async with store.database.write() as connection:
        await connection.execute(
            "UPDATE jobs SET lease_expires_at = conveyor_after(-60) WHERE workspace_id = :ws",
            {"ws": workspace.id},
        )
    expired = await service.expire_leases()
    assert {job.status for job in expired} == {JobStatus.FAILED}
    assert (await limits.get(workspace.id, "type:t")).running == 0


async def test_counts_stay_true_under_racing_claims_ends_and_limit_changes(
    services: list[JobService], store: Store, workspace: Workspace
) -> None:
    """Claimers on several stores, jobs ending every way, and the limits put, changed,
    deleted and put again meanwhile: after each round every limit's count is its jobs
    running, and the limit never changed never held more than it allows."""
    chance = random.Random(16)
    limits = LimitService(store, services[0].work_signal)
    keys = ["a", "b", "c"]
    for name in [*keys, "type:t"]:
        await limits.put(workspace.id, name, max_running=4, rate=None, paused=False)
    jobs = [
        JobSpec(type=chance.choice(["t", "u"]), concurrency_key=chance.choice([*keys, None]))
        for _ in range(240)
    ]
    await services[0].create_jobs(workspace.id, jobs, ACTOR)
    running: list[Job] = []
    present = set(keys)
    for round_number in range(8):
        claims = asyncio.gather(
            *(claim(service, workspace.id, 6, f"w{n}") for n, service in enumerate(services * 2))
        )
        ending = running[: len(running) // 2 + 1]
        running = running[len(ending) :]
        batch, one_by_one = ending[: len(ending) // 2], ending[len(ending) // 2 :]
        ends = asyncio.gather(
            complete_batch(services[-1], workspace.id, batch),
            *(
                end(
                    services[n % len(services)],
                    job,
                    chance.choice(["complete", "complete by status", "fail", "cancel"]),
                )
                for n, job in enumerate(one_by_one)
            ),
        )
        name = chance.choice(keys)
        if round_number % 3 == 2 and name in present:
            present.discard(name)
            change = limits.delete(workspace.id, name)
        else:
            present.add(name)
            change = limits.put(
                workspace.id, name, max_running=chance.randint(2, 5), rate=None, paused=False
            )
        batches, _, _ = await asyncio.gather(claims, ends, change)
        running += [job for batch in batches for job in batch]
        await assert_counts_true(limits, store, workspace.id)
        assert (await limits.get(workspace.id, "type:t")).running <= 4, "never changed"
    while running:
        await end(services[0], running.pop(), "complete")
    for counts in await limits.list_limits(workspace.id):
        assert counts.running == 0, counts


async def test_a_limit_put_where_a_claim_planned_none_holds_that_claim_back(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """An instance claim's plan found limits in one workspace and none in another; a limit
    put on the other right after (while a plan may be reused) governs the next claims."""
    other = await WorkspaceService(store).create_workspace("other")
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "k", max_running=10, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 6, ACTOR)
    await service.create_jobs(other.id, [JobSpec(type="t")] * 6, ACTOR)
    before = await claim(service, None, 2)
    await limits.put(other.id, "type:t", max_running=None, rate=None, paused=True)
    after = [job for _ in range(3) for job in await claim(service, None, 10)]
    assert not [job for job in after if job.workspace_id == other.id], "paused"
    ran_before = len([job for job in before if job.workspace_id == other.id])
    assert (await limits.get(other.id, "type:t")).running == ran_before
    await assert_counts_true(limits, store, other.id)


async def test_a_batch_of_completions_takes_off_only_the_limited_jobs_it_completed(
    service: JobService, store: Store, workspace: Workspace, backend: str
) -> None:
    """One batch: limited jobs, unlimited ones and one whose lease is stale. The limited
    jobs it completes leave their limit (on PostgreSQL: one leave each); the stale one
    still runs and still counts."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "a", max_running=5, rate=None, paused=False)
    specs = [JobSpec(type="t", concurrency_key=key) for key in ("a", "b") for _ in range(3)]
    await service.create_jobs(workspace.id, specs, ACTOR)
    running = await claim(service, workspace.id, 6)
    stale = next(job for job in running if job.concurrency_key == "a")
    completions = [
        Completion(workspace.id, job.id, uuid4() if job is stale else job.lease_id, None)
        for job in running
    ]
    outcomes = await service.complete_jobs(completions, ACTOR, AS_JOB)
    assert [outcome.job_id for outcome in outcomes if outcome.error is not None] == [stale.id]
    assert (await limits.get(workspace.id, "a")).running == 1
    await assert_counts_true(limits, store, workspace.id)
    async with store.database.read() as connection:
        rows = await connection.fetch(
            "SELECT concurrency_key FROM limit_leaves WHERE workspace_id = :ws",
            {"ws": workspace.id},
        )
    leaves = [row["concurrency_key"] for row in rows]
    assert leaves == ([] if backend == "sqlite" else ["a", "a"])


async def test_an_instance_claim_starts_nothing_limited_in_a_workspace_without_limits(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """A claim under limits (one workspace of its plan has them) that also starts jobs of a
    workspace without any starts those unlimited: nothing counts them, and their ending
    takes nothing off any limit."""
    other = await WorkspaceService(store).create_workspace("other")
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "k", max_running=10, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 4, ACTOR)
    await service.create_jobs(other.id, [JobSpec(type="t", concurrency_key="k")] * 4, ACTOR)
    running = await claim(service, None, 8)
    assert {job.workspace_id for job in running} == {workspace.id, other.id}
    assert await limited_flags(store, other.id) == {"k": {False}}
    assert await limited_flags(store, workspace.id) == {"k": {True}}
    assert (await limits.get(workspace.id, "k")).running == 4
    for job in running:
        await end(service, job, "complete")
    assert (await limits.get(workspace.id, "k")).running == 0


async def test_a_limit_put_that_the_database_ends_as_a_deadlock_is_tried_again(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Creating a limit counts its running jobs under their row locks; PostgreSQL may end
    it as a deadlock with a batch of completions locking the same jobs (the attempt is
    rolled back whole). The service tries again: the limit exists, each running job is
    counted once, and the retry is observed."""
    retried: list[BaseException] = []

    class Observed(Unobserved):
        def conflict_retried(self, error: BaseException) -> None:
            retried.append(error)

    limits = LimitService(store, service.work_signal, observer=Observed())
    put = store.limits.put
    calls = 0

    async def deadlocked_once(limit: Limit, expected_version: int | None = None) -> LimitPut:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientDatabaseError("deadlock detected")
        return await put(limit, expected_version)

    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 3, ACTOR)
    await claim(service, workspace.id, 2)
    store.limits.put = deadlocked_once  # type: ignore[method-assign]
    try:
        counts = await limits.put(workspace.id, "k", max_running=5, rate=None, paused=False)
    finally:
        del store.limits.put
    assert (calls, len(retried)) == (2, 1)
    assert counts.running == 2
    await assert_counts_true(limits, store, workspace.id)


async def test_a_limit_delete_that_the_database_ends_as_a_deadlock_is_tried_again(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Deleting a limit locks its running jobs to count them out, and may meet the same
    deadlock as creating one: tried again, the limit is gone and its jobs count in none."""
    retried: list[BaseException] = []

    class Observed(Unobserved):
        def conflict_retried(self, error: BaseException) -> None:
            retried.append(error)

    limits = LimitService(store, service.work_signal, observer=Observed())
    await limits.put(workspace.id, "k", max_running=5, rate=None, paused=False)
    await service.create_jobs(workspace.id, [JobSpec(type="t", concurrency_key="k")] * 2, ACTOR)
    await claim(service, workspace.id, 2)
    delete = store.limits.delete
    calls = 0

    async def deadlocked_once(workspace_id: UUID, name: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientDatabaseError("deadlock detected")
        return await delete(workspace_id, name)

    store.limits.delete = deadlocked_once  # type: ignore[method-assign]
    try:
        await limits.delete(workspace.id, "k")
    finally:
        del store.limits.delete
    assert (calls, len(retried)) == (2, 1)
    assert await limits.list_limits(workspace.id) == []
    assert await limited_flags(store, workspace.id) == {"k": {False}}


async def test_a_limit_created_while_claims_start_its_jobs_counts_every_one(
    services: list[JobService], store: Store
) -> None:
    """Claims where no limit governs race the creation of one: each start is either seen
    by the new limit's count or made after it, counted (fresh workspaces, many rounds)."""
    limits = LimitService(store, services[0].work_signal)
    for round_number in range(6):
        workspace = await WorkspaceService(store).create_workspace(f"race-{round_number}")
        await services[0].create_jobs(
            workspace.id, [JobSpec(type="t", concurrency_key="k")] * 60, ACTOR
        )
        claims = [
            claim(service, workspace.id, 4, f"w{n}") for n, service in enumerate(services * 2)
        ]
        put = limits.put(workspace.id, "k", max_running=100, rate=None, paused=False)
        await asyncio.gather(*claims, put)
        await assert_counts_true(limits, store, workspace.id)


async def limited_flags(store: Store, workspace_id: UUID) -> dict[str | None, set[bool]]:
    """Per concurrency key, whether its running jobs started `limited`."""
    async with store.database.read() as connection:
        rows = await connection.fetch(
            "SELECT concurrency_key, limited FROM jobs WHERE workspace_id = :ws "
            "AND status = 'RUNNING'",
            {"ws": workspace_id},
        )
    flags: dict[str | None, set[bool]] = {}
    for row in rows:
        flags.setdefault(row["concurrency_key"], set()).add(bool(row["limited"]))
    return flags


async def test_a_job_starts_limited_only_where_a_limit_of_its_names_exists(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """In a workspace with limits, the claim starts a job `limited` (counted in its limits,
    taken off them as it leaves) only where its key's or its type's limit exists: the
    others leave nothing to fold. However they end, the counts come back to nothing."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "a", max_running=5, rate=None, paused=False)
    specs = [JobSpec(type="t", concurrency_key=key) for key in ("a", "b", None) for _ in range(2)]
    await service.create_jobs(workspace.id, specs, ACTOR)
    running = await claim(service, workspace.id, 6)
    assert len(running) == 6
    assert await limited_flags(store, workspace.id) == {"a": {True}, "b": {False}, None: {False}}
    assert (await limits.get(workspace.id, "a")).running == 2
    await limits.put(workspace.id, "type:t", max_running=10, rate=None, paused=False)
    assert await limited_flags(store, workspace.id) == {"a": {True}, "b": {True}, None: {True}}
    await assert_counts_true(limits, store, workspace.id)
    endings = ["complete", "fail", "cancel", "release", "complete by status", "complete"]
    for job, how in zip(running, endings, strict=True):
        await end(service, job, how)
        await assert_counts_true(limits, store, workspace.id)
    for counts in await limits.list_limits(workspace.id):
        assert counts.running == 0, counts


async def test_a_claim_with_a_type_limit_admits_each_job_and_one_without_starts_the_shares(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Key limits alone: the fitted shares start as they are picked; with a type limit
    that caps, each candidate is weighed (`admit`): both hold every limit."""
    limits = LimitService(store, service.work_signal)
    for key in ("a", "b"):
        await limits.put(workspace.id, key, max_running=2, rate=None, paused=False)
    specs = [JobSpec(type="y", concurrency_key=key) for key in ("a", "b")] * 3
    await service.create_jobs(workspace.id, specs, ACTOR)
    assert len(await claim(service, workspace.id, 10)) == 4, "two of each key"
    assert await claim(service, workspace.id, 10) == [], "both keys are full"
    specs = [JobSpec(type="x", concurrency_key=key) for key in ("a", "b")] * 3
    await service.create_jobs(workspace.id, specs, ACTOR)
    await limits.put(workspace.id, "a", max_running=4, rate=None, paused=False)
    await limits.put(workspace.id, "type:x", max_running=1, rate=None, paused=False)
    started = await claim(service, workspace.id, 10)
    assert sorted((job.type, job.concurrency_key) for job in started) == [("x", "a"), ("y", "a")]
    assert await claim(service, workspace.id, 10) == [], "type:x is full"
    await assert_counts_true(limits, store, workspace.id)


async def leaves_of(store: Store, workspace_id: UUID) -> list[str | None]:
    """The concurrency keys of the leaves not yet folded. PostgreSQL writes them; SQLite's
    trigger takes a leave off its limits at once and writes none, so there an assertion on
    them holds whatever happens (the flags and counts asserted beside them do not)."""
    async with store.database.read() as connection:
        rows = await connection.fetch(
            "SELECT concurrency_key FROM limit_leaves WHERE workspace_id = :ws",
            {"ws": workspace_id},
        )
    return sorted(row["concurrency_key"] for row in rows)


async def test_a_deleted_limit_leaves_running_jobs_counted_only_where_another_limit_remains(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Deleting a limit clears `limited` on the running jobs none of whose names has a limit
    left: their ending writes no leave (migration 0020), and those a remaining limit
    governs still count in it until they end."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "a", max_running=5, rate=None, paused=False)
    await limits.put(workspace.id, "type:t", max_running=5, rate=None, paused=False)
    specs = [JobSpec(type=kind, concurrency_key="a") for kind in ("t", "u") for _ in range(2)]
    await service.create_jobs(workspace.id, specs, ACTOR)
    running = await claim(service, workspace.id, 4)
    assert len(running) == 4
    await limits.delete(workspace.id, "a")
    async with store.database.read() as connection:
        rows = await connection.fetch(
            "SELECT type, limited FROM jobs WHERE workspace_id = :ws AND status = 'RUNNING'",
            {"ws": workspace.id},
        )
    assert sorted((row["type"], bool(row["limited"])) for row in rows) == [
        ("t", True),
        ("t", True),
        ("u", False),
        ("u", False),
    ]
    for job in [job for job in running if job.type == "u"]:
        await end(service, job, "complete")
    assert await leaves_of(store, workspace.id) == [], "no limit would take them"
    assert (await limits.get(workspace.id, "type:t")).running == 2
    for job in [job for job in running if job.type == "t"]:
        await end(service, job, "fail")
    await assert_counts_true(limits, store, workspace.id)
    assert (await limits.get(workspace.id, "type:t")).running == 0


async def test_the_last_limit_deleted_while_its_jobs_run_leaves_nothing_behind(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """A workspace whose last limit goes while its jobs run: however they end then, and a
    job started again by name (which no limit governs), nothing is written that a fold
    would have to discard, and a limit of the same name put later counts only the job
    still running."""
    limits = LimitService(store, service.work_signal)
    await limits.put(workspace.id, "k", max_running=5, rate=None, paused=False)
    specs = [JobSpec(type="t", concurrency_key="k", max_attempts=3)] * 4
    await service.create_jobs(workspace.id, specs, ACTOR)
    running = await claim(service, workspace.id, 4)
    await end(service, running[0], "fail")  # back to QUEUED, started limited
    await limits.delete(workspace.id, "k")
    assert await limited_flags(store, workspace.id) == {"k": {False}}
    await end(service, running[1], "complete")
    await end(service, running[2], "cancel")
    retried = await service.change_status(
        workspace.id, running[0].id, JobStatus.RUNNING, actor=ACTOR, worker_id="w"
    )
    assert retried.status == JobStatus.RUNNING
    assert await limited_flags(store, workspace.id) == {"k": {False}}, "started by name"
    await end(service, retried, "complete")
    assert await leaves_of(store, workspace.id) == []
    counts = await limits.put(workspace.id, "k", max_running=5, rate=None, paused=False)
    assert counts.running == 1, "running[3] still runs"
    await assert_counts_true(limits, store, workspace.id)
    await end(service, running[3], "complete")
    assert (await limits.get(workspace.id, "k")).running == 0


async def test_a_change_without_events_is_stored_on_both_databases(
    service: JobService, store: Store, workspace: Workspace
) -> None:
    """Every change on PostgreSQL is one statement with its events, none too: its answer
    is the job's columns alone (the shared `apply_change` also returns `limited`)."""
    [(job, _)] = await service.create_jobs(workspace.id, [JobSpec(type="t")], ACTOR)
    change = JobChange(
        job.id,
        expected_version=job.version,
        target=None,
        allowed_sources=frozenset({JobStatus.QUEUED}),
        values={"error": "noted"},
    )
    changed = await store.jobs.apply_change(workspace.id, change)
    assert changed is not None
    assert (changed.error, changed.version) == ("noted", job.version + 1)
