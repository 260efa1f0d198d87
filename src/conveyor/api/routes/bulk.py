"""Operator actions: cancel or retry every job a filter matches, a bounded batch per
request (service/bulk.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized
from conveyor.api.filters import FiltersIn
from conveyor.api.responses import json_response
from conveyor.api.schemas import Note, ProblemOut
from conveyor.domain.job_lists import BULK_LIMIT, BulkAction, ListCursor
from conveyor.domain.workspaces import Permission
from conveyor.service.bulk import BulkActions, BulkOutcome
from conveyor.service.workspaces import Principal

router = APIRouter(prefix="/v1/workspaces/{ws}/jobs/bulk", tags=["jobs"])

Canceller = Annotated[Principal, authorized(Permission.CANCEL)]
Retrier = Annotated[Principal, authorized(Permission.RETRY)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "missing, unknown or revoked API key"},
    403: {"model": ProblemOut, "description": "the key's role may not do this"},
    404: {"model": ProblemOut, "description": "no such workspace"},
    422: {"model": ProblemOut, "description": "invalid input, or neither a filter nor all"},
}
HOW = (
    f"Works on at most {BULK_LIMIT:,} jobs a request, newest first, each through its own "
    "guarded transition with its events; a job that changed meanwhile is skipped (counted "
    "in `matched`, not in `changed`). While `limit_reached`, repeat the request with "
    "`cursor` set to the answer's `next_cursor`. `dry_run` changes nothing and says how "
    'many jobs match (`remaining`). Name at least one filter, or send `"all": true`.'
)


class BulkIn(FiltersIn):
    all: bool = Field(False, description="every job of the workspace (no filter needed)")
    cursor: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="next_cursor of the request before: go on after the jobs it worked through",
    )
    dry_run: bool = Field(False, description="change nothing; say how many jobs match")


class BulkCancelIn(BulkIn):
    reason: Note | None = None


class BulkOut(BaseModel):
    action: str
    matched: int = Field(description="jobs this request selected")
    changed: int = Field(description="of those, the jobs it changed")
    remaining: int = Field(description="jobs the action could still change, after this request")
    remaining_is_estimate: bool
    limit: int = Field(description="the most jobs one request works on")
    limit_reached: bool = Field(description="more may remain: repeat with next_cursor")
    next_cursor: str | None
    dry_run: bool


def _cursor(body: BulkIn) -> ListCursor | None:
    return None if body.cursor is None else ListCursor.decode(body.cursor)


def _answer(outcome: BulkOutcome) -> Response:
    return json_response(outcome.as_json())


@router.post(
    "/cancel",
    response_model=BulkOut,
    responses=ERRORS,
    summary="Cancel every pending, queued or running job a filter matches",
    description=HOW,
)
async def bulk_cancel(ctx: Context, principal: Canceller, body: BulkCancelIn) -> Response:
    outcome = await BulkActions(ctx.jobs).run(
        BulkAction.CANCEL,
        principal.workspace.id,
        body.filters().job_filter(),
        everything=body.all,
        actor=principal.actor,
        reason=body.reason,
        cursor=_cursor(body),
        dry_run=body.dry_run,
    )
    return _answer(outcome)


@router.post(
    "/retry",
    response_model=BulkOut,
    responses=ERRORS,
    summary="Run again every failed or cancelled job a filter matches (each as a new job)",
    description=HOW + " A job already run again (under the default idempotency key) is left "
    "out, so repeated requests end.",
)
async def bulk_retry(ctx: Context, principal: Retrier, body: BulkIn) -> Response:
    outcome = await BulkActions(ctx.jobs).run(
        BulkAction.RETRY,
        principal.workspace.id,
        body.filters().job_filter(),
        everything=body.all,
        actor=principal.actor,
        cursor=_cursor(body),
        dry_run=body.dry_run,
    )
    return _answer(outcome)
