"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from conveyor.api.dependencies import Context
from conveyor.api.problems import problem_response
from conveyor.api.responses import json_response
from conveyor.domain.errors import Unavailable
from conveyor.store.connection import TransientDatabaseError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="The database answers")
async def readyz(ctx: Context) -> Response:
    try:
        await ctx.store.database.ping()
    except (Unavailable, TransientDatabaseError, OSError) as error:
        return problem_response(
            503, "unavailable", "Not ready", f"the database does not answer: {error}"
        )
    return json_response({"status": "ready", "database": ctx.store.url.kind})
