"""Schedules: a client's use cases (create, read, change, delete, trigger) and the
scheduler's (fire what is due), on one store.

Each tick fires exactly once across any number of servers, each running the scheduler:

1. A server finds a schedule due and decides its tick (`decide_tick`: fire, or skip as
   missed or overlapping). It stores the decision as a compare-and-set on the schedule's
   version, moving `next_run_at` on (`claim_tick`): of several servers deciding the same
   tick, one wins; the others' writes miss and they move on. A tick to fire is left in
   `firing_tick`.
2. The winner creates the tick's job with the idempotency key `schedule:<id>:<tick>`:
   the database's unique index on keys lets one such job exist, ever.
3. It clears `firing_tick` and records the run (`finish_firing`, guarded by the tick).

A server that stops between 1 and 3 leaves `firing_tick` set; whichever server looks next
does 2 and 3 again, and the key makes the job creation a no-op if it had happened. So
the job is made at least once (the firing is redone until it is finished) and at most
once (the key): exactly once. A server that was down decides only the most recent due
tick when it is back (`catch_up`), never one per missed tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from conveyor.domain.errors import (
    OUTAGES,
    AlreadyExists,
    IdempotencyConflict,
    Resource,
    ScheduleConflict,
    ScheduleNotFound,
)
from conveyor.domain.jobs import Job
from conveyor.domain.limits import JsonLimits, validate_json, validate_text
from conveyor.domain.schedules import (
    DEFAULT_RUNS_LISTED,
    MAX_RUNS_LISTED,
    MAX_SCHEDULES_LISTED,
    Overlap,
    Schedule,
    ScheduleChanges,
    ScheduleCursor,
    ScheduleRun,
    ScheduleRunCursor,
    ScheduleSpec,
    TickAction,
    decide_tick,
    decide_update,
    id_in_reference,
    job_origin,
    manual_idempotency_key,
    new_schedule_next_run,
    schedule_actor,
    tick_idempotency_key,
)
from conveyor.ids import uuid7
from conveyor.service.jobs import JobService
from conveyor.service.reads import page_count
from conveyor.service.retry import RetryPolicy, WriteConflict, retry_on_conflict
from conveyor.store import Store

log = logging.getLogger("conveyor.schedules")


@dataclass(frozen=True, slots=True)
class SchedulePage:
    """A page of a workspace's schedules, by name."""

    schedules: list[Schedule]
    total: int
    page: int | None
    """The page number asked for; None when the page was asked for by cursor."""
    limit: int
    next_cursor: ScheduleCursor | None
    """Where the next page starts; None when no schedule follows this page."""
    total_is_estimate: bool = False
    """Always counted (a workspace's schedules are few): as a job list's page says it."""

    @property
    def total_pages(self) -> int:
        return page_count(self.total, self.limit)


@dataclass(frozen=True, slots=True)
class RunPage:
    """A page of a schedule's history, newest first. It has no total: a schedule that
    fires every minute and is kept forever records half a million runs a year, and a page
    costs the same however many there are."""

    schedule: Schedule
    runs: list[ScheduleRun]
    limit: int
    next_cursor: ScheduleRunCursor | None
    """Where the next (older) page starts; None when no run follows this page."""


class Clock(Protocol):
    """What the scheduler reads the time from (tests pass a clock they move by hand)."""

    async def now(self) -> datetime: ...


