"""What the capacity and due-time scenarios share: Conveyor workers in this process, a
database of a run opened as a Conveyor store, figures read back from its tables, and
PostgreSQL's statement counters by statement.

Figures come from the database (`created_at`, `run_at`, `started_at`, events), on its
clock: PostgreSQL's `now()` (the transaction's start) or, on SQLite, this process's
`time.time()` when the statement ran. One machine, one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from bench.infra import Postgres
from bench.measure import Starts, percentile
from conveyor.bus.postgres import PostgresListener
from conveyor.bus.work import WorkSignal
from conveyor.domain.events import Event
from conveyor.domain.jobs import JobSpec
from conveyor.server import ROOM_EVENTS
from conveyor.service.claims import Scope
from conveyor.service.jobs import JobService
from conveyor.store import Store, open_store
from conveyor.store.connection import Row
from conveyor.store.urls import DatabaseURL
from conveyor.worker import Handlers, Worker, WorkerOptions
from conveyor.worker.inprocess import ServiceBackend
from conveyor.worker.options import WorkerStats

WORKER_POOL = 10
"""Connections of a worker's own store (as `bench.systems.conveyor`)."""
FILL_BATCH = 500


def wake_on_room(store: Store, signal: WorkSignal) -> None:
    """On SQLite, wake `signal`'s claimers when a job leaves RUNNING (room may have appeared
    under a limit), as `conveyor serve` wires its store (on PostgreSQL a trigger NOTIFYs)."""
    if store.url.kind != "sqlite":
        return

    def committed(written: Sequence[Event]) -> None:
        for workspace_id in {event.workspace_id for event in written if event.type in ROOM_EVENTS}:
            signal.notify(workspace_id)

    store.jobs.on_committed = committed


def embedded_service(store: Store) -> JobService:
    """A `JobService` as `conveyor serve` makes it, for producers and in-process workers
    sharing one store (embedded SQLite)."""
    signal = WorkSignal()
    wake_on_room(store, signal)
    return JobService(store, work_signal=signal)


