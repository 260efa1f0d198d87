"""Request and response shapes of the schedules API (see schemas.py for the conventions:
requests reject unknown fields; responses are built by `schedule_json` and described by
the `*Out` models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from conveyor.api.schemas import (
    JOB_TYPE,
    ConcurrencyKey,
    MaxAttempts,
    PageMeta,
    Patch,
    Priority,
    Strict,
    TimeoutSeconds,
    Version,
)
from conveyor.domain.jobs import PRIORITY_DEFAULT
from conveyor.domain.schedules import (
    CRON_MAX_LENGTH,
    DEFAULT_TIMEZONE,
    MANUAL_KEY_MAX_LENGTH,
    NULLABLE_JOB_FIELDS,
    TIMEZONE_MAX_LENGTH,
    CatchUp,
    Overlap,
    RunOutcome,
    Schedule,
    ScheduleRun,
    SkipReason,
)

SCHEDULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
CRON_DESCRIPTION = (
    "5 fields (minute hour day-of-month month day-of-week, as in crontab), or @yearly, "
    "@monthly, @weekly, @daily, @hourly"
)


class ScheduledJobIn(Strict):
    type: JOB_TYPE
    payload: Any = Field(default_factory=dict, description="each job's input")
    priority: Priority = PRIORITY_DEFAULT
    max_attempts: MaxAttempts = 1
    timeout_seconds: TimeoutSeconds | None = None
    concurrency_key: ConcurrencyKey | None = None


class CreateScheduleIn(Strict):
    name: str = Field(pattern=SCHEDULE_NAME, examples=["nightly-report"])
    cron: str = Field(
        min_length=1,
        max_length=CRON_MAX_LENGTH,
        description=CRON_DESCRIPTION,
        examples=["*/5 * * * *", "30 2 * * *", "@daily"],
    )
    timezone: str = Field(
        DEFAULT_TIMEZONE,
        min_length=1,
        max_length=TIMEZONE_MAX_LENGTH,
        description="an IANA time zone; the cron fields are wall-clock times there",
        examples=["Europe/Berlin"],
    )
    job: ScheduledJobIn
    overlap: Overlap = Field(
        Overlap.ALLOW, description="skip: skip a tick while the previous run is unfinished"
    )
    catch_up: CatchUp = Field(
        CatchUp.NONE,
        description="ticks missed while no server ran: none skips them, latest runs the "
        "most recent once",
    )
    paused: bool = Field(False, strict=True)


class ScheduledJobPatch(Patch):
    """The job's fields to change; those left out stay as they are."""

    nullable = NULLABLE_JOB_FIELDS

    type: JOB_TYPE | None = None
    payload: Any = None
    priority: Priority | None = None
    max_attempts: MaxAttempts | None = None
    timeout_seconds: TimeoutSeconds | None = None
    concurrency_key: ConcurrencyKey | None = None


class UpdateScheduleIn(Patch):
    """What to change; a field left out stays as it is. A new cron or time zone, or
    resuming, starts the ticks afresh from now. A change that changes nothing answers the
    schedule as it is, at its version."""

    nullable = frozenset({"expected_version"})

    cron: str | None = Field(None, min_length=1, max_length=CRON_MAX_LENGTH)
    timezone: str | None = Field(None, min_length=1, max_length=TIMEZONE_MAX_LENGTH)
    job: ScheduledJobPatch | None = None
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    paused: bool | None = Field(None, strict=True)
    expected_version: Version | None = Field(
        None, description="refuse (409) if the schedule is no longer at this version"
    )


class TriggerIn(Strict):
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=MANUAL_KEY_MAX_LENGTH,
        description="the same key again answers the job it made (200) instead of a new one",
    )


class ScheduledJobOut(BaseModel):
    type: str
    payload: Any
    priority: int
    max_attempts: int
    timeout_seconds: float | None
    concurrency_key: str | None


class ScheduleOut(BaseModel):
    id: UUID
    workspace_id: UUID
    name: str
    cron: str
    timezone: str
    job: ScheduledJobOut
    overlap: Overlap
    catch_up: CatchUp
    paused: bool
    next_run_at: datetime | None = Field(description="the next tick; null while paused")
    upcoming: list[datetime] = Field(description="the next few ticks, next_run_at first")
    last_run_at: datetime | None = Field(description="the tick (or trigger) of the last job")
    last_job_id: UUID | None
    last_skipped_at: datetime | None
    last_skip_reason: SkipReason | None
    created_at: datetime
    updated_at: datetime
    version: int


class ScheduleListOut(BaseModel):
    data: list[ScheduleOut]
    meta: PageMeta


class ScheduleRunOut(BaseModel):
    id: int
    tick: datetime | None = Field(description="null for a trigger")
    outcome: RunOutcome
    job_id: UUID | None
    job_status: str | None = Field(description="the job's status now; null if none or gone")
    created_at: datetime


class ScheduleRunPageMeta(BaseModel):
    limit: int
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null when nothing follows"
    )


class ScheduleRunListOut(BaseModel):
    schedule_id: UUID
    data: list[ScheduleRunOut]
    meta: ScheduleRunPageMeta


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    job = schedule.job
    return {
        "id": schedule.id,
        "workspace_id": schedule.workspace_id,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "job": {
            "type": job.type,
            "payload": job.payload,
            "priority": job.priority,
            "max_attempts": job.max_attempts,
            "timeout_seconds": job.timeout_seconds,
            "concurrency_key": job.concurrency_key,
        },
        "overlap": schedule.overlap.value,
        "catch_up": schedule.catch_up.value,
        "paused": schedule.paused,
        "next_run_at": schedule.next_run_at,
        "upcoming": schedule.upcoming(),
        "last_run_at": schedule.last_run_at,
        "last_job_id": schedule.last_job_id,
        "last_skipped_at": schedule.last_skipped_at,
        "last_skip_reason": None
        if schedule.last_skip_reason is None
        else schedule.last_skip_reason.value,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
        "version": schedule.version,
    }


def run_json(run: ScheduleRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "tick": run.tick,
        "outcome": run.outcome.value,
        "job_id": run.job_id,
        "job_status": run.job_status,
        "created_at": run.created_at,
    }
