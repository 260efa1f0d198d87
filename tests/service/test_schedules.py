"""Schedules on both stores, with a clock the test moves: each tick fires once however
many schedulers race for it, a firing left half done is finished by whoever looks next,
and overlap, catch-up, pause, trigger, delete and DST behave as documented."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.errors import AlreadyExists, InvalidInput, ScheduleConflict, ScheduleNotFound
from conveyor.domain.job_lists import JobFilter
from conveyor.domain.jobs import Job, JobSpec, JobStatus
from conveyor.domain.schedules import (
    CatchUp,
    Overlap,
    RunOutcome,
    Schedule,
    ScheduleChanges,
    ScheduledJob,
    ScheduleSpec,
    decide_tick,
    job_origin,
    manual_idempotency_key,
    tick_idempotency_key,
)
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.service.schedules import ScheduleService
from conveyor.store import Store, open_store
from conveyor.store.urls import DatabaseURL
from tests.service.helpers import ACTOR
from tests.support.clock import FakeClock

START = datetime(2026, 12, 5, 10, 2, tzinfo=UTC)
SCHEDULERS = 4


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def schedules(service: JobService, clock: FakeClock) -> ScheduleService:
    return ScheduleService(service.store, service, clock=clock)


@pytest.fixture
async def racing(
    database_url: DatabaseURL, schedules: ScheduleService, clock: FakeClock
) -> AsyncIterator[list[ScheduleService]]:
    """Several schedulers, each on its own store (own connections), one clock: servers."""
    extra: list[Store] = []
    for _ in range(SCHEDULERS - 1):
        extra.append(await open_store(database_url, sqlite_synchronous="NORMAL", pool_size=10))
    yield [schedules, *(ScheduleService(s, JobService(s), clock=clock) for s in extra)]
    for store in extra:
        await store.close()


async def create(
    schedules: ScheduleService, workspace: Workspace, cron: str = "*/5 * * * *", **options: object
) -> Schedule:
    spec = ScheduleSpec(
        name=str(options.pop("name", "report")),
        cron=cron,
        job=ScheduledJob(type="report.build", payload={"kind": "daily"}),
        **options,  # type: ignore[arg-type]
    )
    return await schedules.create_schedule(workspace.id, spec)


async def jobs_of(service: JobService, workspace: Workspace, schedule: Schedule) -> list[Job]:
    page = await service.list_jobs(workspace.id, JobFilter(), page=1, limit=200)
    prefix = f"schedule:{schedule.id}:"
    made = [job for job in page.jobs if (job.idempotency_key or "").startswith(prefix)]
    return sorted(made, key=lambda job: job.idempotency_key or "")


async def tick(schedules: ScheduleService, clock: FakeClock, moment: datetime) -> int:
    clock.set(moment)
    return await schedules.run_due(moment)


# -- firing ------------------------------------------------------------------------------------


async def test_a_due_tick_makes_one_job_keyed_by_tick_and_named_in_its_created_event(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace)
    assert schedule.next_run_at == at("2026-12-05 10:05")
    assert await tick(schedules, clock, at("2026-12-05 10:04:59")) == 0
    assert await jobs_of(service, workspace, schedule) == []

    await tick(schedules, clock, at("2026-12-05 10:05:00.003"))
    await tick(schedules, clock, at("2026-12-05 10:05:01"))  # again: nothing more
    [job] = await jobs_of(service, workspace, schedule)
    assert job.idempotency_key == f"schedule:{schedule.id}:2026-12-05T10:05:00Z"
    assert (job.type, job.payload, job.status) == (
        "report.build",
        {"kind": "daily"},
        JobStatus.QUEUED,
    )
    created = (await service.list_events(workspace.id, job.id, after_seq=0))[0]
    assert created.type == "job.created"
    assert created.actor == f"schedule:{schedule.id}"
    assert created.payload["schedule_id"] == str(schedule.id)
    assert created.payload["schedule"] == "report"
    assert created.payload["tick"] == "2026-12-05T10:05:00Z"

    after = await schedules.get_schedule(workspace.id, "report")
    assert after.next_run_at == at("2026-12-05 10:10")
    assert (after.last_run_at, after.last_job_id, after.firing_tick) == (
        at("2026-12-05 10:05"),
        job.id,
        None,
    )
    [run] = (await schedules.list_runs(workspace.id, str(schedule.id))).runs
    assert (run.tick, run.outcome, run.job_id, run.job_status) == (
        at("2026-12-05 10:05"),
        RunOutcome.FIRED,
        job.id,
        "QUEUED",
    )


async def test_a_client_cannot_take_a_ticks_key_before_the_tick_fires(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    """Else the scheduler would find the client's job under the key and record the tick as
    fired with it: another type and payload, and the schedule's own job never run."""
    schedule = await create(schedules, workspace)
    tick_key = tick_idempotency_key(schedule.id, at("2026-12-05 10:05"))
    manual_key = manual_idempotency_key(schedule.id, "click")
    for key in (tick_key, manual_key):
        squatter = JobSpec(type="other", payload={"mine": True}, idempotency_key=key)
        with pytest.raises(InvalidInput, match="scheduler's") as refused:
            await service.create_job(workspace.id, squatter, ACTOR)
        assert refused.value.field == "idempotency_key"
        with pytest.raises(InvalidInput) as refused:
            await service.create_jobs(workspace.id, [JobSpec(type="other"), squatter], ACTOR)
        assert refused.value.field == "jobs.1.idempotency_key"
    assert (await service.list_jobs(workspace.id, JobFilter(), page=1, limit=10)).jobs == []

    await tick(schedules, clock, at("2026-12-05 10:05:00.003"))
    [job] = await jobs_of(service, workspace, schedule)
    assert (job.idempotency_key, job.type, job.payload) == (
        tick_key,
        "report.build",
        {"kind": "daily"},
    )
    [run] = (await schedules.list_runs(workspace.id, str(schedule.id))).runs
    assert (run.outcome, run.job_id) == (RunOutcome.FIRED, job.id)
    triggered, created = await schedules.trigger(workspace.id, schedule.name, ACTOR, "click")
    assert (triggered.idempotency_key, triggered.type, created) == (
        manual_key,
        "report.build",
        True,
    )


