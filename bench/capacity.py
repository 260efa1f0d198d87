"""The capacity scenarios (Conveyor only; in-process workers, PostgreSQL and SQLite).

* `noisy-neighbour`: workspace A holds `plan.noisy_jobs` queued no-op jobs; one pool of
  `plan.noisy_slots` slots serving every workspace (`ServiceBackend(service, None)`)
  drains them. Once it has completed `plan.noisy_head_start` of them, workspace B creates
  `plan.noisy_b_jobs` jobs in one call. Figures: B's jobs' wait (`created_at` ->
  `started_at`, from the database) p50/p99/max, and how many of A's jobs started after
  B's were created and before B's last started. `fair_*` is that; `fifo_*` the same jobs
  with B's created in A's workspace: one queue, in the order a FIFO job queue takes them
  (priority, due time), which is what a queue without fair claims gives a shared pool.
* `claim-keys`: `plan.jobs` queued no-op jobs drained by the same worker as `drain` (its
  slots, its own store), three ways, each on a fresh database, in one run: `plain` (no
  concurrency key, no limit), `keys` (`plan.keys` distinct keys, no limits: the cost of
  fair turns between keys) and `limits` (the same keys, each a limit of
  `max_running: plan.keys_max_running`: the cost of admission under the claim lock).
  Figures: jobs/s of each and each over `plain`; the details hold the harness process's
  CPU seconds during each drain (the worker's, and on SQLite the database's too: near the
  wall time there, less than half of it on PostgreSQL). On PostgreSQL the details hold
  `pg_stat_statements` by statement (calls, server time) for each. The database is
  ANALYZEd after the fill (`plan.keys_analyze`, `--no-analyze` to drain without): without
  statistics both databases plan the group reads on `ix_jobs_due` (docs/benchmarks.md),
  and the figures would measure when autovacuum happens to run.
* `claim-tenants`: the same three ways over `plan.tenants` workspaces, `plan.jobs` jobs and
  `plan.keys` keys shared out evenly among them, drained by one worker serving every
  workspace (an instance worker: `ServiceBackend(service, None)`, as `conveyor serve`'s
  own): what a shared pool's claims and completions cost across tenants.
* `limit-hammer`: one limit of `max_running: plan.hammer_max_running`, `plan.hammer_jobs`
  jobs of its key, `plan.hammer_workers` `Worker`s of `plan.hammer_slots` slots each, each
  on its own store (its own connection pool and, on PostgreSQL, its own LISTEN
  connection), all in this process. Figures: the most RUNNING jobs of the key ever seen
  (a) by a monitor process counting them as fast as it can, (b) rebuilt from the
  `job.started` and ending events (`job.completed`, …), by their timestamps, and (c) by
  the order the events were written (their ids).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from bench.infra import Infra
from bench.measure import Starts
from bench.plan import Plan
from bench.pools import (
    WORKER_POOL,
    WorkerPool,
    drain,
    embedded_service,
    fetch,
    fill,
    seconds,
    spread_ms,
    started,
    statement_costs,
    wait_for,
)
from bench.process import start_child
from bench.systems.base import JOB_TYPE, System
from bench.systems.conveyor import (
    PRODUCER_POOL,
    InProcessSession,
    noop_handlers,
    worker_options,
)
from conveyor.bus.work import WorkSignal
from conveyor.domain import events as event_types
from conveyor.domain.jobs import JobSpec
from conveyor.domain.status import LEASED_STATUS
from conveyor.service.jobs import JobService
from conveyor.service.limits import LimitService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.worker import Handlers, JobContext

B_BASE = 1_000_000
"""B's jobs' indexes (payload `i`), apart from A's."""
HAMMER_KEY = "hammered"
HAMMER_POOL = 5
"""Connections of each hammering worker's store."""
ENDS_RUNNING = frozenset(
    {
        event_types.JOB_COMPLETED,
        event_types.JOB_FAILED,
        event_types.JOB_RETRYING,
        event_types.JOB_RELEASED,
        event_types.JOB_LEASE_EXPIRED,
        event_types.JOB_CANCELLED,
    }
)
"""Events written in the transaction that moves a job out of RUNNING."""

_turns: dict[str, Iterator[int]] = {}


def _rotated(scenario: str, variants: list[str]) -> list[str]:
    """The variants of one run, in an order that rotates from run to run."""
    turn = next(_turns.setdefault(scenario, itertools.count()))
    shift = turn % len(variants)
    return variants[shift:] + variants[:shift]


def _session(session: Any) -> InProcessSession:
    if not isinstance(session, InProcessSession):
        raise TypeError(f"{type(session).__name__}: the capacity scenarios run in-process")
    return session


