"""Liveness and readiness probes."""

from __future__ import annotations

import contextlib
import hmac

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from conveyor.api.dependencies import Context, bearer_token
from conveyor.api.problems import problem_response, storage_problem
from conveyor.api.readiness import reason
from conveyor.api.responses import json_response
from conveyor.api.schemas import ProblemOut
from conveyor.domain.errors import StorageUnavailable, TransientDatabaseError, Unavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="The server can take work: the database answers and takes writes",
    responses={
        503: {
            "model": ProblemOut,
            "description": "not ready: `reason` says why (storage full, storage read-only, "
            "database unreachable, database busy, database error)",
        }
    },
)
async def readyz(ctx: Context, request: Request) -> Response:
    not_ready = await ctx.readiness.check()
    if not_ready is None:
        return json_response({"status": "ready", "database": ctx.store.url.kind})
    if isinstance(not_ready, StorageUnavailable):
        problem = storage_problem(not_ready, status=503)
        return problem_response(
            503,
            problem.kind,
            "Not ready",
            f"not ready: {reason(not_ready)}; the server cannot store new work",
            instance=request.url.path,
            headers=problem.headers,
            reason=reason(not_ready),
        )
    return problem_response(
        503,
        "unavailable",
        "Not ready",
        f"not ready: {reason(not_ready)}",
        instance=request.url.path,
        headers={"Retry-After": "1"},
        reason=reason(not_ready),
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(ctx: Context, request: Request) -> Response:
    token = ctx.settings.metrics_token
    if not token and not ctx.settings.on_loopback:
        return problem_response(
            403,
            "forbidden",
            "Forbidden",
            "metrics name every workspace: off loopback they need CONVEYOR_METRICS_TOKEN set "
            "and sent as Authorization: Bearer <token>",
        )
    if token:
        presented = bearer_token(request.headers.get("authorization", "")) or ""
        if not hmac.compare_digest(presented.encode(), token.encode()):
            return problem_response(
                401,
                "unauthorized",
                "Unauthorized",
                "metrics need Authorization: Bearer <CONVEYOR_METRICS_TOKEN>",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    runtime_metrics = request.app.state.runtime.metrics
    # When the database is away, serve the last counts; this process's own are still good.
    with contextlib.suppress(Unavailable, TransientDatabaseError):
        await runtime_metrics.refresh()
    runtime_metrics.sse_streams.set(ctx.hub.subscriptions)
    runtime_metrics.db_statements.set(ctx.store.database.statements)
    return Response(generate_latest(runtime_metrics.registry), media_type=CONTENT_TYPE_LATEST)