class ScheduleService:
    def __init__(
        self,
        store: Store,
        jobs: JobService,
        *,
        clock: Clock | None = None,
        limits: JsonLimits | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.schedules = store.schedules
        self.jobs = jobs
        # The database's clock by default: servers on several machines agree on when a
        # tick is due, as they do on when a lease ends.
        self.clock: Clock = clock or store.clock
        self.limits = limits or JsonLimits()
        self.retry_policy = retry_policy or RetryPolicy()
        self.on_change: Callable[[], None] | None = None
        """Told when a schedule is created or changed here: the local scheduler re-arms
        its timer (other servers look again within their recheck interval)."""

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- a client's ------------------------------------------------------------------------

    async def create_schedule(self, workspace_id: UUID, spec: ScheduleSpec) -> Schedule:
        rule = spec.validate()
        self._validate_job_values(spec.job.payload, spec.job.concurrency_key)
        now = await self.clock.now()
        schedule = Schedule(
            id=uuid7(),
            workspace_id=workspace_id,
            name=spec.name,
            cron=rule.expression,
            timezone=spec.timezone,
            job=spec.job,
            overlap=spec.overlap,
            catch_up=spec.catch_up,
            paused=spec.paused,
            next_run_at=new_schedule_next_run(spec, rule, now),
            last_run_at=None,
            last_job_id=None,
            last_skipped_at=None,
            last_skip_reason=None,
            firing_tick=None,
            created_at=now,
            updated_at=now,
            version=1,
        )
        stored = await self.schedules.insert_schedule(schedule)
        if stored is None:
            raise AlreadyExists(Resource.SCHEDULE, spec.name)
        self._changed()
        return stored

    def _validate_job_values(self, payload: object, concurrency_key: str | None) -> None:
        validate_json(payload, "job.payload", self.limits)
        if concurrency_key is not None:
            validate_text(concurrency_key, "job.concurrency_key")

    async def get_schedule(self, workspace_id: UUID, reference: str) -> Schedule:
        """By id, or by name."""
        by_id = id_in_reference(reference)
        found = None
        if by_id is not None:
            found = await self.schedules.get_schedule(workspace_id, by_id)
        if found is None:
            found = await self.schedules.schedule_by_name(workspace_id, reference)
        if found is None:
            raise ScheduleNotFound(reference)
        return found

    async def list_schedules(
        self,
        workspace_id: UUID,
        *,
        page: int = 1,
        limit: int = MAX_SCHEDULES_LISTED,
        cursor: ScheduleCursor | None = None,
    ) -> SchedulePage:
        """A page of the schedules, by name: the `page`-th, or the one after `cursor` (which
        stays put while schedules are created and deleted; an offset does not). One more
        than the page is read, so `next_cursor` is given only when a schedule follows."""
        limit = max(1, min(limit, MAX_SCHEDULES_LISTED))
        page = max(1, page)
        found, total = await self.schedules.list_schedules(
            workspace_id,
            after=None if cursor is None else cursor.name,
            offset=0 if cursor is not None else (page - 1) * limit,
            limit=limit + 1,
        )
        shown = found[:limit]
        return SchedulePage(
            shown,
            total,
            None if cursor is not None else page,
            limit,
            next_cursor=ScheduleCursor(shown[-1].name) if len(found) > limit else None,
        )

    async def update_schedule(
        self,
        workspace_id: UUID,
        reference: str,
        changes: ScheduleChanges,
        *,
        expected_version: int | None = None,
    ) -> Schedule:
        """Decide on a fresh read, compare-and-set on its version, again while the
        scheduler (or another client) wins the race. Changes that change nothing store
        nothing: the schedule comes back as it is, at its version."""
        if changes.job is not None:
            current = await self.get_schedule(workspace_id, reference)
            self._validate_job_values(
                changes.job.get("payload", current.job.payload),
                changes.job.get("concurrency_key", current.job.concurrency_key),
            )

        async def attempt() -> tuple[Schedule, bool]:
            schedule = await self.get_schedule(workspace_id, reference)
            if expected_version is not None and schedule.version != expected_version:
                raise ScheduleConflict(
                    schedule.id,
                    expected_version=expected_version,
                    current_version=schedule.version,
                )
            updated = decide_update(schedule, changes, await self.clock.now())
            if updated is None:
                return schedule, False
            stored = await self.schedules.update_schedule(updated)
            if stored is None:
                raise WriteConflict(schedule.id)
            return stored, True

        try:
            stored, changed = await retry_on_conflict(attempt, self.retry_policy)
        except WriteConflict:
            current = await self.get_schedule(workspace_id, reference)
            raise ScheduleConflict(
                current.id, expected_version=expected_version, current_version=current.version
            ) from None
        if changed:
            self._changed()
        return stored

    async def delete_schedule(self, workspace_id: UUID, reference: str) -> Schedule:
        """Delete it (with its history; the jobs it made stay). It fires no more: a tick
        being fired at this very moment elsewhere may still make its one job."""
        schedule = await self.get_schedule(workspace_id, reference)
        if not await self.schedules.delete_schedule(workspace_id, schedule.id):
            raise ScheduleNotFound(reference)
        self._changed()
        return schedule

    async def trigger(
        self, workspace_id: UUID, reference: str, actor: str, token: str | None = None
    ) -> tuple[Job, bool]:
        """Run now: a job at once, besides the ticks (paused or not, overlapping or not).
        Its key is `schedule:<id>:manual:<token>`: the caller's token makes a retried
        request return the same job (recorded once in the schedule's history); without
        one, every trigger makes a new job."""
        schedule = await self.get_schedule(workspace_id, reference)
        if token is not None:
            validate_text(token, "idempotency_key")
        key = manual_idempotency_key(schedule.id, token or uuid7().hex)
        spec = schedule.job.spec(idempotency_key=key, origin=job_origin(schedule, None))
        try:
            job, created = await self.jobs.create_job(workspace_id, spec, actor, server_key=True)
        except IdempotencyConflict as existing:
            # Made by an earlier attempt, before the schedule's job was changed: the
            # retry answers that job (as `_fire` takes a tick's).
            job, created = await self.jobs.get_job(workspace_id, existing.job_id), False
        # Recorded on every attempt, not only the one that made the job: a server that
        # stopped between the two left it unrecorded, and the caller's retry records it.
        await self.schedules.record_trigger(schedule, job.id, job.created_at)
        return job, created

    async def list_runs(
        self,
        workspace_id: UUID,
        reference: str,
        *,
        limit: int = DEFAULT_RUNS_LISTED,
        cursor: ScheduleRunCursor | None = None,
    ) -> RunPage:
        """A page of the schedule's history, newest first: the first, or the one after
        `cursor` (runs recorded meanwhile never shift it). One more than the page is read,
        so `next_cursor` is given only when a run follows. A cursor of another schedule's
        history is refused (InvalidInput naming `cursor`)."""
        schedule = await self.get_schedule(workspace_id, reference)
        if cursor is not None:
            cursor.check_list(schedule.id)
        limit = max(1, min(limit, MAX_RUNS_LISTED))
        found = await self.schedules.list_runs(
            workspace_id,
            schedule.id,
            before=None if cursor is None else cursor.run_id,
            limit=limit + 1,
        )
        shown = found[:limit]
        following = len(found) > limit
        return RunPage(
            schedule,
            shown,
            limit,
            next_cursor=ScheduleRunCursor(schedule.id, shown[-1].id) if following else None,
        )

    # -- the scheduler's -------------------------------------------------------------------

    async def run_due(self, now: datetime, limit: int = 100) -> int:
        """Decide (and fire) what is due at `now`, up to `limit` schedules. Returns on how
        many this server made progress (decided a tick, finished a firing)."""
        progress = 0
        for schedule in await self.schedules.due_schedules(now, limit):
            try:
                progress += await self._advance(schedule, now)
            except OUTAGES:
                raise
            except Exception:
                log.exception(
                    "schedule %s (%s): tick failed; will try again", schedule.id, schedule.name
                )
        return progress

    async def outlook(self) -> tuple[datetime | None, bool]:
        """The earliest next run of any schedule, and whether a firing is unfinished."""
        return await self.schedules.outlook()

    async def _advance(self, schedule: Schedule, now: datetime) -> int:
        if schedule.firing_tick is not None:
            # Decided, but its job may not exist yet: its server stopped, or is on it now.
            return await self._fire(schedule, schedule.firing_tick)
        unfinished = False
        if schedule.overlap == Overlap.SKIP and schedule.last_job_id is not None:
            unfinished = await self.schedules.run_unfinished(schedule)
        decision = decide_tick(schedule, now, previous_run_unfinished=unfinished)
        if decision is None:
            return 0
        claimed = await self.schedules.claim_tick(schedule, decision)
        if claimed is None:
            return 0  # another server decided this tick, or the schedule just changed
        if decision.action != TickAction.FIRE:
            log.info(
                "schedule %s (%s): tick %s skipped (%s)",
                schedule.id,
                schedule.name,
                decision.tick.isoformat(),
                decision.action.skip_reason,
            )
            return 1
        return 1 + await self._fire(claimed, decision.tick)

    async def _fire(self, schedule: Schedule, tick: datetime) -> int:
        key = tick_idempotency_key(schedule.id, tick)
        spec = schedule.job.spec(idempotency_key=key, origin=job_origin(schedule, tick))
        try:
            job, _ = await self.jobs.create_job(
                schedule.workspace_id, spec, schedule_actor(schedule.id), server_key=True
            )
            job_id = job.id
        except IdempotencyConflict as existing:
            # Made already, before the schedule's job was changed: it is the tick's job.
            job_id = existing.job_id
        finished = await self.schedules.finish_firing(schedule, tick, job_id)
        return 0 if finished is None else 1
