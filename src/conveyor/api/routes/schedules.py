"""Schedules: cron rules that create jobs (read by any key; created, changed, triggered
and deleted by client and admin keys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized
from conveyor.api.paging import (
    Cursor,
    PageNumber,
    cursor_page_meta,
    one_way_to_page,
    page_meta,
)
from conveyor.api.responses import json_response
from conveyor.api.schedule_schemas import (
    CreateScheduleIn,
    ScheduleListOut,
    ScheduleOut,
    ScheduleRunListOut,
    TriggerIn,
    UpdateScheduleIn,
    run_json,
    schedule_json,
)
from conveyor.api.schemas import JobOut, ProblemOut, job_json
from conveyor.domain.schedules import (
    DEFAULT_RUNS_LISTED,
    MAX_RUNS_LISTED,
    MAX_SCHEDULES_LISTED,
    ScheduleChanges,
    ScheduleCursor,
    ScheduledJob,
    ScheduleRunCursor,
    ScheduleSpec,
)
from conveyor.domain.workspaces import Permission
from conveyor.service.workspaces import Principal

router = APIRouter(prefix="/v1/workspaces/{ws}/schedules", tags=["schedules"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "missing, unknown or revoked API key"},
    403: {"model": ProblemOut, "description": "the key's role may not do this"},
    404: {"model": ProblemOut, "description": "no such schedule in this workspace"},
    422: {"model": ProblemOut, "description": "invalid input; the field is named"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ProblemOut, "description": "the name is taken, or the schedule changed"}
}

Reader = Annotated[Principal, authorized(Permission.READ)]
Manager = Annotated[Principal, authorized(Permission.MANAGE_SCHEDULES)]
ScheduleRef = Annotated[
    str, Path(description="the schedule's id, or its name", min_length=1, max_length=100)
]


@router.get(
    "",
    response_model=ScheduleListOut,
    responses=ERRORS,
    summary="List schedules, by name",
    description="Page by `page`, or by `cursor`: pass `meta.next_cursor` back as it is until "
    "it is null, and schedules created or deleted meanwhile never shift the pages.",
)
async def list_schedules(
    ctx: Context,
    principal: Reader,
    page: PageNumber = 1,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SCHEDULES_LISTED)] = MAX_SCHEDULES_LISTED,
) -> Response:
    one_way_to_page(page, cursor)
    found = await ctx.schedules.list_schedules(
        principal.workspace.id,
        page=page,
        limit=limit,
        cursor=None if cursor is None else ScheduleCursor.decode(cursor),
    )
    return json_response(
        {"data": [schedule_json(s) for s in found.schedules], "meta": page_meta(found)}
    )


@router.post(
    "",
    status_code=201,
    response_model=ScheduleOut,
    responses={**ERRORS, **CONFLICT},
    summary="Create a schedule",
)
async def create_schedule(ctx: Context, principal: Manager, body: CreateScheduleIn) -> Response:
    spec = ScheduleSpec(
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        job=ScheduledJob(**body.job.model_dump()),
        overlap=body.overlap,
        catch_up=body.catch_up,
        paused=body.paused,
    )
    schedule = await ctx.schedules.create_schedule(principal.workspace.id, spec)
    return json_response(schedule_json(schedule), 201)


@router.get("/{schedule}", response_model=ScheduleOut, responses=ERRORS, summary="One schedule")
async def get_schedule(ctx: Context, principal: Reader, schedule: ScheduleRef) -> Response:
    found = await ctx.schedules.get_schedule(principal.workspace.id, schedule)
    return json_response(schedule_json(found))


@router.patch(
    "/{schedule}",
    response_model=ScheduleOut,
    responses={**ERRORS, **CONFLICT},
    summary="Change, pause or resume a schedule",
)
async def update_schedule(
    ctx: Context, principal: Manager, schedule: ScheduleRef, body: UpdateScheduleIn
) -> Response:
    job = None
    if body.job is not None:
        job = {name: getattr(body.job, name) for name in body.job.model_fields_set}
    changes = ScheduleChanges(
        cron=body.cron,
        timezone=body.timezone,
        job=job,
        overlap=body.overlap,
        catch_up=body.catch_up,
        paused=body.paused,
    )
    updated = await ctx.schedules.update_schedule(
        principal.workspace.id, schedule, changes, expected_version=body.expected_version
    )
    return json_response(schedule_json(updated))


@router.delete(
    "/{schedule}",
    status_code=204,
    responses=ERRORS,
    summary="Delete a schedule (the jobs it made stay)",
)
async def delete_schedule(ctx: Context, principal: Manager, schedule: ScheduleRef) -> Response:
    await ctx.schedules.delete_schedule(principal.workspace.id, schedule)
    return Response(status_code=204)


@router.post(
    "/{schedule}/trigger",
    status_code=201,
    response_model=JobOut,
    responses={**ERRORS, 200: {"model": JobOut, "description": "idempotency key seen before"}},
    summary="Run now: create the schedule's job at once",
)
async def trigger_schedule(
    ctx: Context,
    principal: Manager,
    schedule: ScheduleRef,
    body: Annotated[TriggerIn | None, Body()] = None,
) -> Response:
    ctx.rate_limiter.check(str(principal.key_id))
    job, created = await ctx.schedules.trigger(
        principal.workspace.id,
        schedule,
        principal.actor,
        body.idempotency_key if body else None,
    )
    return json_response(job_json(job), 201 if created else 200)


@router.get(
    "/{schedule}/runs",
    response_model=ScheduleRunListOut,
    responses=ERRORS,
    summary="What the schedule did: ticks fired or skipped, triggers, and their jobs",
    description="Newest first. Page by `cursor`: pass `meta.next_cursor` back as it is "
    "until it is null, and runs recorded meanwhile never shift the pages.",
)
async def list_runs(
    ctx: Context,
    principal: Reader,
    schedule: ScheduleRef,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS_LISTED)] = DEFAULT_RUNS_LISTED,
) -> Response:
    found = await ctx.schedules.list_runs(
        principal.workspace.id,
        schedule,
        limit=limit,
        cursor=None if cursor is None else ScheduleRunCursor.decode(cursor),
    )
    return json_response(
        {
            "schedule_id": found.schedule.id,
            "data": [run_json(run) for run in found.runs],
            "meta": cursor_page_meta(found.limit, found.next_cursor),
        }
    )
