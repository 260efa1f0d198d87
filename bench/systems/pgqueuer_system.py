"""PgQueuer (PostgreSQL, asyncpg): `Queries.enqueue` (scalars, or lists for a batch) to
enqueue; a `QueueManager` on one asyncpg connection, dequeuing in batches, to run jobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar

import asyncpg

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

BATCH_SIZE = 100
"""Jobs per dequeue query. Tuned: 10 (the default), 50, 100 and 200 were tried."""


def queries_on(connection: asyncpg.Connection) -> Any:
    from pgqueuer import AsyncpgDriver, Queries

    return Queries(AsyncpgDriver(connection))


class PgQueuerProducer(Producer):
    """One asyncpg connection per producer (the driver serialises calls on it)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._queries = queries_on(connection)

    async def enqueue_each(self, indexes: list[int]) -> None:
        for index in indexes:
            await self._queries.enqueue(JOB_TYPE, str(index).encode(), 0)

    async def enqueue_batch(self, indexes: list[int]) -> None:
        await self._queries.enqueue(
            [JOB_TYPE] * len(indexes),
            [str(index).encode() for index in indexes],
            [0] * len(indexes),
        )

    async def close(self) -> None:
        await self._connection.close()


async def producer_from_spec(spec: dict[str, Any]) -> Producer:
    """A producer in another process (`bench.producer`)."""
    return PgQueuerProducer(await asyncpg.connect(spec["url"]))


class PgQueuerConsumer(Consumer):
    def __init__(self, url: str) -> None:
        self.starts = Starts()
        self._url = url
        self._connection: asyncpg.Connection | None = None
        self._manager: Any = None
        self._task: asyncio.Task[None] | None = None

    async def _open(self) -> Any:
        from pgqueuer import QueueManager
        from pgqueuer.models import Job

        self._connection = await asyncpg.connect(self._url)
        manager = QueueManager(queries_on(self._connection))
        starts = self.starts

        @manager.entrypoint(JOB_TYPE)
        async def noop(job: Job) -> None:
            assert job.payload is not None
            starts.record(int(job.payload))

        self._manager = manager
        return manager

    async def drain(self, count: int, within: float) -> DrainOutcome:
        from pgqueuer.types import QueueExecutionMode

        manager = await self._open()
        try:
            # mode=drain: run() returns once the queue is empty and the in-flight jobs'
            # outcomes are flushed to the log table.
            await asyncio.wait_for(
                manager.run(
                    batch_size=BATCH_SIZE,
                    mode=QueueExecutionMode.drain,
                    dequeue_timeout=timedelta(seconds=1),
                ),
                within,
            )
            end = time.time()
        finally:
            await self._close()
        return DrainOutcome(
            first_start=self.starts.first,
            last_completion=end,
            handled=len(self.starts),
            duplicates=self.starts.duplicates,
        )

    async def start(self) -> None:
        manager = await self._open()
        self._task = asyncio.create_task(
            manager.run(batch_size=BATCH_SIZE, dequeue_timeout=timedelta(seconds=30))
        )

    def raise_if_dead(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()
            raise RuntimeError("the PgQueuer worker stopped by itself")

    async def stop(self) -> None:
        if self._manager is not None and self._task is not None:
            self._manager.shutdown.set()
            await self._task
            self._task = None
        await self._close()

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        self._manager = None


class PgQueuerSession(Session):
    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database

    async def producer(self) -> Producer:
        return PgQueuerProducer(await asyncpg.connect(self.url))

    def consumer(self) -> Consumer:
        return PgQueuerConsumer(self.url)

    async def producer_spec(self) -> dict[str, Any] | None:
        return {"system": "pgqueuer", "url": self.url}

    async def count_completed(self) -> int | None:
        return await count_rows(
            self.url, "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
        )


class PgQueuer(System):
    name = "pgqueuer"
    title = "PgQueuer (PostgreSQL, asyncpg)"
    backend: ClassVar[Backend] = "postgresql"
    distribution = "pgqueuer"
    not_applicable: ClassVar[dict[str, str]] = {
        "contention": "Conveyor only",
        "noisy-neighbour": (
            "nothing comparable: a dequeue takes by priority, then id, across entrypoints; an "
            "entrypoint's concurrency_limit is a fixed cap per job function for every worker, "
            "which holds A back even while B is idle, not a fair share of one pool"
        ),
        "claim-keys": "limits are per entrypoint (a job function in code), not per key",
        "claim-tenants": "no tenants: one queue table per database (and no per-key limits)",
        "limit-hammer": "not measured (its nearest, an entrypoint's concurrency_limit)",
        "due-start": "not measured (Conveyor's due-time wake-ups)",
    }
    template = "bench_pgqueuer"

    def unavailable(self) -> str | None:
        return None if importable("pgqueuer") else "pgqueuer is not installed"

    def settings(self) -> dict[str, Any]:
        return {
            "producer": "Queries.enqueue (lists for a batch), one asyncpg connection each",
            "worker": (
                f"QueueManager.run(batch_size={BATCH_SIZE}) on one asyncpg connection; "
                "drain: mode=drain; durability: durable (all tables logged, the default)"
            ),
            "jobs kept": "moved to pgqueuer_log (the queue row is deleted)",
        }

    async def prepare(self) -> None:
        await self.infra.postgres.create_template(self.template)
        connection = await asyncpg.connect(self.infra.postgres.url(self.template))
        try:
            await queries_on(connection).install()
        finally:
            await connection.close()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[PgQueuerSession]:
        async with fresh_postgres_database(self.infra, self.template) as database:
            yield PgQueuerSession(self.infra.postgres.url(database), database)

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()