async def test_racing_schedulers_fire_each_tick_exactly_once(
    service: JobService,
    racing: list[ScheduleService],
    clock: FakeClock,
    workspace: Workspace,
) -> None:
    schedules = [
        await create(racing[0], workspace, name=f"every-{n}", cron=cron)
        for n, cron in enumerate(["* * * * *", "*/2 * * * *", "*/5 * * * *"])
    ]
    moment = START
    for _ in range(10):
        moment = clock.advance(minutes=1)
        # Every scheduler looks at once, as several servers woken by the same tick would.
        await asyncio.gather(*(scheduler.run_due(moment) for scheduler in racing))
    expected = {
        "every-0": [START + timedelta(minutes=m) for m in range(1, 11)],
        "every-1": [at(f"2026-12-05 10:{m:02}") for m in range(4, 13, 2)],
        "every-2": [at("2026-12-05 10:05"), at("2026-12-05 10:10")],
    }
    for schedule in schedules:
        made = await jobs_of(service, workspace, schedule)
        assert [job.idempotency_key for job in made] == [
            tick_idempotency_key(schedule.id, t) for t in expected[schedule.name]
        ], schedule.name
        for job in made:
            events = await service.list_events(workspace.id, job.id, after_seq=0)
            assert [e.type for e in events] == ["job.created", "job.queued"]
        runs = (await racing[0].list_runs(workspace.id, schedule.name, limit=100)).runs
        assert sorted(run.tick for run in runs if run.tick) == expected[schedule.name]
        assert {run.outcome for run in runs} == {RunOutcome.FIRED}


