"""Procrastinate (PostgreSQL, psycopg 3): `defer_async` / `batch_defer_async` to enqueue,
its asyncio worker (`App.run_worker_async`) with concurrency to run jobs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ClassVar

from bench.infra import importable
from bench.measure import Starts
from bench.systems.base import (
    JOB_TYPE,
    Backend,
    Consumer,
    DrainOutcome,
    Producer,
    Session,
    System,
    count_rows,
    fresh_postgres_database,
)

CONCURRENCY = 50
"""Jobs the worker runs at once (it fetches one job per query, so this is also how many
fetches may be in flight). Tuned: 10, 25, 50 and 100 were tried."""
WORKER_POOL = 10
PRODUCER_POOL = 10


def make_app(url: str, pool_size: int, starts: Starts | None = None) -> Any:
    import procrastinate

    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=pool_size)
    app = procrastinate.App(connector=connector)

    @app.task(name=JOB_TYPE)
    async def noop(i: int) -> None:
        if starts is not None:
            starts.record(i)

    return app


class ProcrastinateProducer(Producer):
    def __init__(self, app: Any, *, owned: bool = False) -> None:
        self._app = app
        self._task = app.tasks[JOB_TYPE]
        self._owned = owned

    async def enqueue_each(self, indexes: list[int]) -> None:
        for index in indexes:
            await self._task.defer_async(i=index)

    async def enqueue_batch(self, indexes: list[int]) -> None:
        await self._task.batch_defer_async(*({"i": index} for index in indexes))

    async def close(self) -> None:
        if self._owned:
            await self._app.close_async()


async def producer_from_spec(spec: dict[str, Any]) -> Producer:
    """A producer in another process (`bench.producer`)."""
    app = make_app(spec["url"], PRODUCER_POOL)
    await app.open_async()
    return ProcrastinateProducer(app, owned=True)


class ProcrastinateConsumer(Consumer):
    def __init__(self, url: str) -> None:
        self.starts = Starts()
        self._url = url
        self._app: Any = None
        self._task: asyncio.Task[None] | None = None

    async def _open(self) -> Any:
        self._app = make_app(self._url, WORKER_POOL, self.starts)
        await self._app.open_async()
        return self._app

    async def drain(self, count: int, within: float) -> DrainOutcome:
        app = await self._open()
        try:
            # wait=False: the worker returns once the queue is empty and its running jobs
            # are finished and recorded, which is the end of the drain.
            await asyncio.wait_for(
                app.run_worker_async(
                    concurrency=CONCURRENCY,
                    wait=False,
                    listen_notify=False,
                    install_signal_handlers=False,
                ),
                within,
            )
            end = time.time()
        finally:
            await app.close_async()
            self._app = None
        return DrainOutcome(
            first_start=self.starts.first,
            last_completion=end,
            handled=len(self.starts),
            duplicates=self.starts.duplicates,
        )

    async def start(self) -> None:
        app = await self._open()
        self._task = asyncio.create_task(
            app.run_worker_async(
                concurrency=CONCURRENCY,
                wait=True,
                listen_notify=True,
                install_signal_handlers=False,
            )
        )

    def raise_if_dead(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()
            raise RuntimeError("the procrastinate worker stopped by itself")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._app is not None:
            await self._app.close_async()
            self._app = None


class ProcrastinateSession(Session):
    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database
        self._app: Any = None

    async def producer(self) -> Producer:
        if self._app is None:
            self._app = make_app(self.url, PRODUCER_POOL)
            await self._app.open_async()
        return ProcrastinateProducer(self._app)

    async def producer_spec(self) -> dict[str, Any] | None:
        return {"system": "procrastinate", "url": self.url}

    async def quiesce(self) -> None:
        if self._app is not None:
            await self._app.close_async()
            self._app = None

    def consumer(self) -> Consumer:
        return ProcrastinateConsumer(self.url)

    async def count_completed(self) -> int | None:
        return await count_rows(
            self.url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        )


class Procrastinate(System):
    name = "procrastinate"
    title = "Procrastinate (PostgreSQL, psycopg)"
    backend: ClassVar[Backend] = "postgresql"
    distribution = "procrastinate"
    not_applicable: ClassVar[dict[str, str]] = {
        "contention": "Conveyor only",
        "noisy-neighbour": (
            "nothing comparable: a worker on several queues fetches by priority, then job id, "
            "across all of them (procrastinate_fetch_job_v2), so a shared pool is the fifo "
            "case; B is kept apart only by workers of its own"
        ),
        "claim-keys": "no per-key max_running: a lock runs one job of the lock at a time",
        "claim-tenants": "no tenants (queues are not fair shares) and no per-key max_running",
        "limit-hammer": "no max_running limit (a lock is a limit of one), not measured",
        "due-start": "not measured (Conveyor's due-time wake-ups)",
    }
    template = "bench_procrastinate"

    def unavailable(self) -> str | None:
        return None if importable("procrastinate") else "procrastinate is not installed"

    def settings(self) -> dict[str, Any]:
        return {
            "producer": f"task.defer_async / batch_defer_async, psycopg pool {PRODUCER_POOL}",
            "worker": (
                f"App.run_worker_async(concurrency={CONCURRENCY}), psycopg pool "
                f"{WORKER_POOL}; drain: wait=False, latency: listen_notify=True"
            ),
            "jobs kept": "yes (delete_jobs=never, the default)",
        }

    async def prepare(self) -> None:
        await self.infra.postgres.create_template(self.template)
        app = make_app(self.infra.postgres.url(self.template), 1)
        await app.open_async()
        try:
            await app.schema_manager.apply_schema_async()
        finally:
            await app.close_async()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[ProcrastinateSession]:
        async with fresh_postgres_database(self.infra, self.template) as database:
            session = ProcrastinateSession(self.infra.postgres.url(database), database)
            try:
                yield session
            finally:
                await session.quiesce()

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()
