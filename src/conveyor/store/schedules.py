"""Schedules and their history of runs in the database.

The same code on both databases, with each one's queries (all in shared.sql). Every
change of a schedule is a compare-and-set: an update on the version it was decided on, a
tick's decision (`claim_tick`) on the version the scheduler read, the end of a firing on
the tick it fired; a write that misses answers None and the caller finds out why.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any
from uuid import UUID

from conveyor.domain.jobs import JobStatus
from conveyor.domain.schedules import (
    CatchUp,
    Overlap,
    RunOutcome,
    Schedule,
    ScheduledJob,
    ScheduleRun,
    SkipReason,
    TickDecision,
    run_outcome,
)
from conveyor.store.connection import Connection, Database, Json, Row
from conveyor.store.queries import queries_for

_STATUSES = {status.value: status for status in JobStatus}


class _RecordedAlready(Exception):
    """`record_trigger`'s job has its history entry: its transaction rolls back."""


class ScheduleStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.codec = database.codec
        self.queries = queries_for(database.dialect)

    # -- rows ----------------------------------------------------------------------------

    def _schedule(self, row: Row) -> Schedule:
        d = self.codec
        skip_reason = row["last_skip_reason"]
        return Schedule(
            id=d.uuid(row["id"]),
            workspace_id=d.uuid(row["workspace_id"]),
            name=row["name"],
            cron=row["cron"],
            timezone=row["timezone"],
            job=ScheduledJob(
                type=row["job_type"],
                payload=d.json(row["job_payload"]),
                priority=row["job_priority"],
                max_attempts=row["job_max_attempts"],
                timeout_seconds=d.optional_seconds(row["job_timeout_seconds"]),
                concurrency_key=row["job_concurrency_key"],
            ),
            overlap=Overlap(row["overlap"]),
            catch_up=CatchUp(row["catch_up"]),
            paused=bool(row["paused"]),
            next_run_at=d.optional_timestamp(row["next_run_at"]),
            last_run_at=d.optional_timestamp(row["last_run_at"]),
            last_job_id=d.optional_uuid(row["last_job_id"]),
            last_skipped_at=d.optional_timestamp(row["last_skipped_at"]),
            last_skip_reason=None if skip_reason is None else SkipReason(skip_reason),
            firing_tick=d.optional_timestamp(row["firing_tick"]),
            created_at=d.timestamp(row["created_at"]),
            updated_at=d.timestamp(row["updated_at"]),
            version=row["version"],
        )

    def _run(self, row: Row) -> ScheduleRun:
        d = self.codec
        status = row["job_status"]
        return ScheduleRun(
            id=row["id"],
            schedule_id=d.uuid(row["schedule_id"]),
            tick=d.optional_timestamp(row["tick"]),
            outcome=RunOutcome(row["outcome"]),
            job_id=d.optional_uuid(row["job_id"]),
            created_at=d.timestamp(row["created_at"]),
            job_status=None if status is None else _STATUSES[status].value,
        )

    @staticmethod
    def _definition(schedule: Schedule) -> dict[str, Any]:
        """The columns a client sets, as parameters."""
        job = schedule.job
        return {
            "id": schedule.id,
            "ws": schedule.workspace_id,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "job_type": job.type,
            "job_payload": Json(job.payload),
            "job_priority": job.priority,
            "job_max_attempts": job.max_attempts,
            "job_timeout_seconds": job.timeout_seconds,
            "job_concurrency_key": job.concurrency_key,
            "overlap": schedule.overlap.value,
            "catch_up": schedule.catch_up.value,
            "paused": schedule.paused,
            "next_run_at": schedule.next_run_at,
        }

    # -- a client's ------------------------------------------------------------------------

    async def insert_schedule(self, schedule: Schedule) -> Schedule | None:
        """None when the workspace already has a schedule of that name."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["insert_schedule"].sql,
                {**self._definition(schedule), "name": schedule.name},
            )
        return None if row is None else self._schedule(row)

    async def get_schedule(self, workspace_id: UUID, schedule_id: UUID) -> Schedule | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["get_schedule"].sql, {"id": schedule_id, "ws": workspace_id}
            )
        return None if row is None else self._schedule(row)

    async def schedule_by_name(self, workspace_id: UUID, name: str) -> Schedule | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["schedule_by_name"].sql, {"name": name, "ws": workspace_id}
            )
        return None if row is None else self._schedule(row)

    async def list_schedules(
        self, workspace_id: UUID, *, after: str | None, offset: int, limit: int
    ) -> tuple[list[Schedule], int]:
        """Up to `limit` schedules by name (those after the name `after`, or `offset` in),
        and how many the workspace has, read together."""
        q = self.queries
        params: dict[str, Any] = {"ws": workspace_id, "limit": limit, "offset": offset}
        if after is not None:
            params["after"] = after
        name = q.bytewise("name")
        statement = q["list_schedules"].compose(
            name=name,
            after="" if after is None else q["schedule_after_name"].compose(name=name),
        )
        async with self.database.read() as connection:
            rows = await connection.fetch(statement, params)
            total = await connection.fetchrow(q["count_schedules"].sql, {"ws": workspace_id})
        return [self._schedule(row) for row in rows], 0 if total is None else int(total["total"])

    async def update_schedule(self, schedule: Schedule) -> Schedule | None:
        """Store `schedule` (decided on its `version`); None if it changed since."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["update_schedule"].sql,
                {**self._definition(schedule), "version": schedule.version},
            )
        return None if row is None else self._schedule(row)

    async def delete_schedule(self, workspace_id: UUID, schedule_id: UUID) -> bool:
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["delete_schedule"].sql, {"id": schedule_id, "ws": workspace_id}
            )
        return row is not None

    async def record_trigger(self, schedule: Schedule, job_id: UUID, at: datetime) -> None:
        """A job made by hand ("run now") at `at`: the schedule's last run unless a later
        run is, and an entry in its history; once per job however often it is asked (the
        entry's unique index decides: a repeat rolls back). Nothing if the schedule is
        gone."""
        q = self.queries
        with contextlib.suppress(_RecordedAlready):
            async with self.database.transaction() as connection:
                found = await connection.fetchrow(
                    q["record_trigger"].compose(last_run=q["last_run"].sql),
                    {"id": schedule.id, "ws": schedule.workspace_id, "job_id": job_id, "at": at},
                )
                if found is None:
                    return
                entry = await connection.fetchrow(
                    q["insert_trigger_run"].sql,
                    {
                        "schedule_id": schedule.id,
                        "ws": schedule.workspace_id,
                        "outcome": RunOutcome.TRIGGERED.value,
                        "job_id": job_id,
                    },
                )
                if entry is None:
                    raise _RecordedAlready

    async def list_runs(
        self, workspace_id: UUID, schedule_id: UUID, *, before: int | None, limit: int
    ) -> list[ScheduleRun]:
        """Up to `limit` of the schedule's runs, newest first (those recorded before the
        run `before`, when given)."""
        q = self.queries
        params: dict[str, Any] = {"schedule_id": schedule_id, "ws": workspace_id, "limit": limit}
        if before is not None:
            params["before"] = before
        statement = q["list_schedule_runs"].compose(
            before="" if before is None else q["run_before_cursor"].sql
        )
        async with self.database.read() as connection:
            rows = await connection.fetch(statement, params)
        return [self._run(row) for row in rows]

    # -- the scheduler's -------------------------------------------------------------------

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["due_schedules"].sql, {"now": now, "limit": limit}
            )
        return [self._schedule(row) for row in rows]

    async def outlook(self) -> tuple[datetime | None, bool]:
        """The earliest next run of any schedule, and whether a firing is unfinished."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(self.queries["scheduler_outlook"].sql)
        assert row is not None
        return self.codec.optional_timestamp(row["next_run_at"]), bool(row["firing"])

    async def run_unfinished(self, schedule: Schedule) -> bool:
        """Whether the job of the schedule's last run, or of its last fired tick, has not
        finished (what `overlap: skip` waits for)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["run_unfinished"].sql,
                {
                    "id": schedule.id,
                    "ws": schedule.workspace_id,
                    "last_job_id": schedule.last_job_id,
                },
            )
        return row is not None and bool(row["unfinished"])

    async def claim_tick(self, schedule: Schedule, decision: TickDecision) -> Schedule | None:
        """Store a tick's decision if the schedule is still the version it was made on (so
        one server's decision counts per tick); a skip goes in the history at once, a tick
        to fire waits in `firing_tick` for its job. None if another server decided first
        or the schedule changed."""
        reason = decision.action.skip_reason
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                self.queries["claim_tick"].sql,
                {
                    "id": schedule.id,
                    "version": schedule.version,
                    "next_run_at": decision.next_run_at,
                    "firing_tick": None if reason is not None else decision.tick,
                    "skipped_at": None if reason is None else decision.tick,
                    "skip_reason": None if reason is None else reason.value,
                },
            )
            if row is None:
                return None
            if reason is not None:
                await self._insert_run(
                    connection, schedule, decision.tick, run_outcome(decision.action), None
                )
        return self._schedule(row)

    async def finish_firing(
        self, schedule: Schedule, tick: datetime, job_id: UUID
    ) -> Schedule | None:
        """The tick's job exists: clear the firing and record the run. None if another
        server finished it first (or the schedule is gone)."""
        async with self.database.transaction() as connection:
            q = self.queries
            row = await connection.fetchrow(
                q["finish_firing"].compose(last_run=q["last_run"].sql),
                {"id": schedule.id, "tick": tick, "at": tick, "job_id": job_id},
            )
            if row is None:
                return None
            await self._insert_run(connection, schedule, tick, RunOutcome.FIRED, job_id)
        return self._schedule(row)

    async def _insert_run(
        self,
        connection: Connection,
        schedule: Schedule,
        tick: datetime | None,
        outcome: RunOutcome,
        job_id: UUID | None,
    ) -> None:
        await connection.execute(
            self.queries["insert_schedule_run"].sql,
            {
                "schedule_id": schedule.id,
                "ws": schedule.workspace_id,
                "tick": tick,
                "outcome": outcome.value,
                "job_id": job_id,
            },
        )
