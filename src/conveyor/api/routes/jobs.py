"""Client routes: create, list, read, cancel and retry jobs."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized
from conveyor.api.filters import ListFilters, list_filters
from conveyor.api.paging import Cursor, PageNumber, one_way_to_page, page_meta
from conveyor.api.responses import json_response
from conveyor.api.routes.limits import limit_json
from conveyor.api.schemas import (
    CancelIn,
    CreateJobIn,
    CreateJobsIn,
    CreateJobsOut,
    EventListOut,
    JobDetailOut,
    JobOut,
    JobPageOut,
    ProblemOut,
    RetryIn,
    StepListOut,
    event_json,
    job_json,
    step_json,
)
from conveyor.domain.events import LARGEST_SEQ
from conveyor.domain.job_lists import ListCursor
from conveyor.domain.jobs import JobSpec
from conveyor.domain.workspaces import Permission
from conveyor.service.jobs import MAX_LIST_LIMIT
from conveyor.service.workspaces import Principal

router = APIRouter(prefix="/v1/workspaces/{ws}", tags=["jobs"])


class JobIdSegment(StringConvertor):
    """`/jobs/{job_id}` matches any segment but `batch`, which names the batch route and
    can never be a job's id: `GET /jobs/batch` is then that route's 405 (POST only), not
    a malformed job id's 422. Any other segment still reaches the UUID check (422)."""

    regex = "(?!batch$)[^/]+"


register_url_convertor("job_id_segment", JobIdSegment())

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "missing, unknown or revoked API key"},
    429: {"model": ProblemOut, "description": "rate limited; see Retry-After"},
    403: {"model": ProblemOut, "description": "the key's role may not do this"},
    404: {"model": ProblemOut, "description": "no such job in this workspace"},
    422: {"model": ProblemOut, "description": "invalid input; the field is named"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ProblemOut, "description": "the job's state does not allow this"}
}
KEY_REUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ProblemOut,
        "description": "idempotency-conflict: an idempotency key given again (or twice in "
        "a batch) with another type or payload",
    }
}

Reader = Annotated[Principal, authorized(Permission.READ)]
Creator = Annotated[Principal, authorized(Permission.CREATE)]
Canceller = Annotated[Principal, authorized(Permission.CANCEL)]
Retrier = Annotated[Principal, authorized(Permission.RETRY)]


def spec_from(body: CreateJobIn) -> JobSpec:
    return JobSpec(
        type=body.type,
        payload=body.payload,
        priority=body.priority,
        agent_task_id=body.agent_task_id,
        max_attempts=body.max_attempts,
        run_at=body.run_at,
        idempotency_key=body.idempotency_key,
        hold=body.hold,
        retry_backoff_seconds=body.retry_backoff_seconds,
        retry_backoff_max_seconds=body.retry_backoff_max_seconds,
        concurrency_key=body.concurrency_key,
        timeout_seconds=body.timeout_seconds,
    )


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    responses={
        **ERRORS,
        **KEY_REUSED,
        200: {"model": JobOut, "description": "idempotency key seen before"},
    },
    summary="Create a job",
)
async def create_job(ctx: Context, principal: Creator, body: CreateJobIn) -> Response:
    ctx.rate_limiter.check(str(principal.key_id))
    job, created = await ctx.jobs.create_job(
        principal.workspace.id, spec_from(body), principal.actor
    )
    return json_response(job_json(job), 201 if created else 200)


@router.post(
    "/jobs/batch",
    status_code=201,
    response_model=CreateJobsOut,
    responses={**ERRORS, **KEY_REUSED},
    summary="Create many jobs in one transaction",
)
async def create_jobs(ctx: Context, principal: Creator, body: CreateJobsIn) -> Response:
    ctx.rate_limiter.check(str(principal.key_id))
    results = await ctx.jobs.create_jobs(
        principal.workspace.id, [spec_from(item) for item in body.jobs], principal.actor
    )
    return json_response(
        {"data": [job_json(job) for job, _ in results], "created": [c for _, c in results]},
        201,
    )


@router.get(
    "/jobs",
    response_model=JobPageOut,
    responses=ERRORS,
    summary="List jobs, newest first",
    description="Filters combine (AND). Page by `page`, or deep lists by `cursor`: pass "
    "`meta.next_cursor` back as it is, and jobs created meanwhile never shift the pages. "
    "The total is exact up to 10,000 jobs, an estimate past that (`meta.total_is_estimate`).",
)
async def list_jobs(
    ctx: Context,
    principal: Reader,
    filters: Annotated[ListFilters, Depends(list_filters)],
    page: PageNumber = 1,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
) -> Response:
    one_way_to_page(page, cursor)
    found = await ctx.jobs.list_jobs(
        principal.workspace.id,
        filters.job_filter(),
        page=page,
        limit=limit,
        cursor=None if cursor is None else ListCursor.decode(cursor),
    )
    return json_response({"data": [job_json(job) for job in found.jobs], "meta": page_meta(found)})


@router.get(
    "/jobs/{job_id:job_id_segment}",
    response_model=JobDetailOut,
    responses=ERRORS,
    summary="One job, with its steps and events",
)
async def get_job(ctx: Context, principal: Reader, job_id: UUID) -> Response:
    detail = await ctx.jobs.get_job_detail(principal.workspace.id, job_id)
    body = job_json(detail.job)
    body["steps"] = [step_json(step) for step in detail.steps]
    body["events"] = [event_json(event) for event in detail.events]
    body["waiting_for"] = [
        {**limit_json(wait.limit), "reason": wait.reason}
        for wait in await ctx.limits.waits(detail.job)
    ]
    return json_response(body)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses={**ERRORS, **CONFLICT},
    summary="Cancel a pending, queued or running job",
)
async def cancel_job(
    ctx: Context,
    principal: Canceller,
    job_id: UUID,
    body: Annotated[CancelIn | None, Body()] = None,
) -> Response:
    job = await ctx.jobs.cancel_job(
        principal.workspace.id, job_id, principal.actor, body.reason if body else None
    )
    return json_response(job_json(job))


@router.post(
    "/jobs/{job_id}/retry",
    status_code=201,
    response_model=JobOut,
    responses={
        **ERRORS,
        **CONFLICT,
        200: {
            "model": JobOut,
            "description": "the idempotency key was seen before: the job that retry created",
        },
    },
    summary="Run a failed or cancelled job again, as a new job",
)
async def retry_job(
    ctx: Context,
    principal: Retrier,
    job_id: UUID,
    body: Annotated[RetryIn | None, Body()] = None,
) -> Response:
    job, created = await ctx.jobs.retry_job(
        principal.workspace.id,
        job_id,
        principal.actor,
        idempotency_key=body.idempotency_key if body else None,
    )
    return json_response(job_json(job), 201 if created else 200)


@router.get(
    "/jobs/{job_id}/steps", response_model=StepListOut, responses=ERRORS, summary="A job's steps"
)
async def list_steps(ctx: Context, principal: Reader, job_id: UUID) -> Response:
    found = await ctx.jobs.list_steps(principal.workspace.id, job_id)
    return json_response({"data": [step_json(step) for step in found]})


@router.get(
    "/jobs/{job_id}/events",
    response_model=EventListOut,
    responses=ERRORS,
    summary="A job's events after a sequence number",
)
async def list_events(
    ctx: Context,
    principal: Reader,
    job_id: UUID,
    after_seq: Annotated[int, Query(ge=0, le=LARGEST_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> Response:
    found = await ctx.jobs.list_events(
        principal.workspace.id, job_id, after_seq=after_seq, limit=limit
    )
    return json_response({"data": [event_json(event) for event in found]})
