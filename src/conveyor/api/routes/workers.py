"""Worker and coordinator routes: claim jobs, hold leases, report, complete and fail.

Every report on a claimed job carries the `lease_id` the claim returned; once the lease is
gone (expired, cancelled, reassigned) the report is refused with 409 `lease-lost` and
changes nothing. A lease never runs past the job's timeout deadline: a heartbeat after it
is refused with reason `timed_out`. Without a lease, progress, steps and events may be
reported only on a PENDING or QUEUED job, and only by a key of the job's own workspace: an
instance worker reports on the jobs it holds alone (403, `permission_to_report`)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from conveyor.api.dependencies import (
    Context,
    any_key,
    authorized,
    ensure_may_report,
    forbidden,
    in_workspace,
)
from conveyor.api.problems import Problem, problem_for
from conveyor.api.responses import json_response
from conveyor.api.schemas import (
    ClaimedJobOut,
    ClaimIn,
    ClaimOut,
    CompleteIn,
    CompleteManyIn,
    CompleteManyOut,
    EventIn,
    EventOut,
    FailIn,
    HeartbeatIn,
    JobOut,
    ProblemOut,
    ProgressIn,
    StatusIn,
    StepIn,
    StepOut,
    StepUpdateIn,
    claimed_job_json,
    event_json,
    job_json,
    step_json,
)
from conveyor.domain.events import worker_actor
from conveyor.domain.jobs import Completion, Job, JobStatus
from conveyor.domain.workspaces import Permission, Workspace
from conveyor.service.jobs import AS_JOB
from conveyor.service.workspaces import Caller, InstanceKey, Principal

router = APIRouter(prefix="/v1/workspaces/{ws}", tags=["workers"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "missing, unknown or revoked API key"},
    429: {"model": ProblemOut, "description": "rate limited; see Retry-After"},
    403: {"model": ProblemOut, "description": "the key's role may not do this"},
    404: {"model": ProblemOut, "description": "no such job in this workspace"},
    409: {"model": ProblemOut, "description": "lease lost, or the job's state forbids it"},
    422: {"model": ProblemOut, "description": "invalid input; the field is named"},
}

Claimer = Annotated[Principal, authorized(Permission.CLAIM)]
Reporter = Annotated[Principal, authorized(Permission.REPORT)]
InWorkspace = Annotated[Principal, authorized(None)]
"""Any key that may act in the workspace: the route checks what it asks for."""
WorkerId = Annotated[
    str | None,
    Header(
        alias="Conveyor-Worker-Id",
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="who is reporting (printable ASCII, no spaces)",
    ),
]


def reporter_actor(principal: Principal, worker_id: str | None) -> str:
    return worker_actor(worker_id, principal.key_id) if worker_id else principal.actor


@router.post(
    "/claims",
    response_model=ClaimOut,
    responses=ERRORS,
    summary="Claim the most urgent jobs, waiting up to wait_seconds for some",
)
async def claim(ctx: Context, principal: Claimer, body: ClaimIn, request: Request) -> Response:
    ctx.rate_limiter.check(str(principal.key_id))
    if body.workspaces is not None:
        raise Problem(
            422,
            "validation-error",
            "Invalid input",
            "workspaces: a workspace's claims take from it alone; use POST /v1/claims",
            errors=[{"field": "workspaces", "message": "not taken here"}],
        )
    claimed = await ctx.jobs.claim_jobs(
        principal.workspace.id,
        types=body.types,
        limit=body.limit,
        lease_seconds=body.lease_seconds,
        worker_id=body.worker_id,
        actor=worker_actor(body.worker_id, principal.key_id),
        wait_seconds=body.wait_seconds,
        abandoned=request.is_disconnected,
        answer=AS_JOB,
    )
    slug = principal.workspace.slug
    return json_response({"data": [claimed_job_json(job, slug) for job in claimed]})


instance_router = APIRouter(prefix="/v1", tags=["workers"])


@instance_router.post(
    "/claims",
    response_model=ClaimOut,
    responses=ERRORS,
    summary="Claim from several workspaces (an instance worker key: every workspace, or "
    "those named), in fair turns; each job says its workspace",
)
async def claim_across_workspaces(
    ctx: Context, caller: Annotated[Caller, Depends(any_key)], body: ClaimIn, request: Request
) -> Response:
    ctx.rate_limiter.check(str(caller.key_id))
    if not caller.can(Permission.CLAIM):
        raise forbidden(caller, Permission.CLAIM)
    named = [await in_workspace(ctx, caller, name) for name in body.workspaces or ()]
    if isinstance(caller, InstanceKey):
        scope = [principal.workspace.id for principal in named] if named else None
    else:
        scope = [caller.workspace.id]
    claimed = await ctx.jobs.claim_jobs(
        scope,
        types=body.types,
        limit=body.limit,
        lease_seconds=body.lease_seconds,
        worker_id=body.worker_id,
        actor=worker_actor(body.worker_id, caller.key_id),
        wait_seconds=body.wait_seconds,
        abandoned=request.is_disconnected,
        answer=AS_JOB,
    )
    slugs = {workspace.id: workspace.slug for workspace in await _workspaces_of(ctx, claimed)}
    return json_response(
        {"data": [claimed_job_json(job, slugs[job.workspace_id]) for job in claimed]}
    )


async def _workspaces_of(ctx: Context, jobs: list[Job]) -> list[Workspace]:
    wanted = {job.workspace_id for job in jobs}
    if not wanted:
        return []
    return [w for w in await ctx.workspaces.list_workspaces() if w.id in wanted]


@router.post(
    "/jobs/{job_id}/heartbeat",
    response_model=ClaimedJobOut,
    responses=ERRORS,
    summary="Extend a lease (never past the job's timeout deadline); 409 once the job is "
    "cancelled, the lease is gone or the deadline has passed",
)
async def heartbeat(ctx: Context, principal: Reporter, job_id: UUID, body: HeartbeatIn) -> Response:
    job = await ctx.jobs.heartbeat(
        principal.workspace.id, job_id, body.lease_id, body.lease_seconds
    )
    return json_response(claimed_job_json(job, principal.workspace.slug))


@router.patch(
    "/jobs/{job_id}/status",
    response_model=ClaimedJobOut | JobOut,
    responses=ERRORS,
    summary="Move a job to a status (RUNNING returns a lease)",
)
async def change_status(
    ctx: Context, principal: InWorkspace, job_id: UUID, body: StatusIn, worker: WorkerId = None
) -> Response:
    needed = {
        JobStatus.QUEUED: Permission.CREATE,
        JobStatus.CANCELLED: Permission.CANCEL,
        JobStatus.RUNNING: Permission.START,
    }.get(body.status)
    if needed is None:  # any other move is a report
        ensure_may_report(principal, body.lease_id)
    elif not principal.can(needed):
        raise forbidden(principal, needed)
    worker_id = body.worker_id or worker
    job = await ctx.jobs.change_status(
        principal.workspace.id,
        job_id,
        body.status,
        actor=reporter_actor(principal, worker_id),
        expected_version=body.expected_version,
        lease_id=body.lease_id,
        worker_id=worker_id,
        lease_seconds=body.lease_seconds,
        result=body.result,
        error=body.error,
        reason=body.reason,
    )
    started = body.status == JobStatus.RUNNING
    return json_response(
        claimed_job_json(job, principal.workspace.slug) if started else job_json(job)
    )


@router.patch(
    "/jobs/{job_id}/progress", response_model=JobOut, responses=ERRORS, summary="Report progress"
)
async def progress(
    ctx: Context, principal: Reporter, job_id: UUID, body: ProgressIn, worker: WorkerId = None
) -> Response:
    ensure_may_report(principal, body.lease_id)
    job = await ctx.jobs.report_progress(
        principal.workspace.id,
        job_id,
        percent=body.progress_percent,
        lease_id=body.lease_id,
        message=body.message,
        allow_decrease=body.allow_decrease,
        actor=reporter_actor(principal, worker),
    )
    return json_response(job_json(job))


@router.post(
    "/jobs/{job_id}/steps",
    status_code=201,
    response_model=StepOut,
    responses=ERRORS,
    summary="Add the job's next step",
)
async def add_step(
    ctx: Context, principal: Reporter, job_id: UUID, body: StepIn, worker: WorkerId = None
) -> Response:
    ensure_may_report(principal, body.lease_id)
    step = await ctx.jobs.add_step(
        principal.workspace.id,
        job_id,
        name=body.name,
        phase=body.phase,
        step_type=body.type,
        status=body.status,
        lease_id=body.lease_id,
        actor=reporter_actor(principal, worker),
    )
    return json_response(step_json(step), 201)


@router.patch(
    "/jobs/{job_id}/steps/{step_id}",
    response_model=StepOut,
    responses=ERRORS,
    summary="Update a step: status, output, tokens, progress",
)
async def update_step(
    ctx: Context,
    principal: Reporter,
    job_id: UUID,
    step_id: UUID,
    body: StepUpdateIn,
    worker: WorkerId = None,
) -> Response:
    ensure_may_report(principal, body.lease_id)
    step = await ctx.jobs.update_step(
        principal.workspace.id,
        job_id,
        step_id,
        lease_id=body.lease_id,
        status=body.status,
        output=body.output,
        output_stream=body.output_stream,
        tokens_input=body.tokens_input,
        tokens_output=body.tokens_output,
        duration_ms=body.duration_ms,
        progress_percent=body.progress_percent,
        message=body.message,
        actor=reporter_actor(principal, worker),
    )
    return json_response(step_json(step))


@router.post(
    "/jobs/{job_id}/events",
    status_code=201,
    response_model=EventOut,
    responses=ERRORS,
    summary="Append a worker's own event (ai.tool_called, gate.passed, …)",
)
async def append_event(
    ctx: Context, principal: Reporter, job_id: UUID, body: EventIn, worker: WorkerId = None
) -> Response:
    ensure_may_report(principal, body.lease_id)
    event = await ctx.jobs.append_event(
        principal.workspace.id,
        job_id,
        event_type=body.type,
        payload=body.payload,
        step_id=body.step_id,
        lease_id=body.lease_id,
        actor=reporter_actor(principal, worker),
    )
    return json_response(event_json(event), 201)


@router.post(
    "/jobs/{job_id}/complete",
    response_model=JobOut,
    responses=ERRORS,
    summary="Complete a job (the same result again is a no-op; another result is 409)",
)
async def complete(
    ctx: Context, principal: Reporter, job_id: UUID, body: CompleteIn, worker: WorkerId = None
) -> Response:
    job = await ctx.jobs.complete_job(
        principal.workspace.id,
        job_id,
        body.lease_id,
        body.result,
        reporter_actor(principal, worker),
    )
    return json_response(job_json(job))


@router.post(
    "/completions",
    response_model=CompleteManyOut,
    responses=ERRORS,
    summary="Complete many jobs in one statement; each gets its own outcome",
)
async def complete_many(
    ctx: Context, principal: Reporter, body: CompleteManyIn, worker: WorkerId = None
) -> Response:
    workspace_id = principal.workspace.id
    outcomes = await ctx.jobs.complete_jobs(
        [
            Completion(workspace_id, item.job_id, item.lease_id, item.result)
            for item in body.completions
        ],
        reporter_actor(principal, worker),
        AS_JOB,
    )
    data: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.completed:
            assert outcome.job is not None, "asked for whole jobs"
            data.append(
                {"job_id": outcome.job_id, "status": "completed", "job": job_json(outcome.job)}
            )
        else:
            assert outcome.error is not None
            problem = problem_for(outcome.error)
            data.append(
                {
                    "job_id": outcome.job_id,
                    "status": "error",
                    "error": {
                        "type": f"/problems/{problem.kind}",
                        "status": problem.status,
                        "detail": problem.detail,
                        **problem.extra,
                    },
                }
            )
    return json_response({"data": data})


@router.post(
    "/jobs/{job_id}/fail",
    response_model=JobOut,
    responses=ERRORS,
    summary="Fail a job; retryable with attempts left queues it again after a backoff",
)
async def fail(
    ctx: Context, principal: Reporter, job_id: UUID, body: FailIn, worker: WorkerId = None
) -> Response:
    job = await ctx.jobs.fail_job(
        principal.workspace.id,
        job_id,
        body.lease_id,
        body.error,
        retryable=body.retryable,
        actor=reporter_actor(principal, worker),
        detail=body.error_detail,
        timed_out=body.timed_out,
        timeout_seconds=body.timeout_seconds,
    )
    return json_response(job_json(job))


@router.post(
    "/jobs/{job_id}/release",
    response_model=JobOut,
    responses=ERRORS,
    summary="Hand a claimed job back (worker shutting down): queued again, same attempt",
)
async def release(
    ctx: Context, principal: Reporter, job_id: UUID, body: HeartbeatIn, worker: WorkerId = None
) -> Response:
    job = await ctx.jobs.release_job(
        principal.workspace.id, job_id, body.lease_id, reporter_actor(principal, worker)
    )
    return json_response(job_json(job))
