"""The runtime of one server process: the store, the services, and the background tasks
(lease reaper, scheduler) that keep the queue healthy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import uvicorn

from conveyor.bus.hub import EventHub
from conveyor.bus.postgres import PostgresListener
from conveyor.bus.work import WorkSignal
from conveyor.config import Settings
from conveyor.domain import events
from conveyor.domain.errors import OUTAGES, AlreadyExists
from conveyor.domain.events import Event
from conveyor.domain.limits import JsonLimits
from conveyor.metrics import Metrics
from conveyor.service.jobs import JobService
from conveyor.service.limits import LimitService
from conveyor.service.pruning import Pruner
from conveyor.service.scheduler import Scheduler
from conveyor.service.schedules import ScheduleService
from conveyor.service.stats import StatsService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.migrate import require_current_schema, upgrade
from conveyor.store.urls import DatabaseURL
from conveyor.worker.command import register as register_command_jobs
from conveyor.worker.handlers import Handlers, load_handlers
from conveyor.worker.inprocess import ServiceBackend
from conveyor.worker.options import WorkerOptions, default_worker_id
from conveyor.worker.runner import Worker

log = logging.getLogger("conveyor.server")

ROOM_EVENTS = frozenset(
    {
        events.JOB_COMPLETED,
        events.JOB_FAILED,
        events.JOB_CANCELLED,
        events.JOB_LEASE_EXPIRED,
        events.JOB_RELEASED,
        events.JOB_RETRYING,
    }
)
"""Events of a job leaving RUNNING: room may have appeared under its limits."""


def prepare_schema(url: DatabaseURL, *, migrate: bool) -> None:
    """Migrate when asked to; otherwise refuse to serve a database that is missing or at
    another revision than the code."""
    if migrate:
        upgrade(url)
        return
    require_current_schema(url)


async def bootstrap_admin_key(settings: Settings) -> str | None:
    """First start on an empty database: create workspace `default` with an admin key, and
    answer its token (the caller saves it, see `conveyor serve`). None otherwise."""
    store = await open_store(DatabaseURL.parse(settings.database_url), pool_size=1)
    try:
        issued = await WorkspaceService(store).bootstrap()
    finally:
        await store.close()
    return None if issued is None else issued.token


@dataclass
class Runtime:
    settings: Settings
    store: Store
    jobs: JobService
    metrics: Metrics
    stats: StatsService
    workspaces: WorkspaceService
    work_signal: WorkSignal
    hub: EventHub
    limits: LimitService
    schedules: ScheduleService
    scheduler: Scheduler
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    listener: PostgresListener | None = None
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: Settings, metrics: Metrics | None = None) -> Runtime:
        url = DatabaseURL.parse(settings.database_url)
        store = await open_store(
            url, pool_size=settings.pool_size, sqlite_synchronous=settings.sqlite_synchronous
        )
        work_signal = WorkSignal()
        if url.kind == "sqlite":
            hub = EventHub(capacity=settings.sse_buffer_events)

            def committed(written: Sequence[Event]) -> None:
                hub.deliver(written)
                # A job that left RUNNING may have made room under a limit (on PostgreSQL a
                # trigger announces it).
                for workspace_id in {e.workspace_id for e in written if e.type in ROOM_EVENTS}:
                    work_signal.notify(workspace_id)

            store.jobs.on_committed = committed
        else:
            hub = EventHub(
                fetch_ranges=store.jobs.events_in_ranges,
                fetch_workspace_events=store.jobs.workspace_events_after,
                current_position=store.jobs.current_position,
                capacity=settings.sse_buffer_events,
            )
        if moved := await store.jobs.adopt_foreign_events():
            log.warning(
                "events carried another PostgreSQL server's transaction ids (a database "
                "restored onto this server): %d events put back in id order, before anything "
                "written from now on",
                moved,
            )
        stats = StatsService(store)
        metrics = metrics or Metrics()
        metrics.watch_job_counts(store.stats.queue_depth)
        metrics.watch_limits(store.limits.with_counts)
        json_limits = JsonLimits(settings.max_json_bytes, settings.max_json_depth)
        jobs = JobService(
            store,
            work_signal=work_signal,
            poll_interval=settings.claim_poll_interval_seconds,
            workers=stats,
            limits=json_limits,
            observer=metrics,
            timeout_grace_seconds=settings.timeout_grace_seconds,
        )
        schedules = ScheduleService(store, jobs, limits=json_limits)
        scheduler = Scheduler(schedules, recheck_seconds=settings.schedule_recheck_seconds)
        schedules.on_change = scheduler.wake
        runtime = cls(
            settings=settings,
            store=store,
            jobs=jobs,
            metrics=metrics,
            stats=stats,
            workspaces=WorkspaceService(
                store,
                cache_seconds=settings.auth_cache_seconds if url.kind == "postgresql" else 0.0,
            ),
            work_signal=work_signal,
            hub=hub,
            limits=LimitService(
                store, work_signal, retry_policy=jobs.retry_policy, observer=metrics
            ),
            schedules=schedules,
            scheduler=scheduler,
        )
        if url.kind == "postgresql":
            runtime.listener = PostgresListener(
                url.url,
                work_signal,
                on_events=hub.announce,
                on_key_change=runtime.workspaces.forget_key,
                on_reconnect=hub.catch_up_all,
            )
            await runtime.listener.start()
        runtime.tasks.append(asyncio.create_task(runtime._reap_forever(), name="lease-reaper"))
        runtime.tasks.append(asyncio.create_task(scheduler.run(), name="scheduler"))
        pruner = Pruner(
            store, settings.retention, batch_size=settings.prune_batch_jobs, observer=metrics
        )
        runtime.tasks.append(
            asyncio.create_task(pruner.run_forever(settings.prune_interval_seconds), name="pruner")
        )
        if settings.workers > 0:
            await runtime._start_workers()
        return runtime

    async def _start_workers(self) -> None:
        """In-process workers: the same handlers a remote worker runs, minus the HTTP hop."""
        handlers = Handlers()
        for reference in self.settings.handlers:
            handlers.merge(load_handlers(reference))
        if self.settings.allow_command_jobs:
            register_command_jobs(handlers)
        scope = None  # every workspace
        if named := self.settings.worker_workspace:
            workspace = await self.store.workspaces.get_workspace(named)
            if workspace is None:
                with contextlib.suppress(AlreadyExists):
                    await self.workspaces.create_workspace(named)
                workspace = await self.workspaces.get_workspace(named)
            scope = workspace.id
        self.worker = Worker(
            ServiceBackend(self.jobs, scope),
            handlers,
            WorkerOptions(
                concurrency=self.settings.workers,
                lease_seconds=self.settings.worker_lease_seconds,
                claim_wait_seconds=30.0,
                shutdown_grace_seconds=self.settings.shutdown_grace_seconds,
                worker_id=f"{default_worker_id()}:in-process",
            ),
        )
        if not self.worker.types:
            log.warning("--workers given but no handlers loaded: in-process workers stay idle")
            self.worker = None
            return
        self.worker_task = asyncio.create_task(self.worker.run(), name="in-process-worker")

    async def _reap_forever(self) -> None:
        """Take back expired leases, in every server process (the reaper is safe to run
        many times at once). Database outages are waited out, never fatal."""
        while True:
            try:
                while len(await self.jobs.expire_leases(limit=500)) == 500:
                    pass
            except OUTAGES as error:
                log.warning("lease reaper: database unavailable (%s); will try again", error)
            except Exception:
                log.exception("lease reaper failed; will try again")
            await asyncio.sleep(self.settings.reaper_interval_seconds)

    async def stop(self) -> None:
        if self.worker is not None and self.worker_task is not None:
            self.worker.stop()
            with contextlib.suppress(Exception):
                await self.worker_task
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.listener is not None:
            await self.listener.stop()
        await self.hub.close()
        await self.store.close()


class ConveyorServer(uvicorn.Server):
    """uvicorn waits for open connections before it stops, and an event stream never ends
    by itself: end the streams (and stop the in-process workers claiming) first, then let
    uvicorn finish."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        runtime = getattr(getattr(self.config.app, "state", None), "runtime", None)
        if isinstance(runtime, Runtime):
            runtime.hub.end_all_streams()
            if runtime.worker is not None:
                runtime.worker.stop()  # stop claiming now, not after the connections drain
        await super().shutdown(sockets)
