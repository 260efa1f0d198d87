"""The ASGI application: routes, error handling, and the runtime behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import Receive, Scope, Send

import conveyor
from conveyor.api.connections import remember_transport
from conveyor.api.dependencies import ApiContext, understood_request
from conveyor.api.head_requests import HeadRequests
from conveyor.api.limits import RateLimiter, RequestSizeLimit
from conveyor.api.observability import Observability
from conveyor.api.openapi import problem_openapi
from conveyor.api.problems import UnexpectedErrors, install_problem_handlers
from conveyor.api.readiness import Readiness
from conveyor.api.routes import (
    bulk,
    health,
    jobs,
    keys,
    limits,
    me,
    schedules,
    session,
    stats,
    streams,
    workers,
)
from conveyor.api.routes import (
    settings as workspace_settings,
)
from conveyor.api.routes.api_docs import mount_api_docs
from conveyor.api.routes.dashboard import mount_dashboard
from conveyor.config import Settings
from conveyor.metrics import Metrics
from conveyor.server import Runtime


class ConveyorApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            remember_transport(scope, send)  # before the middleware wraps `send`
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, metrics)
        app.state.runtime = runtime
        app.state.context = ApiContext(
            settings=settings,
            store=runtime.store,
            jobs=runtime.jobs,
            workspaces=runtime.workspaces,
            hub=runtime.hub,
            stats=runtime.stats,
            rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            readiness=Readiness(runtime.store.database),
            metrics=runtime.metrics,
            limits=runtime.limits,
            schedules=runtime.schedules,
        )
        try:
            yield
        finally:
            await runtime.stop()

    app = ConveyorApp(
        title="Conveyor",
        version=conveyor.__version__,
        summary="A durable, concurrency-safe job runner.",
        lifespan=lifespan,
        docs_url=None,  # served by routes/api_docs.py, with local assets
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    metrics = Metrics()
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    install_problem_handlers(app)
    app.add_middleware(HeadRequests)  # innermost: the others see the request as HEAD
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    if settings.insecure_local:
        # Without keys, a web page could reach the server through DNS rebinding: only
        # requests addressed to this machine by name are served.
        app.add_middleware(
            TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "::1", "[::1]"]
        )
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(Observability, metrics=metrics, access_log=settings.access_log)
    app.include_router(health.router)
    api_routers = (
        me.router,
        session.router,
        bulk.router,  # before jobs: /jobs/bulk/cancel is not /jobs/{id}/cancel
        jobs.router,
        workers.router,
        workers.instance_router,
        streams.router,
        stats.router,
        keys.router,
        limits.router,
        schedules.router,
        workspace_settings.router,
    )
    for router in api_routers:
        app.include_router(router, dependencies=[Depends(understood_request)])
    mount_api_docs(app)
    mount_dashboard(app)
    return app