def _noop(index: int, key: str | None = None) -> JobSpec:
    return JobSpec(type=JOB_TYPE, payload={"i": index}, concurrency_key=key)


# -- noisy-neighbour ------------------------------------------------------------------------

NOISY_FIGURES = ("p50_ms", "p99_ms", "max_ms", "a_between")


async def noisy_neighbour(
    system: System, infra: Infra, plan: Plan
) -> tuple[dict[str, float], dict[str, Any]]:
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    for variant in _rotated("noisy-neighbour", ["fair", "fifo"]):
        figures = await _noisy_run(system, plan, fair=variant == "fair")
        details[variant] = figures
        metrics.update({f"{variant}_{name}": figures[name] for name in NOISY_FIGURES})
    details["order"] = list(details)
    return metrics, details


async def _noisy_run(system: System, plan: Plan, *, fair: bool) -> dict[str, Any]:
    async with system.session() as opened:
        session = _session(opened)
        store = await open_store(session.url, pool_size=PRODUCER_POOL)
        try:
            sqlite = session.url.kind == "sqlite"
            service = embedded_service(store) if sqlite else JobService(store)
            actor = session.keys.actor
            a = session.keys.workspace_id
            b = (await WorkspaceService(store).create_workspace("bench-b")).id if fair else a
            await fill(service, a, actor, (_noop(i) for i in range(plan.noisy_jobs)))
            starts = Starts()
            pool = WorkerPool(
                session.url,
                None,
                noop_handlers(starts),
                worker_options(plan.noisy_slots, plan, "bench-shared-pool"),
                service=service if sqlite else None,
            )
            b_indexes = range(B_BASE, B_BASE + plan.noisy_b_jobs)
            async with started([pool]):
                await wait_for(
                    lambda: pool.stats.completed >= plan.noisy_head_start,
                    [pool],
                    within=plan.timeout_seconds,
                    what=f"{plan.noisy_head_start} of A's jobs",
                )
                created = time.time()
                b_ids = set(await fill(service, b, actor, (_noop(i) for i in b_indexes)))
                await wait_for(
                    lambda: all(i in starts.at for i in b_indexes),
                    [pool],
                    within=plan.timeout_seconds,
                    what="B's jobs to start",
                )
                b_done = time.time()
            rows = await fetch(
                store,
                "SELECT id, created_at, started_at FROM jobs WHERE started_at IS NOT NULL",
            )
            return _noisy_figures(store, rows, b_ids, b_done - created, starts.duplicates)
        finally:
            await store.close()


def _noisy_figures(
    store: Store, rows: list[Any], b_ids: set[UUID], wall: float, duplicates: int
) -> dict[str, Any]:
    codec = store.database.codec
    b_jobs = [
        (seconds(store, row["created_at"]), seconds(store, row["started_at"]))
        for row in rows
        if codec.uuid(row["id"]) in b_ids
    ]
    if len(b_jobs) != len(b_ids):
        raise RuntimeError(f"{len(b_jobs)} of B's {len(b_ids)} jobs started")
    a_starts = [
        seconds(store, row["started_at"]) for row in rows if codec.uuid(row["id"]) not in b_ids
    ]
    b_created = min(created for created, _ in b_jobs)
    b_last = max(start for _, start in b_jobs)
    waits = [(start - created) * 1000 for created, start in b_jobs]
    return {
        **spread_ms(waits),
        "a_between": float(sum(1 for start in a_starts if b_created <= start < b_last)),
        "a_before_b_last": sum(1 for start in a_starts if start < b_last),
        "a_started": len(a_starts),
        "b_first_ms": min(waits),
        "b_created_to_last_start_wall_s": wall,
        "duplicate_starts": duplicates,
    }


# -- claim-keys -----------------------------------------------------------------------------

KEY_VARIANTS = ("plain", "keys", "limits")


async def claim_keys(
    system: System, infra: Infra, plan: Plan
) -> tuple[dict[str, float], dict[str, Any]]:
    return await _key_variants("claim-keys", system, infra, plan, tenants=1)


async def claim_tenants(
    system: System, infra: Infra, plan: Plan
) -> tuple[dict[str, float], dict[str, Any]]:
    return await _key_variants("claim-tenants", system, infra, plan, tenants=plan.tenants)


async def _key_variants(
    scenario: str, system: System, infra: Infra, plan: Plan, *, tenants: int
) -> tuple[dict[str, float], dict[str, Any]]:
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    for variant in _rotated(scenario, list(KEY_VARIANTS)):
        figures = await _keys_run(system, infra, plan, variant, tenants)
        details[variant] = figures
        metrics[f"{variant}_jobs_per_s"] = figures["jobs_per_s"]
    details["order"] = list(details)
    for variant in KEY_VARIANTS[1:]:
        metrics[f"{variant}_ratio"] = metrics[f"{variant}_jobs_per_s"] / metrics["plain_jobs_per_s"]
    return metrics, details