async def test_a_firing_left_half_done_is_finished_once_by_whoever_looks_next(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace)
    clock.set(at("2026-12-05 10:05:00.5"))
    # A server decides the tick and stops before creating its job.
    decision = decide_tick(schedule, clock.moment, previous_run_unfinished=False)
    assert decision is not None
    claimed = await schedules.schedules.claim_tick(schedule, decision)
    assert claimed is not None
    assert claimed.firing_tick == at("2026-12-05 10:05")
    # Whoever looks next (even once the tick is long past) makes the job.
    await tick(schedules, clock, at("2026-12-05 10:07"))
    [job] = await jobs_of(service, workspace, schedule)
    assert job.idempotency_key == tick_idempotency_key(schedule.id, at("2026-12-05 10:05"))
    after = await schedules.get_schedule(workspace.id, schedule.name)
    assert (after.firing_tick, after.last_job_id) == (None, job.id)

    # Another stops after creating the job, before finishing: nothing is made twice.
    clock.set(at("2026-12-05 10:10:00.1"))
    decision = decide_tick(after, clock.moment, previous_run_unfinished=False)
    assert decision is not None
    claimed = await schedules.schedules.claim_tick(after, decision)
    assert claimed is not None
    tick_key = tick_idempotency_key(schedule.id, at("2026-12-05 10:10"))
    made, _ = await service.create_job(
        workspace.id, after.job.spec(idempotency_key=tick_key), ACTOR, server_key=True
    )
    await tick(schedules, clock, at("2026-12-05 10:10:02"))
    jobs = await jobs_of(service, workspace, schedule)
    assert [j.idempotency_key for j in jobs][-1] == tick_key
    assert len(jobs) == 2
    finished = await schedules.get_schedule(workspace.id, schedule.name)
    assert (finished.firing_tick, finished.last_job_id) == (None, made.id)


# -- overlap, catch-up, pause ----------------------------------------------------------------


async def test_overlap_skip_skips_ticks_while_the_previous_run_is_unfinished(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace, overlap=Overlap.SKIP)
    await tick(schedules, clock, at("2026-12-05 10:05"))
    [first] = await jobs_of(service, workspace, schedule)
    await tick(schedules, clock, at("2026-12-05 10:10"))  # first still QUEUED: skipped
    assert await jobs_of(service, workspace, schedule) == [first]
    skipped = await schedules.get_schedule(workspace.id, schedule.name)
    assert (skipped.last_skipped_at, skipped.last_skip_reason) == (
        at("2026-12-05 10:10"),
        "overlap",
    )
    assert skipped.next_run_at == at("2026-12-05 10:15")

    await service.cancel_job(workspace.id, first.id, ACTOR)
    await tick(schedules, clock, at("2026-12-05 10:15"))
    made = await jobs_of(service, workspace, schedule)
    assert len(made) == 2
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert [(run.tick, run.outcome) for run in runs] == [
        (at("2026-12-05 10:15"), RunOutcome.FIRED),
        (at("2026-12-05 10:10"), RunOutcome.SKIPPED_OVERLAP),
        (at("2026-12-05 10:05"), RunOutcome.FIRED),
    ]
    assert runs[2].job_status == "CANCELLED"


async def test_overlap_allow_fires_whatever_the_previous_run_does(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace, overlap=Overlap.ALLOW)
    await tick(schedules, clock, at("2026-12-05 10:05"))
    await tick(schedules, clock, at("2026-12-05 10:10"))
    assert len(await jobs_of(service, workspace, schedule)) == 2


@pytest.mark.parametrize("catch_up", [CatchUp.NONE, CatchUp.LATEST])
async def test_after_downtime_no_storm_none_skips_and_latest_runs_the_last_tick_once(
    service: JobService,
    schedules: ScheduleService,
    clock: FakeClock,
    workspace: Workspace,
    catch_up: CatchUp,
) -> None:
    schedule = await create(schedules, workspace, catch_up=catch_up)
    await tick(schedules, clock, at("2026-12-05 10:05"))
    # No server runs for three hours (36 ticks), then one comes back.
    await tick(schedules, clock, at("2026-12-05 13:07"))
    await tick(schedules, clock, at("2026-12-05 13:07:30"))
    made = await jobs_of(service, workspace, schedule)
    keys = [job.idempotency_key for job in made]
    first = tick_idempotency_key(schedule.id, at("2026-12-05 10:05"))
    latest = tick_idempotency_key(schedule.id, at("2026-12-05 13:05"))
    assert keys == ([first] if catch_up == CatchUp.NONE else [first, latest])
    after = await schedules.get_schedule(workspace.id, schedule.name)
    assert after.next_run_at == at("2026-12-05 13:10")
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    expected = RunOutcome.MISSED if catch_up == CatchUp.NONE else RunOutcome.FIRED
    assert next((run.tick, run.outcome) for run in runs) == (at("2026-12-05 13:05"), expected)
    assert len(runs) == 2


