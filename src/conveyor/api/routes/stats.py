"""The workspace at a glance: jobs by status and type, throughput, workers, queue age."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized
from conveyor.api.responses import json_response
from conveyor.domain.jobs import JobStatus
from conveyor.domain.workspaces import Permission
from conveyor.service.stats import unserved_types
from conveyor.service.workspaces import Principal

router = APIRouter(prefix="/v1/workspaces/{ws}", tags=["stats"])


class CountOut(BaseModel):
    type: str
    status: JobStatus
    count: int


class MinuteOut(BaseModel):
    minute: datetime
    completed: int
    failed: int
    cancelled: int


class WorkerOut(BaseModel):
    worker_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    running: int
    types: list[str] | None = Field(description="the job types it claims; null: any type")
    state: Literal["active", "stopped"] = Field(
        description="stopped: not seen for longer than its lease or claim wait allow"
    )


class UnservedTypeOut(BaseModel):
    type: str
    queued: int


class StatsOut(BaseModel):
    counts: list[CountOut]
    by_status: dict[str, int]
    throughput: list[MinuteOut]
    workers: list[WorkerOut]
    unserved_types: list[UnservedTypeOut] = Field(
        description="types with jobs claimable now (queued and due) that no active worker "
        "serves; `queued`: how many (jobs whose run_at is still ahead are not counted)"
    )
    oldest_queued_at: datetime | None = Field(
        description="when the job waiting longest for a worker became claimable: the later "
        "of its created_at and run_at (null: none is due)"
    )
    oldest_queued_age_seconds: float | None = Field(description="how long since then")


@router.get("/stats", response_model=StatsOut, summary="Queue depth, throughput and workers")
async def stats(
    ctx: Context, principal: Annotated[Principal, authorized(Permission.READ)]
) -> Response:
    overview = await ctx.stats.overview(principal.workspace.id)
    by_status = {status.value: 0 for status in JobStatus}
    for row in overview.counts:
        by_status[row.status] += row.count
    oldest = overview.oldest_queued_at
    return json_response(
        {
            "counts": [
                {"type": row.type, "status": row.status, "count": row.count}
                for row in overview.counts
            ],
            "by_status": by_status,
            "throughput": [
                {
                    "minute": row.minute,
                    "completed": row.completed,
                    "failed": row.failed,
                    "cancelled": row.cancelled,
                }
                for row in overview.throughput
            ],
            "workers": [
                {
                    "worker_id": worker.worker_id,
                    "first_seen_at": worker.first_seen_at,
                    "last_seen_at": worker.last_seen_at,
                    "running": worker.running,
                    "types": None if worker.types is None else list(worker.types),
                    "state": "active" if worker.active else "stopped",
                }
                for worker in overview.workers
            ],
            "unserved_types": [
                {"type": unserved.type, "queued": unserved.queued}
                for unserved in unserved_types(overview)
            ],
            "oldest_queued_at": oldest,
            "oldest_queued_age_seconds": (
                None if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
            ),
        }
    )