class WorkerPool:
    """A `conveyor.worker.Worker` in this process on a `ServiceBackend` over `scope`.

    Without `service`: on a store of its own (what a worker process of its own does), woken
    by LISTEN/NOTIFY on PostgreSQL; on SQLite, which has no wake-ups between processes, by
    `signal` (give several pools one signal: the stores of one server process). With
    `service`: on that one (embedded SQLite: producers and workers share one store)."""

    def __init__(
        self,
        url: DatabaseURL,
        scope: Scope,
        handlers: Handlers,
        options: WorkerOptions,
        *,
        service: JobService | None = None,
        signal: WorkSignal | None = None,
        pool_size: int = WORKER_POOL,
    ) -> None:
        self.url = url
        self.scope = scope
        self.handlers = handlers
        self.options = options
        self.pool_size = pool_size
        self._given = service
        self._signal = signal
        self._store: Store | None = None
        self._listener: PostgresListener | None = None
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        service = self._given
        if service is None:
            signal = self._signal or WorkSignal()
            self._store = await open_store(self.url, pool_size=self.pool_size)
            if self.url.kind == "postgresql":
                self._listener = PostgresListener(self.url.url, signal)
                await self._listener.start()
            wake_on_room(self._store, signal)
            service = JobService(self._store, work_signal=signal)
        self._worker = Worker(ServiceBackend(service, self.scope), self.handlers, self.options)
        self._task = asyncio.create_task(self._worker.run(), name=f"bench-{self.options.worker_id}")

    @property
    def stats(self) -> WorkerStats:
        assert self._worker is not None, "start() first"
        return self._worker.stats

    def raise_if_dead(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()
            raise RuntimeError(f"worker {self.options.worker_id} stopped by itself")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._task is not None:
            await self._task
        if self._listener is not None:
            await self._listener.stop()
        if self._store is not None:
            await self._store.close()
        self._worker = self._task = self._listener = self._store = None


async def wait_for(
    check: Callable[[], bool],
    pools: Sequence[WorkerPool],
    *,
    within: float,
    what: str,
    interval: float = 0.005,
) -> None:
    """Wait until `check()`; fail when a worker died or `within` seconds went by."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        for pool in pools:
            pool.raise_if_dead()
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def drain(pool: WorkerPool, starts: Starts, count: int, within: float) -> float:
    """Start `pool` on `count` queued jobs; the seconds from the first handler start to the
    moment it had `count` completions recorded (as the `drain` scenario's consumer)."""
    async with started([pool]):
        await wait_for(
            lambda: pool.stats.completed >= count, [pool], within=within, what=f"{count} jobs"
        )
        end = time.time()
    if len(starts) != count:
        raise RuntimeError(f"{len(starts)} of {count} jobs started")
    return end - starts.first


@contextlib.asynccontextmanager
async def started(pools: Sequence[WorkerPool]) -> AsyncIterator[Sequence[WorkerPool]]:
    """Start the pools; stop every one of them on the way out, whatever happened."""
    try:
        for pool in pools:
            await pool.start()
        yield pools
    finally:
        for pool in pools:
            with contextlib.suppress(Exception):
                await pool.stop()


async def fill(
    service: JobService, workspace_id: UUID, actor: str, specs: Iterable[JobSpec]
) -> list[UUID]:
    """Create the jobs in calls of `FILL_BATCH` (not timed); their ids, in order."""
    ids: list[UUID] = []
    batch: list[JobSpec] = []
    for spec in specs:
        batch.append(spec)
        if len(batch) == FILL_BATCH:
            ids += [job.id for job, _ in await service.create_jobs(workspace_id, batch, actor)]
            batch = []
    if batch:
        ids += [job.id for job, _ in await service.create_jobs(workspace_id, batch, actor)]
    return ids


async def fetch(store: Store, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
    """A read of the run's tables (the harness's own SQL: it reads, it does not run
    Conveyor's queries)."""
    async with store.database.read() as connection:
        return await connection.fetch(sql, params)


def seconds(store: Store, value: Any) -> float:
    """A timestamp column as Unix seconds."""
    moment: datetime = store.database.codec.timestamp(value)
    return moment.timestamp()


def spread_ms(values_ms: Sequence[float], prefix: str = "") -> dict[str, float]:
    """p50, p99 (nearest rank) and max of a sample, in ms."""
    return {
        f"{prefix}p50_ms": percentile(values_ms, 0.50),
        f"{prefix}p99_ms": percentile(values_ms, 0.99),
        f"{prefix}max_ms": max(values_ms) if values_ms else float("nan"),
    }


# -- PostgreSQL's counters by statement -----------------------------------------------------

STATEMENT_LABELS: tuple[tuple[str, str], ...] = (
    # (a fragment only that statement's text holds, its name in conveyor/store/sql)
    ("AS unkeyed", "claim_plan"),
    ("WITH RECURSIVE later", "claimable_keys"),
    ("WITH picked AS", "claim_groups"),
    ("WITH chosen AS", "claim_chosen"),
    ("FOR UPDATE SKIP LOCKED", "group_picks"),
    ("DELETE FROM limit_leaves", "fold_limit_leaves"),
    ("AS now, l.running", "limit_states"),
    ("JOIN limit_starts s", "recent_starts"),
    ("DELETE FROM limit_starts", "forget_old_starts"),
    ("pg_advisory_xact_lock", "take_claim_locks"),
    ("AS due,", "next_due"),
    ("jsonb_to_recordset", "complete_jobs"),
    ("INSERT INTO jobs", "insert_jobs"),
    ("UPDATE workers", "workers"),
)


def statement_label(text: str) -> str:
    for fragment, label in STATEMENT_LABELS:
        if fragment in text:
            return label
    return " ".join(text.split())[:60]


@dataclass(frozen=True, slots=True)
class StatementCost:
    label: str
    calls: int
    total_ms: float
    rows: int

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    def as_json(self, jobs: int) -> dict[str, Any]:
        return {
            "statement": self.label,
            "calls": self.calls,
            "total_ms": round(self.total_ms, 1),
            "mean_ms": round(self.mean_ms, 3),
            "rows": self.rows,
            "calls_per_1000_jobs": round(1000 * self.calls / jobs, 2) if jobs else None,
        }


async def statement_costs(postgres: Postgres, database: str) -> list[StatementCost]:
    """`pg_stat_statements` of one database since the last reset, summed by statement name
    (time executing in the server, lock waits included), most expensive first."""
    connection = await asyncpg.connect(postgres.admin_url)
    try:
        rows = await connection.fetch(
            "SELECT s.query, s.calls, s.total_exec_time, s.rows FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
            database,
        )
    finally:
        await connection.close()
    summed: dict[str, list[float]] = {}
    for row in rows:
        totals = summed.setdefault(statement_label(row["query"]), [0, 0.0, 0])
        totals[0] += row["calls"]
        totals[1] += row["total_exec_time"]
        totals[2] += row["rows"]
    costs = [
        StatementCost(label, int(calls), float(total), int(count))
        for label, (calls, total, count) in summed.items()
    ]
    return sorted(costs, key=lambda cost: cost.total_ms, reverse=True)