async def test_a_paused_schedule_fires_nothing_and_resumes_from_now(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace, catch_up=CatchUp.LATEST)
    paused = await schedules.update_schedule(
        workspace.id, schedule.name, ScheduleChanges(paused=True)
    )
    assert (paused.paused, paused.next_run_at) == (True, None)
    for minute in (5, 10, 15):
        await tick(schedules, clock, at(f"2026-12-05 10:{minute:02}"))
    assert await jobs_of(service, workspace, schedule) == []
    clock.set(at("2026-12-05 10:17"))
    resumed = await schedules.update_schedule(
        workspace.id, schedule.name, ScheduleChanges(paused=False)
    )
    assert resumed.next_run_at == at("2026-12-05 10:20")  # nothing missed while paused fires
    await tick(schedules, clock, at("2026-12-05 10:17:30"))
    assert await jobs_of(service, workspace, schedule) == []
    await tick(schedules, clock, at("2026-12-05 10:20"))
    assert len(await jobs_of(service, workspace, schedule)) == 1


created_for_dst: dict[str, list[str]] = {
    "Europe/Berlin": ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
    "America/New_York": ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
}


@pytest.mark.parametrize("zone", sorted(created_for_dst))
async def test_spring_forward_a_0230_daily_fires_once_a_day_across_the_gap(
    service: JobService,
    schedules: ScheduleService,
    clock: FakeClock,
    workspace: Workspace,
    zone: str,
) -> None:
    clock.set(datetime.fromisoformat(created_for_dst[zone][0]) - timedelta(hours=12))
    schedule = await create(schedules, workspace, cron="30 2 * * *", timezone=zone)
    # A scheduler looking every 10 minutes for three days.
    moment = clock.moment
    for _ in range(3 * 24 * 6):
        moment += timedelta(minutes=10)
        await tick(schedules, clock, moment)
    made = await jobs_of(service, workspace, schedule)
    assert [job.idempotency_key for job in made] == [
        f"schedule:{schedule.id}:{text}" for text in created_for_dst[zone]
    ]


