"""Limits: `PUT/GET/DELETE /v1/workspaces/{ws}/limits/{name}` and the list, each with what
it governs now (running and queued jobs, starts in its rate window)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized
from conveyor.api.responses import json_response
from conveyor.api.schemas import (
    Integer,
    LimitVersion,
    MaxRunning,
    Number,
    ProblemOut,
    Strict,
)
from conveyor.domain.capacity import (
    LIMIT_NAME_MAX_LENGTH,
    RATE_COUNT_LIMIT,
    RATE_WINDOW_LIMIT_SECONDS,
    Rate,
)
from conveyor.domain.workspaces import Permission
from conveyor.service.workspaces import Principal
from conveyor.store.limits import LimitCounts

router = APIRouter(prefix="/v1/workspaces/{ws}/limits", tags=["limits"])


class LimitNameSegments(PathConvertor):
    """`/limits/{name}`: the rest of the path, slashes (`customer%2F42`) and line breaks
    included, so a name the domain refuses (a control character; or none) is its 422
    naming `name`, not a missing route's 404."""

    regex = "(?s:.*)"


register_url_convertor("limit_name", LimitNameSegments())

Reader = Annotated[Principal, authorized(Permission.READ)]
Manager = Annotated[Principal, authorized(Permission.MANAGE_LIMITS)]
LimitName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=LIMIT_NAME_MAX_LENGTH,
        description="a concurrency key, or `type:<job type>` for every job of a type",
    ),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "missing, unknown or revoked API key"},
    403: {"model": ProblemOut, "description": "the key's role may not do this"},
    404: {"model": ProblemOut, "description": "no such limit (or workspace)"},
    422: {"model": ProblemOut, "description": "invalid input; the field is named"},
}


class RateIn(Strict):
    count: Integer = Field(ge=1, le=RATE_COUNT_LIMIT, description="starts allowed…")
    per_seconds: Number = Field(
        gt=0, le=RATE_WINDOW_LIMIT_SECONDS, description="…in any window this long"
    )


class LimitIn(Strict):
    max_running: MaxRunning | None = Field(
        None, description="at most this many of its jobs RUNNING"
    )
    rate: RateIn | None = None
    paused: bool = Field(False, strict=True, description="none of its jobs start")
    expected_version: LimitVersion | None = Field(
        None,
        description="set the limit only if it is still at this version (its `version` when "
        "read; 0: only if there is no such limit yet): 409 if it changed (or was made) "
        "since, 404 if it was deleted",
    )


class RateOut(BaseModel):
    count: int
    per_seconds: float


class LimitOut(BaseModel):
    name: str
    max_running: int | None
    rate: RateOut | None
    paused: bool
    running: int = Field(description="its jobs RUNNING now")
    queued: int = Field(description="its jobs QUEUED (due or not)")
    started_in_window: int = Field(description="starts its rate window counts now")
    waiting_because: str | None = Field(
        description="why none of its jobs may start now: paused, full or rate (null: some may)"
    )
    created_at: str
    updated_at: str
    version: int = Field(
        description="new with each PUT of its settings (never one it had before), not with "
        "its counts"
    )


class LimitListOut(BaseModel):
    data: list[LimitOut]


def limit_json(counts: LimitCounts) -> dict[str, Any]:
    limit = counts.limit
    rate = limit.rate
    return {
        "name": limit.name,
        "max_running": limit.max_running,
        "rate": None if rate is None else {"count": rate.count, "per_seconds": rate.per_seconds},
        "paused": limit.paused,
        "running": counts.running,
        "queued": counts.queued,
        "started_in_window": counts.recent_starts,
        "waiting_because": counts.waiting_because,
        "created_at": counts.created_at,
        "updated_at": counts.updated_at,
        "version": counts.version,
    }


@router.get("", response_model=LimitListOut, responses=ERRORS, summary="The workspace's limits")
async def list_limits(ctx: Context, principal: Reader) -> Response:
    found = await ctx.limits.list_limits(principal.workspace.id)
    return json_response({"data": [limit_json(counts) for counts in found]})


@router.get("/{name:limit_name}", response_model=LimitOut, responses=ERRORS, summary="One limit")
async def get_limit(ctx: Context, principal: Reader, name: LimitName) -> Response:
    return json_response(limit_json(await ctx.limits.get(principal.workspace.id, name)))


@router.put(
    "/{name:limit_name}",
    response_model=LimitOut,
    responses={
        **ERRORS,
        409: {"model": ProblemOut, "description": "the limit changed since expected_version"},
    },
    summary="Set a limit: max_running, a rate, paused (what is left out is no cap)",
)
async def put_limit(ctx: Context, principal: Manager, name: LimitName, body: LimitIn) -> Response:
    rate = None if body.rate is None else Rate(body.rate.count, float(body.rate.per_seconds))
    counts = await ctx.limits.put(
        principal.workspace.id,
        name,
        max_running=body.max_running,
        rate=rate,
        paused=body.paused,
        expected_version=body.expected_version,
    )
    return json_response(limit_json(counts))


@router.delete(
    "/{name:limit_name}", status_code=204, responses=ERRORS, summary="Remove a limit (no cap)"
)
async def delete_limit(ctx: Context, principal: Manager, name: LimitName) -> Response:
    await ctx.limits.delete(principal.workspace.id, name)
    return Response(status_code=204)