def _key_of(variant: str, keys: int, tenant: int) -> Any:
    if variant == "plain":
        return lambda index: None
    return lambda index: f"key-{tenant:03d}-{index % keys:05d}"


async def _keys_run(
    system: System, infra: Infra, plan: Plan, variant: str, tenants: int
) -> dict[str, Any]:
    """One variant's drain: `tenants` workspaces (the session's and more) each get their
    share of the jobs and keys; with more than one, the worker serves every workspace."""
    postgres = infra.postgres
    jobs, keys = plan.jobs // tenants, max(1, plan.keys // tenants)
    async with system.session() as opened:
        session = _session(opened)
        store = await open_store(session.url, pool_size=PRODUCER_POOL)
        try:
            workspaces = [session.keys.workspace_id] + [
                (await WorkspaceService(store).create_workspace(f"bench-t{n}")).id
                for n in range(1, tenants)
            ]
            limits = LimitService(store, WorkSignal())
            for tenant, workspace_id in enumerate(workspaces):
                key_of = _key_of(variant, keys, tenant)
                first = tenant * jobs  # payload indexes stay distinct across workspaces
                specs = (_noop(first + i, key_of(i)) for i in range(jobs))
                await fill(JobService(store), workspace_id, session.keys.actor, specs)
                if variant == "limits":
                    for number in range(keys):
                        await limits.put(
                            workspace_id,
                            key_of(number),
                            max_running=plan.keys_max_running,
                            rate=None,
                            paused=False,
                        )
            if plan.keys_analyze:
                async with store.database.write() as connection:
                    await connection.execute("ANALYZE")
        finally:
            await store.close()
        await session.quiesce()
        database = session.database
        if database is not None:
            await postgres.wait_idle(database)
            await postgres.reset_statements()
        starts = Starts()
        store = await open_store(session.url, pool_size=WORKER_POOL)
        try:
            sqlite = session.url.kind == "sqlite"
            pool = WorkerPool(
                session.url,
                workspaces[0] if tenants == 1 else None,
                noop_handlers(starts),
                session.worker,
                service=embedded_service(store) if sqlite else None,
            )
            cpu = time.process_time()
            elapsed = await drain(pool, starts, jobs * tenants, plan.timeout_seconds)
            cpu = time.process_time() - cpu
        finally:
            await store.close()
        figures: dict[str, Any] = {
            "jobs_per_s": jobs * tenants / elapsed,
            "seconds": elapsed,
            "harness_cpu_seconds": cpu,
            "duplicate_starts": starts.duplicates,
            "slots": session.worker.concurrency,
            "analyzed_after_fill": plan.keys_analyze,
        }
        if database is not None:
            await postgres.wait_idle(database)
            costs = await statement_costs(postgres, database)
            figures["statements_per_job"] = sum(cost.calls for cost in costs) / (jobs * tenants)
            figures["statements"] = [cost.as_json(jobs * tenants) for cost in costs[:16]]
        completed = await session.count_completed()
    if completed is not None and completed < jobs * tenants:
        raise RuntimeError(f"{variant}: {completed} of {jobs * tenants} jobs completed")
    return figures


# -- limit-hammer ---------------------------------------------------------------------------


def _working_handlers(starts: Starts, most_seconds: float) -> Handlers:
    """`JOB_TYPE`'s handler: notes its start, then sleeps a uniform 0..`most_seconds`."""
    handlers = Handlers()
    rng = random.Random(0)

    async def work(job: JobContext) -> None:
        starts.record(int(job.payload["i"]))
        await asyncio.sleep(rng.uniform(0, most_seconds))

    handlers.add(JOB_TYPE, work)
    return handlers