async def test_fall_back_in_new_york_a_0130_daily_fires_once_not_twice(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    clock.set(at("2026-10-31 12:00"))
    schedule = await create(schedules, workspace, cron="30 1 * * *", timezone="America/New_York")
    moment = clock.moment
    for _ in range(2 * 24 * 12):  # every 5 minutes for two days
        moment += timedelta(minutes=5)
        await tick(schedules, clock, moment)
    made = await jobs_of(service, workspace, schedule)
    # 01:30 EDT (05:30Z) on the night of the change; the second 01:30 (06:30Z) is not a
    # tick; the next night's 01:30 is EST.
    assert [job.idempotency_key for job in made] == [
        f"schedule:{schedule.id}:2026-11-01T05:30:00Z",
        f"schedule:{schedule.id}:2026-11-02T06:30:00Z",
    ]


# -- a client's use cases ----------------------------------------------------------------------


async def test_trigger_runs_now_even_paused_and_a_repeated_key_answers_the_same_job(
    service: JobService, schedules: ScheduleService, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace, paused=True)
    job, created = await schedules.trigger(workspace.id, schedule.name, ACTOR)
    assert created
    assert (job.idempotency_key or "").startswith(f"schedule:{schedule.id}:manual:")
    created_event = (await service.list_events(workspace.id, job.id, after_seq=0))[0]
    assert created_event.payload["tick"] is None
    assert created_event.payload["manual"] is True
    assert created_event.actor == ACTOR
    again, created_again = await schedules.trigger(workspace.id, str(schedule.id), ACTOR)
    assert created_again
    assert again.id != job.id
    keyed, _ = await schedules.trigger(workspace.id, schedule.name, ACTOR, "click-1")
    repeat, repeated_created = await schedules.trigger(
        workspace.id, schedule.name, ACTOR, "click-1"
    )
    assert (repeat.id, repeated_created) == (keyed.id, False)
    after = await schedules.get_schedule(workspace.id, schedule.name)
    assert after.last_job_id == keyed.id
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert [run.outcome for run in runs] == [RunOutcome.TRIGGERED] * 3


def manual_spec(schedule: Schedule, token: str) -> JobSpec:
    """The job a trigger with `token` makes, as the trigger words it."""
    return schedule.job.spec(
        idempotency_key=manual_idempotency_key(schedule.id, token),
        origin=job_origin(schedule, None),
    )


async def test_a_trigger_retried_after_its_job_was_made_records_it_once(
    service: JobService, schedules: ScheduleService, workspace: Workspace
) -> None:
    """A server that stopped after a trigger's job was created, before it was recorded:
    the caller's retry (same token) finds the job and records it; a retry after that
    changes nothing; a job recorded late does not displace a later last run; and a retry
    after the schedule's job was changed answers (and records) the job made before."""
    schedule = await create(schedules, workspace, paused=True)
    made, _ = await service.create_job(
        workspace.id, manual_spec(schedule, "click-1"), ACTOR, server_key=True
    )
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert runs == [], "the server stopped before recording"
    retried, created = await schedules.trigger(workspace.id, schedule.name, ACTOR, "click-1")
    assert (retried.id, created) == (made.id, False)
    recorded = await schedules.get_schedule(workspace.id, schedule.name)
    assert (recorded.last_job_id, recorded.version) == (made.id, schedule.version + 1)
    await schedules.trigger(workspace.id, schedule.name, ACTOR, "click-1")
    again = await schedules.get_schedule(workspace.id, schedule.name)
    assert again.version == recorded.version, "a retry of a recorded trigger changes nothing"
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert [(run.outcome, run.job_id) for run in runs] == [(RunOutcome.TRIGGERED, made.id)]

    stranded, _ = await service.create_job(
        workspace.id, manual_spec(schedule, "click-2"), ACTOR, server_key=True
    )
    newer, _ = await schedules.trigger(workspace.id, schedule.name, ACTOR, "click-3")
    late, created = await schedules.trigger(workspace.id, schedule.name, ACTOR, "click-2")
    assert (late.id, created) == (stranded.id, False)
    after = await schedules.get_schedule(workspace.id, schedule.name)
    assert (after.last_job_id, after.last_run_at) == (newer.id, newer.created_at)
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert [run.job_id for run in runs] == [stranded.id, newer.id, made.id], "as recorded"

    before_change, _ = await service.create_job(
        workspace.id, manual_spec(schedule, "click-4"), ACTOR, server_key=True
    )
    await schedules.update_schedule(
        workspace.id,
        schedule.name,
        ScheduleChanges(job={"payload": {"kind": "weekly"}}),
    )
    answered, created = await schedules.trigger(workspace.id, schedule.name, ACTOR, "click-4")
    assert (answered.id, answered.payload, created) == (before_change.id, {"kind": "daily"}, False)
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert runs[0].job_id == before_change.id


async def test_two_retries_of_a_trigger_at_once_record_it_once(
    service: JobService, schedules: ScheduleService, workspace: Workspace, backend: str
) -> None:
    """PostgreSQL, two connections: both retries find the job unrecorded and wait on the
    schedule's row; the one that gets it second finds the history entry and rolls back."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: its transactions never interleave")
    schedule = await create(schedules, workspace, paused=True)
    made, _ = await service.create_job(
        workspace.id, manual_spec(schedule, "click"), ACTOR, server_key=True
    )
    store = schedules.schedules
    async with service.store.database.transaction() as holder:
        await holder.execute(
            "SELECT id FROM schedules WHERE id = :id FOR UPDATE", {"id": schedule.id}
        )
        retries = [
            asyncio.create_task(store.record_trigger(schedule, made.id, made.created_at))
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)  # both wait on the row
        assert not any(retry.done() for retry in retries)
    await asyncio.wait_for(asyncio.gather(*retries), 10)
    after = await schedules.get_schedule(workspace.id, schedule.name)
    assert (after.last_job_id, after.version) == (made.id, schedule.version + 1)
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert [run.job_id for run in runs] == [made.id]


async def test_a_firing_finished_late_does_not_displace_a_later_trigger_nor_overlap(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    """A tick decided, its server stopped; a trigger; then the firing finished by another
    server: the trigger's job stays the last run, and `overlap: skip` still waits for the
    tick's job, which is not."""
    schedule = await create(schedules, workspace, overlap=Overlap.SKIP)
    clock.set(at("2026-12-05 10:05:00.5"))
    decision = decide_tick(schedule, clock.moment, previous_run_unfinished=False)
    assert decision is not None
    claimed = await schedules.schedules.claim_tick(schedule, decision)
    assert claimed is not None  # and its server stopped before firing
    assert claimed.firing_tick is not None
    triggered, _ = await schedules.trigger(workspace.id, schedule.name, ACTOR)
    # The trigger's job is stamped by the database's clock, the tick by the test's.
    assert triggered.created_at > claimed.firing_tick
    await tick(schedules, clock, at("2026-12-05 10:06"))  # the firing finished late
    after = await schedules.get_schedule(workspace.id, schedule.name)
    assert after.firing_tick is None
    assert (after.last_job_id, after.last_run_at) == (triggered.id, triggered.created_at)
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert {run.outcome for run in runs} == {RunOutcome.FIRED, RunOutcome.TRIGGERED}

    await service.cancel_job(workspace.id, triggered.id, ACTOR)  # the tick's job still waits
    await tick(schedules, clock, at("2026-12-05 10:10:00.5"))
    runs = (await schedules.list_runs(workspace.id, schedule.name)).runs
    assert (runs[0].tick, runs[0].outcome) == (at("2026-12-05 10:10"), RunOutcome.SKIPPED_OVERLAP)


async def test_a_deleted_schedule_fires_no_more(
    service: JobService, schedules: ScheduleService, clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace)
    await tick(schedules, clock, at("2026-12-05 10:05"))
    deleted = await schedules.delete_schedule(workspace.id, schedule.name)
    assert deleted.id == schedule.id
    await tick(schedules, clock, at("2026-12-05 10:10"))
    await tick(schedules, clock, at("2026-12-05 10:15"))
    assert len(await jobs_of(service, workspace, schedule)) == 1  # the job it made stays
    assert await schedules.schedules.outlook() == (None, False)
    with pytest.raises(ScheduleNotFound):
        await schedules.get_schedule(workspace.id, schedule.name)
    with pytest.raises(ScheduleNotFound):
        await schedules.delete_schedule(workspace.id, str(schedule.id))


async def test_names_are_unique_per_workspace_and_invalid_input_names_its_field(
    schedules: ScheduleService, workspace: Workspace, store: Store
) -> None:
    from conveyor.service.workspaces import WorkspaceService

    await create(schedules, workspace)
    with pytest.raises(AlreadyExists):
        await create(schedules, workspace)
    other = await WorkspaceService(store).create_workspace("other")
    await create(schedules, other)  # the same name in another workspace is another schedule
    for options, field in [
        ({"cron": "99 * * * *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"name": "no spaces"}, "name"),
    ]:
        cron = str(options.pop("cron", "@daily"))
        with pytest.raises(InvalidInput) as refused:
            await create(schedules, workspace, cron=cron, **{"name": "x", **options})
        assert refused.value.field == field


async def test_a_change_on_a_stale_version_is_refused_with_the_current_one(
    schedules: ScheduleService, workspace: Workspace
) -> None:
    schedule = await create(schedules, workspace)
    changed = await schedules.update_schedule(
        workspace.id, schedule.name, ScheduleChanges(cron="@hourly"), expected_version=1
    )
    assert (changed.version, changed.cron) == (2, "@hourly")
    with pytest.raises(ScheduleConflict) as refused:
        await schedules.update_schedule(
            workspace.id, schedule.name, ScheduleChanges(cron="@daily"), expected_version=1
        )
    assert refused.value.current_version == 2


async def test_changes_racing_the_schedulers_are_all_stored(
    racing: list[ScheduleService], clock: FakeClock, workspace: Workspace
) -> None:
    schedule = await create(racing[0], workspace, cron="* * * * *")

    async def edit(priority: int) -> None:
        await racing[priority % SCHEDULERS].update_schedule(
            workspace.id, schedule.name, ScheduleChanges(job={"priority": priority})
        )

    moment = clock.advance(minutes=1)
    await asyncio.gather(
        *(scheduler.run_due(moment) for scheduler in racing),
        # Each a priority of its own, none the schedule's (5): each edit changes it.
        *(edit(p) for p in (1, 2, 3, 4, 6, 7, 8, 9)),
    )
    # Every scheduler may lose its tick to the edits (`claim_tick` on a changed version
    # decides nothing); the loop looks again (`Scheduler.run_once`), and fires it once.
    await racing[0].run_due(moment)
    final = await racing[0].get_schedule(workspace.id, schedule.name)
    assert final.version == 1 + 8 + 2  # eight edits, one tick decided and finished
    assert final.next_run_at == at("2026-12-05 10:04")