class Monitor:
    """`bench.limit_monitor` in a process of its own."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, workspace_id: UUID, key: str) -> Monitor:
        process = await start_child(
            "bench.limit_monitor", url, str(workspace_id), key, LEASED_STATUS.value
        )
        monitor = cls(process)
        if await monitor._line(30) != "ready":
            await monitor.kill()
            raise RuntimeError("the RUNNING monitor did not start")
        return monitor

    async def _line(self, within: float) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), within)
        return raw.decode().strip()

    async def stop(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        report: dict[str, Any] = json.loads(await self._line(30))
        await asyncio.wait_for(self.process.wait(), 10)
        return report

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def limit_hammer(
    system: System, infra: Infra, plan: Plan
) -> tuple[dict[str, float], dict[str, Any]]:
    async with system.session() as opened:
        session = _session(opened)
        workspace_id = session.keys.workspace_id
        store = await open_store(session.url, pool_size=PRODUCER_POOL)
        monitor: Monitor | None = None
        try:
            await LimitService(store, WorkSignal()).put(
                workspace_id,
                HAMMER_KEY,
                max_running=plan.hammer_max_running,
                rate=None,
                paused=False,
            )
            specs = (_noop(i, HAMMER_KEY) for i in range(plan.hammer_jobs))
            await fill(JobService(store), workspace_id, session.keys.actor, specs)
            starts = Starts()
            handlers = _working_handlers(starts, plan.hammer_work_ms / 1000)
            # SQLite has no wake-ups between processes: the workers' stores share the
            # signal of one server process (PostgreSQL: each its own LISTEN connection).
            signal = WorkSignal() if session.url.kind == "sqlite" else None
            pools = [
                WorkerPool(
                    session.url,
                    workspace_id,
                    handlers,
                    worker_options(plan.hammer_slots, plan, f"bench-hammer-{number}"),
                    signal=signal,
                    pool_size=HAMMER_POOL,
                )
                for number in range(plan.hammer_workers)
            ]
            monitor = await Monitor.start(session.url.url, workspace_id, HAMMER_KEY)
            began = time.perf_counter()
            async with started(pools):
                await wait_for(
                    lambda: sum(pool.stats.completed for pool in pools) >= plan.hammer_jobs,
                    pools,
                    within=plan.timeout_seconds,
                    what=f"{plan.hammer_jobs} completions",
                    interval=0.02,
                )
                elapsed = time.perf_counter() - began
            seen = await monitor.stop()
            monitor = None
            rows = await fetch(
                store,
                "SELECT e.id, e.job_id, e.type, e.created_at FROM events e "
                "JOIN jobs j ON j.id = e.job_id "
                "WHERE j.workspace_id = :ws AND j.concurrency_key = :key",
                {"ws": workspace_id, "key": HAMMER_KEY},
            )
        finally:
            if monitor is not None:
                await monitor.kill()
            await store.close()
    by_time, by_order, runs, early = _overlaps(store, rows)
    metrics = {
        "max_polled": float(seen["max"]),
        "max_by_time": float(by_time),
        "max_by_order": float(by_order),
        "jobs_per_s": plan.hammer_jobs / elapsed,
        "polls_per_s": float(seen["polls_per_s"]),
    }
    details = {
        "monitor": seen,
        "runs_rebuilt": runs,
        "seconds": elapsed,
        "handled": len(starts),
        "duplicate_starts": starts.duplicates,
        "workers": (
            f"{plan.hammer_workers} Worker instances in the harness process, each on its "
            f"own store (pool {HAMMER_POOL}"
            + (
                ", its own LISTEN connection)"
                if session.url.kind == "postgresql"
                else "; one in-process wake-up signal, as one server process)"
            )
        ),
        "starts_stamped_before_an_earlier_end": early,
    }
    return metrics, details


def _overlaps(store: Store, rows: list[Any]) -> tuple[int, int, int, dict[str, float]]:
    """The most jobs RUNNING at once, rebuilt from each job's `job.started` and the event
    that ended that run: sorted by timestamp (ties by id), and by id alone (the order the
    events were inserted: on PostgreSQL a sequence, drawn while the writer holds what it
    wrote). Also how many runs it found, and how many starts carry a timestamp earlier than
    an end written before them (by id), by how much at most."""
    by_job: dict[Any, list[tuple[int, str, float]]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"], []).append(
            (int(row["id"]), row["type"], seconds(store, row["created_at"]))
        )
    marks: list[tuple[float, int, int]] = []  # (time, id, +1 start / -1 end)
    runs = 0
    for found in by_job.values():
        found.sort()
        running = False
        for event_id, kind, at in found:
            if kind == event_types.JOB_STARTED:
                if running:
                    raise RuntimeError("a job started twice without ending between")
                running = True
                runs += 1
                marks.append((at, event_id, 1))
            elif kind in ENDS_RUNNING and running:
                running = False
                marks.append((at, event_id, -1))
    in_order = sorted(marks, key=lambda mark: mark[1])
    latest_end = float("-inf")
    early = 0
    most_ms = 0.0
    for at, _, delta in in_order:
        if delta < 0:
            latest_end = max(latest_end, at)
        elif at < latest_end:
            early += 1
            most_ms = max(most_ms, (latest_end - at) * 1000)
    return (
        _sweep(sorted(marks, key=lambda mark: (mark[0], mark[1]))),
        _sweep(in_order),
        runs,
        {"count": float(early), "most_ms": most_ms},
    )


def _sweep(marks: list[tuple[float, int, int]]) -> int:
    level = highest = 0
    for _, _, delta in marks:
        level += delta
        highest = max(highest, level)
    return highest
