"""Months, not minutes: what a long history costs Conveyor, and a soak with retention 0.

    python -m bench.lifetime [--quick] [--only history soak] [--backends postgresql sqlite]
                             [--history-jobs N] [--soak-jobs N] [--out FILE]

`history`: two databases in the same run, one empty and one filled the way months of use
would fill it (several million finished jobs with their events, inserted directly by the
database itself: `generate_series` on PostgreSQL, a recursive CTE on SQLite, in the same
workspace the measurements use). On each, the same measurements, rounds alternating between
the two: the drain rate of the in-process worker; over HTTP on a `conveyor serve` (retention
off, so nothing is pruned under the measurement), the latency of single creates, of a
list's first page, of a page deep in the list by cursor, of the first page of failed jobs,
of a job read, of resuming a workspace stream a few dozen events back and of replaying a
finished job's stream. Each figure is the median of the rounds' p95 (drain: median rate),
and the ratio full / empty. Then, on the full database, a pass of the pruner deleting the
oldest third of the history while a drain runs beside it: how fast it deletes, whether the
drain slows, and what the tables weigh before and after.

`soak`: jobs through in rounds (fill the queue, drain it) with retention 0 and the pruner
running every second in a `conveyor serve` beside the worker: the drain rate of each round,
the tables' size and rows after each, and the drain rate's slope over the run. On
PostgreSQL twice: with migration 0014's per-table autovacuum settings, and with them reset
to PostgreSQL's defaults.

Measurement only, as `bench.run`: nothing passes or fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from bench.infra import Infra, Postgres, machine_facts
from bench.measure import percentile
from bench.plan import Plan
from bench.run import git_revision, settle_heap
from bench.systems.conveyor import (
    WORKSPACE,
    ConveyorPostgres,
    ConveyorServer,
    ConveyorSqlite,
    ConveyorSystem,
    InProcessSession,
)
from conveyor.client.sse import parse_lines_async
from conveyor.domain.job_lists import ListCursor
from conveyor.store import Store, open_store
from conveyor.store.tables import QUEUE_TABLE_STORAGE
from conveyor.store.urls import DatabaseURL

REPO = Path(__file__).resolve().parents[1]
KEEP_EVERYTHING = {
    "CONVEYOR_RETENTION_COMPLETED_DAYS": "forever",
    "CONVEYOR_RETENTION_FAILED_DAYS": "forever",
    "CONVEYOR_RETENTION_CANCELLED_DAYS": "forever",
}
"""The measured servers keep every job: their pruner must not delete the history under the
measurement (the prune pass is measured on its own)."""
RESUME_EVENTS = 40
"""A workspace stream resumes this many events back from the newest."""
QUEUE_TABLES = ("jobs", "events", "steps")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class LifetimePlan:
    quick: bool = False
    history_jobs: int = 3_000_000
    history_days: int = 90
    drain_jobs: int = 20_000
    rounds: int = 5
    samples: int = 200
    """Requests per latency figure per round."""
    deep_offset: int = 1_000_000
    """How deep (jobs from the newest) the cursor page reads in the full database; in the
    empty one, half the jobs it has."""
    recent_failures: int = 12_000
    """Drained jobs made FAILED in both databases before the HTTP rounds (more than a
    list's exact count reads)."""
    prune_keep_days: int = 60
    """The prune pass keeps this many days of the history (deleting the rest)."""
    soak_jobs: int = 600_000
    soak_round_jobs: int = 20_000
    prune_interval_seconds: float = 1.0
    backends: tuple[str, ...] = ("postgresql", "sqlite")
    scenarios: tuple[str, ...] = ("history", "soak")

    @classmethod
    def quick_plan(cls) -> LifetimePlan:
        return cls(
            quick=True,
            history_jobs=6_000,
            drain_jobs=400,
            rounds=1,
            samples=10,
            deep_offset=3_000,
            soak_jobs=800,  # two rounds: the fewest a slope is drawn through
            soak_round_jobs=400,
            recent_failures=100,
        )


# -- filling a database with months of history ------------------------------------------------

POSTGRES_FILL = """
WITH new_jobs AS (
    INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error,
        error_detail, progress_percent, agent_task_id, attempt, max_attempts, run_at,
        idempotency_key, worker_id, lease_id, lease_expires_at, retry_of, retry_backoff_seconds,
        retry_backoff_max_seconds, created_at, started_at, completed_at, updated_at, version,
        last_event_seq, last_step_ordinal, concurrency_key, timeout_seconds)
    SELECT
        (lpad(to_hex(floor(extract(epoch FROM h.created_at) * 1000)::bigint), 12, '0') || '7'
            || lpad(to_hex(g % 4096), 3, '0') || '8' || lpad(to_hex(g), 15, '0'))::uuid,
        $1, 'history.' || (g % 5), h.status, 5, jsonb_build_object('i', g),
        CASE WHEN h.status = 'COMPLETED' THEN '{"ok": true}'::jsonb END,
        CASE WHEN h.status = 'FAILED' THEN 'upstream refused request ' || g END, NULL,
        CASE WHEN h.status = 'COMPLETED' THEN 100 ELSE 0 END, NULL, 1, 1, h.created_at, NULL,
        'history-worker-' || (g % 8), NULL, NULL, NULL, 1, 300,
        h.created_at, h.created_at + interval '1 second', h.created_at + interval '2 seconds',
        h.created_at + interval '2 seconds', 3, 4, 0, 'customer-' || (g % 1000), NULL
    FROM generate_series($2::bigint, $3::bigint - 1) AS g
    CROSS JOIN LATERAL (
        SELECT now() - make_interval(secs => $5::float8 * 86400 * (1 - g::float8 / $4))
                AS created_at,
            CASE WHEN g % 100 < 90 THEN 'COMPLETED' WHEN g % 100 < 97 THEN 'FAILED'
                ELSE 'CANCELLED' END AS status
    ) h
    RETURNING id, workspace_id, type, status, created_at
)
INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload, created_at)
SELECT n.id, n.workspace_id, n.type, s.seq, NULL,
    CASE s.seq WHEN 1 THEN 'job.created' WHEN 2 THEN 'job.queued' WHEN 3 THEN 'job.started'
        ELSE CASE n.status WHEN 'COMPLETED' THEN 'job.completed' WHEN 'FAILED' THEN 'job.failed'
            ELSE 'job.cancelled' END END,
    'system', '{}'::jsonb, n.created_at + make_interval(secs => s.seq * 0.5)
FROM new_jobs n CROSS JOIN generate_series(1, 4) AS s(seq)
ORDER BY n.created_at, n.id, s.seq
"""

SQLITE_ROWS = """
WITH RECURSIVE g(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM g WHERE n < :last),
history AS (
    SELECT n, :now - :days * 86400.0 * (1 - n * 1.0 / :total) AS created_at,
        CASE WHEN n % 100 < 90 THEN 'COMPLETED' WHEN n % 100 < 97 THEN 'FAILED'
            ELSE 'CANCELLED' END AS status
    FROM g
), named AS (
    SELECT n, created_at, status, 'history.' || (n % 5) AS type,
        printf('%08x-%04x-7%03x-8%03x-%012x',
            CAST(created_at * 1000 AS INTEGER) / 65536,
            CAST(created_at * 1000 AS INTEGER) % 65536, n % 4096, (n / 4096) % 4096, n) AS id
    FROM history
)
"""
SQLITE_FILL_JOBS = (
    SQLITE_ROWS
    + """
INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error, error_detail,
    progress_percent, agent_task_id, attempt, max_attempts, run_at, idempotency_key, worker_id,
    lease_id, lease_expires_at, retry_of, retry_backoff_seconds, retry_backoff_max_seconds,
    created_at, started_at, completed_at, updated_at, version, last_event_seq, last_step_ordinal,
    concurrency_key, timeout_seconds)
SELECT id, :ws, type, status, 5, json_object('i', n),
    CASE WHEN status = 'COMPLETED' THEN '{"ok": true}' END,
    CASE WHEN status = 'FAILED' THEN 'upstream refused request ' || n END, NULL,
    CASE WHEN status = 'COMPLETED' THEN 100 ELSE 0 END, NULL, 1, 1, created_at, NULL,
    'history-worker-' || (n % 8), NULL, NULL, NULL, 1, 300, created_at, created_at + 1,
    created_at + 2, created_at + 2, 3, 4, 0, 'customer-' || (n % 1000), NULL
FROM named ORDER BY n
"""
)
SQLITE_FILL_EVENTS = (
    SQLITE_ROWS
    + """
, seqs(seq) AS (VALUES (1), (2), (3), (4))
INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload, created_at,
    tx)
SELECT id, :ws, type, seq, NULL,
    CASE seq WHEN 1 THEN 'job.created' WHEN 2 THEN 'job.queued' WHEN 3 THEN 'job.started'
        ELSE CASE status WHEN 'COMPLETED' THEN 'job.completed' WHEN 'FAILED' THEN 'job.failed'
            ELSE 'job.cancelled' END END,
    'system', '{}', created_at + seq * 0.5, 0
FROM named CROSS JOIN seqs ORDER BY n, seq
"""
)
FILL_CHUNK = 250_000


async def fill_postgres(url: str, workspace_id: UUID, plan: LifetimePlan) -> None:
    connection = await asyncpg.connect(url)
    try:
        # Bulk history announces nothing (no listener would care): no NOTIFY triggers.
        await connection.execute("SET session_replication_role = replica")
        for first in range(0, plan.history_jobs, FILL_CHUNK):
            last = min(first + FILL_CHUNK, plan.history_jobs)
            await connection.execute(
                POSTGRES_FILL,
                workspace_id,
                first,
                last,
                float(plan.history_jobs),
                float(plan.history_days),
                timeout=None,
            )
        # A database months old has been vacuumed and analyzed by autovacuum long since.
        for table in ("jobs", "events"):
            await connection.execute(f"VACUUM (ANALYZE) {table}", timeout=None)
    finally:
        await connection.close()


def fill_sqlite(path: Path, workspace_id: UUID, plan: LifetimePlan) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = OFF")
        now = time.time()
        for first in range(0, plan.history_jobs, FILL_CHUNK):
            params = {
                "first": first,
                "last": min(first + FILL_CHUNK, plan.history_jobs) - 1,
                "now": now,
                "days": float(plan.history_days),
                "total": float(plan.history_jobs),
                "ws": str(workspace_id),
            }
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(SQLITE_FILL_JOBS, params)
            connection.execute(SQLITE_FILL_EVENTS, params)
            connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


# -- how the database runs the statements that must not grow with the history ------------------


async def explain_plans(url: DatabaseURL, workspace_id: UUID, deep: int) -> dict[str, str]:
    """The plans of the statements whose cost must stay flat, composed exactly as the code
    composes them: PostgreSQL's EXPLAIN (ANALYZE, BUFFERS), SQLite's EXPLAIN QUERY PLAN."""
    from conveyor.domain.job_lists import JobFilter
    from conveyor.domain.status import UNFINISHED_STATUSES, JobStatus
    from conveyor.store.job_lists import filter_conditions
    from conveyor.store.queries import queries_for

    queries = queries_for(url.kind)

    def where(job_filter: JobFilter) -> tuple[str, dict[str, Any]]:
        conditions, params = filter_conditions(job_filter)
        return " AND ".join(["workspace_id = :ws", *conditions]), {**params, "ws": workspace_id}

    everything, params = where(JobFilter())
    failed, failed_params = where(JobFilter(statuses=frozenset({JobStatus.FAILED})))
    unfinished, unfinished_params = where(JobFilter(statuses=UNFINISHED_STATUSES))
    queued, queued_params = where(JobFilter(statuses=frozenset({JobStatus.QUEUED})))
    store = await open_store(url, pool_size=1)
    try:
        async with store.database.read() as connection:
            newest = await connection.fetchrow(
                "SELECT created_at, id FROM jobs ORDER BY created_at DESC, id DESC "
                "LIMIT 1 OFFSET :deep",
                {"deep": deep},
            )
            resume = await connection.fetchrow(
                "SELECT tx, id FROM events ORDER BY id DESC LIMIT 1 OFFSET 40"
            )
        assert newest is not None
        assert resume is not None
        cursor = {"cursor_id": newest["id"], "cursor_created_at": newest["created_at"]}
        statements = {
            "prune selection (COMPLETED, older than 60 days, 500)": (
                queries["select_prunable_jobs"].sql,
                {"ws": workspace_id, "status": "COMPLETED", "age": -60 * 86400.0, "limit": 500},
            ),
            "list, first page": (
                queries["list_jobs_page"].compose(conditions=everything, after=""),
                {**params, "limit": 50, "offset": 0},
            ),
            "list total, bounded": (
                queries["count_jobs_bounded"].compose(conditions=everything),
                {**params, "bound": 10_001},
            ),
            "list, page after a cursor 100,000 deep": (
                queries["list_jobs_page"].compose(
                    conditions=everything, after=queries["after_cursor"].sql
                ),
                {**params, **cursor, "limit": 50, "offset": 0},
            ),
            "list total of FAILED, bounded": (
                queries["count_jobs_bounded"].compose(conditions=failed),
                {**failed_params, "bound": 10_001},
            ),
            "list of FAILED, first page": (
                queries["list_jobs_page"].compose(conditions=failed, after=""),
                {**failed_params, "limit": 50, "offset": 0},
            ),
            "bulk cancel selection, its QUEUED part (one query per status)": (
                queries["list_jobs_page"].compose(conditions=queued, after=""),
                {**queued_params, "limit": 1000, "offset": 0},
            ),
            "all unfinished statuses in one query (what the parts avoid)": (
                queries["list_jobs_page"].compose(conditions=unfinished, after=""),
                {**unfinished_params, "limit": 1000, "offset": 0},
            ),
            "workspace stream resume (40 events back)": (
                queries["workspace_events_after"].sql,
                {"ws": workspace_id, "tx": resume["tx"], "id": resume["id"], "limit": 500},
            ),
            "throughput by minute (last hour)": (
                queries["throughput_by_minute"].sql,
                {"ws": workspace_id, "window": -3600.0},
            ),
        }
        plans = {}
        prefix = (
            "EXPLAIN (ANALYZE, BUFFERS) " if url.kind == "postgresql" else "EXPLAIN QUERY PLAN "
        )
        async with store.database.read() as connection:
            for name, (sql, values) in statements.items():
                rows = await connection.fetch(prefix + sql, values)
                if url.kind == "postgresql":
                    plans[name] = "\n".join(str(row["QUERY PLAN"]) for row in rows)
                else:
                    plans[name] = "\n".join(str(row["detail"]) for row in rows)
        return plans
    finally:
        await store.close()


# -- measuring one database -------------------------------------------------------------------


@dataclass
class Target:
    """One of the two databases of a `history` run: its session, server and samples."""

    label: str
    session: InProcessSession
    server: ConveyorServer | None = None
    cursor: str = ""
    job_ids: tuple[str, ...] = ()
    finished_job: str = ""

    @property
    def url(self) -> DatabaseURL:
        return self.session.url

    async def open_store(self) -> Store:
        return await open_store(self.url, pool_size=4)


async def sql_rows(target: Target, sql: str) -> list[Any]:
    store = await target.open_store()
    try:
        async with store.database.read() as connection:
            return list(await connection.fetch(sql))
    finally:
        await store.close()


async def pick_samples(target: Target, deep_offset: int, samples: int) -> None:
    """A cursor `deep_offset` jobs from the newest, jobs to read, and a finished job."""
    rows = await sql_rows(
        target,
        "SELECT id, created_at FROM jobs ORDER BY created_at DESC, id DESC "
        f"LIMIT 1 OFFSET {deep_offset}",
    )
    store = await target.open_store()
    try:
        codec = store.database.codec
        [row] = rows
        target.cursor = ListCursor(
            codec.timestamp(row["created_at"]), codec.uuid(row["id"])
        ).encode()
    finally:
        await store.close()
    if target.url.kind == "postgresql":
        total = int((await sql_rows(target, "SELECT count(*) AS n FROM jobs"))[0]["n"])
        share = min(100.0, 300.0 * samples / max(total, 1))
        rows = await sql_rows(
            target, f"SELECT id FROM jobs TABLESAMPLE BERNOULLI ({share}) LIMIT {samples}"
        )
    else:
        highest = int((await sql_rows(target, "SELECT max(rowid) AS n FROM jobs"))[0]["n"])
        picked = random.Random(15).sample(range(1, highest + 1), min(samples, highest))
        rows = await sql_rows(
            target, f"SELECT id FROM jobs WHERE rowid IN ({', '.join(map(str, picked))})"
        )
    target.job_ids = tuple(str(row["id"]) for row in rows)
    finished = await sql_rows(target, "SELECT id FROM jobs WHERE status = 'COMPLETED' LIMIT 1")
    target.finished_job = str(finished[0]["id"])


async def add_recent_failures(target: Target, count: int) -> None:
    store = await target.open_store()
    try:
        async with store.database.write() as connection:
            await connection.execute(
                "UPDATE jobs SET status = 'FAILED', result = NULL, "
                "error = 'bench: failed on purpose' WHERE id IN (SELECT id FROM jobs "
                "WHERE status = 'COMPLETED' AND type = 'bench.noop' "
                "ORDER BY created_at DESC LIMIT :count)",
                {"count": count},
            )
    finally:
        await store.close()


Call = Callable[[], Awaitable[None]]


async def paired(calls: dict[str, Call], count: int) -> dict[str, list[float]]:
    """Milliseconds each call took, `count` times each, taking turns (empty, full, empty,
    …): on a shared machine, whatever else runs slows both alike."""
    taken: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(count):
        for label, call in calls.items():
            started = time.perf_counter()
            await call()
            taken[label].append((time.perf_counter() - started) * 1000)
    return taken


class HttpProbe:
    """The HTTP calls one figure makes on one database."""

    def __init__(self, target: Target, http: httpx.AsyncClient) -> None:
        self.target = target
        self.http = http
        self.resume_after = 0
        self._reads = 0

    @staticmethod
    def ok(response: httpx.Response) -> None:
        if response.status_code >= 400:
            status = response.status_code
            raise RuntimeError(f"{response.request.url}: {status} {response.text}")

    async def create(self) -> None:
        self.ok(await self.http.post("/jobs", json={"type": "bench.latency", "payload": {}}))

    async def list_first(self) -> None:
        self.ok(await self.http.get("/jobs", params={"limit": 50}))

    async def list_deep(self) -> None:
        self.ok(await self.http.get("/jobs", params={"limit": 50, "cursor": self.target.cursor}))

    async def list_failed(self) -> None:
        self.ok(await self.http.get("/jobs", params={"limit": 50, "status": "FAILED"}))

    async def read(self) -> None:
        ids = self.target.job_ids
        self._reads += 1
        self.ok(await self.http.get(f"/jobs/{ids[self._reads % len(ids)]}"))

    async def sse_resume(self) -> None:
        """Resume the workspace stream RESUME_EVENTS events back; until they all came."""
        got = 0
        async with self.http.stream(
            "GET", "/events/stream", headers={"Last-Event-ID": str(self.resume_after)}
        ) as response:
            self.ok(response)
            async for event in parse_lines_async(response.aiter_lines()):
                if event.event and not event.event.startswith("stream."):
                    got += 1
                    if got == RESUME_EVENTS:
                        return

    async def job_replay(self) -> None:
        """A finished job's stream from its first event to stream.complete."""
        async with self.http.stream(
            "GET",
            f"/jobs/{self.target.finished_job}/events/stream",
            headers={"Last-Event-ID": "1"},
        ) as response:
            self.ok(response)
            async for event in parse_lines_async(response.aiter_lines()):
                if event.event == "stream.complete":
                    return


async def http_round(targets: list[Target], plan: LifetimePlan) -> dict[str, dict[str, float]]:
    """One round of the HTTP measurements, on every database by turns: p95 and p50 per
    figure, ms."""
    figures: dict[str, dict[str, float]] = {target.label: {} for target in targets}
    async with contextlib.AsyncExitStack() as stack:
        probes = {}
        for target in targets:
            assert target.server is not None
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"{target.server.url}/v1/workspaces/{WORKSPACE}",
                    headers={"Authorization": f"Bearer {target.session.keys.token}"},
                    timeout=60,
                )
            )
            probes[target.label] = HttpProbe(target, http)
        for name in HTTP_FIGURES:
            if name == "sse_resume":  # after the creates: the newest events are theirs
                for probe in probes.values():
                    probe.resume_after = await newest_event_minus(probe.target, RESUME_EVENTS)
            calls = {label: getattr(probe, name) for label, probe in probes.items()}
            for call in calls.values():
                await call()  # warm: connections, plans, caches
            count = plan.samples if name not in ("sse_resume", "job_replay") else plan.samples // 2
            for label, taken in (await paired(calls, max(5, count))).items():
                figures[label][f"{name}_p50_ms"] = percentile(taken, 0.50)
                figures[label][f"{name}_p95_ms"] = percentile(taken, 0.95)
    return figures


async def newest_event_minus(target: Target, back: int) -> int:
    rows = await sql_rows(target, f"SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET {back}")
    return int(rows[0]["id"])


async def drain_round(target: Target, jobs: int) -> float:
    """Fill the queue with `jobs` no-op jobs, drain them; jobs/s."""
    producer = await target.session.producer()
    try:
        for first in range(0, jobs, 500):
            await producer.enqueue_batch(list(range(first, min(first + 500, jobs))))
    finally:
        await producer.close()
    await target.session.quiesce()
    settle_heap()
    outcome = await target.session.consumer().drain(jobs, 600.0)
    await target.session.quiesce()
    if outcome.handled != jobs:
        raise RuntimeError(f"{target.label}: drained {outcome.handled} of {jobs}")
    return jobs / outcome.seconds


# -- table sizes ------------------------------------------------------------------------------


async def table_sizes(url: DatabaseURL) -> dict[str, Any]:
    """What the queue tables weigh: PostgreSQL per table (with indexes) and vacuum counters;
    SQLite the file's pages in use and free."""
    if url.kind == "postgresql":
        connection = await asyncpg.connect(url.url)
        try:
            await connection.execute("SELECT pg_stat_clear_snapshot()")
            rows = await connection.fetch(
                "SELECT relname, pg_total_relation_size(relid) AS total, "
                "pg_relation_size(relid) AS heap, n_live_tup, n_dead_tup, "
                "autovacuum_count, vacuum_count FROM pg_stat_user_tables "
                "WHERE relname IN ('jobs', 'events', 'steps')"
            )
            return {
                row["relname"]: {
                    "total_mb": row["total"] / 2**20,
                    "heap_mb": row["heap"] / 2**20,
                    "live_rows": row["n_live_tup"],
                    "dead_rows": row["n_dead_tup"],
                    "autovacuums": row["autovacuum_count"],
                    "vacuums": row["vacuum_count"],
                }
                for row in rows
            }
        finally:
            await connection.close()

    def read() -> dict[str, Any]:
        connection = sqlite3.connect(url.sqlite_path)
        try:
            page = connection.execute("PRAGMA page_size").fetchone()[0]
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            free = connection.execute("PRAGMA freelist_count").fetchone()[0]
            jobs = connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
            events = connection.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            connection.close()
        return {
            "file_mb": pages * page / 2**20,
            "used_mb": (pages - free) * page / 2**20,
            "free_mb": free * page / 2**20,
            "jobs": jobs,
            "events": events,
        }

    return await asyncio.to_thread(read)


# -- history ------------------------------------------------------------------------------------

HTTP_FIGURES = (
    "create",
    "list_first",
    "list_deep",
    "list_failed",
    "read",
    "sse_resume",
    "job_replay",
)


async def history(system: ConveyorSystem, infra: Infra, plan: LifetimePlan) -> dict[str, Any]:
    async with system.session() as empty_session, system.session() as full_session:
        assert isinstance(empty_session, InProcessSession)
        assert isinstance(full_session, InProcessSession)
        empty, full = Target("empty", empty_session), Target("full", full_session)
        log(f"{system.name}: filling {plan.history_jobs:,} jobs ({plan.history_days} days)")
        started = time.monotonic()
        if full.url.kind == "postgresql":
            await fill_postgres(full.url.url, full.session.keys.workspace_id, plan)
        else:
            await asyncio.to_thread(
                fill_sqlite, full.url.sqlite_path, full.session.keys.workspace_id, plan
            )
        fill_seconds = time.monotonic() - started
        log(f"{system.name}: filled in {fill_seconds:.0f}s")
        result: dict[str, Any] = {"fill_seconds": fill_seconds, "sizes_after_fill": {}}
        result["sizes_after_fill"]["full"] = await table_sizes(full.url)
        result["plans"] = await explain_plans(
            full.url, full.session.keys.workspace_id, min(plan.deep_offset, plan.history_jobs // 2)
        )
        for name, text in result["plans"].items():
            log(f"{system.name} plan, {name}:\n{text}")

        drains: dict[str, list[float]] = {"empty": [], "full": []}
        rounds: dict[str, list[dict[str, float]]] = {"empty": [], "full": []}
        for number in range(plan.rounds):
            for target in (empty, full) if number % 2 == 0 else (full, empty):
                rate = await drain_round(target, plan.drain_jobs)
                drains[target.label].append(rate)
                log(f"{system.name} round {number + 1} {target.label}: drain {rate:,.0f} jobs/s")
        # Both databases get the same recent failures (some of their drained jobs, made
        # FAILED), so the first page of failed jobs compares like with like: the empty one
        # has no other failed job, the full one months of them.
        for target in (empty, full):
            await add_recent_failures(target, plan.recent_failures)
        await pick_samples(empty, plan.drain_jobs // 2, plan.samples)
        await pick_samples(full, min(plan.deep_offset, plan.history_jobs // 2), plan.samples)
        servers = [
            ConveyorServer(target.url.url, infra.workdir, env=KEEP_EVERYTHING)
            for target in (empty, full)
        ]
        empty.server, full.server = servers
        try:
            # Both at once: a start is mostly its imports, and nothing is measured yet.
            async with asyncio.TaskGroup() as starting:
                for server in servers:
                    starting.create_task(server.start())
            for number in range(plan.rounds):
                order = [empty, full] if number % 2 == 0 else [full, empty]
                measured = await http_round(order, plan)
                for target in (empty, full):
                    figures = measured[target.label]
                    rounds[target.label].append(figures)
                    shown = ", ".join(
                        f"{name} {figures[f'{name}_p95_ms']:.1f}" for name in HTTP_FIGURES
                    )
                    log(f"{system.name} round {number + 1} {target.label} p95 ms: {shown}")
        finally:
            for target in (empty, full):
                if target.server is not None:
                    await target.server.stop()
        result["drain_jobs_per_s"] = {label: drains[label] for label in drains}
        result["rounds"] = rounds
        summary: dict[str, dict[str, float]] = {}
        for label in ("empty", "full"):
            summary[label] = {"drain_jobs_per_s": statistics.median(drains[label])}
            for key in rounds[label][0]:
                summary[label][key] = statistics.median(r[key] for r in rounds[label])
        ratios = {
            "drain": summary["empty"]["drain_jobs_per_s"] / summary["full"]["drain_jobs_per_s"]
        }
        for name in HTTP_FIGURES:
            key = f"{name}_p95_ms"
            ratios[name] = summary["full"][key] / summary["empty"][key]
        result["summary"] = summary
        result["ratios_full_over_empty"] = ratios
        result["prune_pass"] = await prune_pass(system, full, plan)
    return result


def retention_env(days: int | str) -> dict[str, str]:
    return {f"CONVEYOR_RETENTION_{status}_DAYS": str(days) for status in RETENTION_NAMES}


RETENTION_NAMES = ("COMPLETED", "FAILED", "CANCELLED")


async def prune_pass(system: ConveyorSystem, full: Target, plan: LifetimePlan) -> dict[str, Any]:
    """`conveyor prune` (a process of its own, as an operator runs it) deletes the history
    older than `prune_keep_days`, while drains run one after another in this process."""
    before = await table_sizes(full.url)
    keep = plan.prune_keep_days
    command = [str(Path(sys.executable).with_name("conveyor")), "prune", "--json"]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--database-url",
        full.url.url,
        env={**os.environ, **retention_env(keep)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    started = time.monotonic()
    waited = asyncio.create_task(process.communicate())
    drains = []
    while not waited.done():
        drains.append(await drain_round(full, plan.drain_jobs))
    out, err = await waited
    if process.returncode != 0:
        raise RuntimeError(f"conveyor prune failed: {err.decode()[-2000:]}")
    report = json.loads(out)
    wall = time.monotonic() - started
    after = await table_sizes(full.url)
    vacuum_seconds = None
    if full.url.kind == "postgresql":
        connection = await asyncpg.connect(full.url.url)
        try:
            started = time.monotonic()
            for table in ("jobs", "events"):
                await connection.execute(f"VACUUM {table}", timeout=None)
            vacuum_seconds = time.monotonic() - started
        finally:
            await connection.close()
    events = sum(item.get("events", 0) for item in report["deleted"])
    result = {
        "kept_days": keep,
        "jobs_deleted": report["jobs"],
        "events_deleted": events,
        "seconds": report["seconds"],
        "wall_seconds_with_start_up": wall,
        "jobs_per_s": report["jobs"] / report["seconds"] if report["seconds"] else math.nan,
        "drains_meanwhile_jobs_per_s": drains,
        "drain_median_meanwhile": statistics.median(drains) if drains else math.nan,
        "sizes_before": before,
        "sizes_after": after,
        "sizes_after_vacuum": await table_sizes(full.url) if vacuum_seconds is not None else None,
        "vacuum_seconds": vacuum_seconds,
    }
    log(
        f"{system.name}: pruned {report['jobs']:,} jobs in {report['seconds']:.1f}s "
        f"({result['jobs_per_s']:,.0f} jobs/s); {len(drains)} drains meanwhile, median "
        f"{result['drain_median_meanwhile']:,.0f} jobs/s"
    )
    return result


# -- soak ---------------------------------------------------------------------------------------


def slope_percent_per_100k(rates: list[float], round_jobs: int) -> float:
    """The least-squares slope of the drain rate over the rounds, as % of the mean rate per
    100,000 jobs through."""
    if len(rates) < 2:
        return math.nan
    xs = list(range(len(rates)))
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(rates)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, rates, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return 100 * slope / mean_y * (100_000 / round_jobs)


async def soak(
    system: ConveyorSystem, plan: LifetimePlan, workdir: Path, *, tuned_autovacuum: bool
) -> dict[str, Any]:
    async with system.session() as session:
        assert isinstance(session, InProcessSession)
        target = Target("soak", session)
        if not tuned_autovacuum and target.url.kind == "postgresql":
            # PostgreSQL's own defaults, for comparison with migration 0014's settings.
            connection = await asyncpg.connect(target.url.url)
            try:
                for table in QUEUE_TABLES:
                    names = ", ".join(QUEUE_TABLE_STORAGE)
                    await connection.execute(f"ALTER TABLE {table} RESET ({names})")
            finally:
                await connection.close()
        # The pruner runs where it does in production: in a server process, here one with
        # no workers of its own, retention 0, a pass every prune_interval_seconds.
        server = ConveyorServer(
            target.url.url,
            workdir,
            env={
                **retention_env(0),
                "CONVEYOR_PRUNE_INTERVAL_SECONDS": str(plan.prune_interval_seconds),
            },
        )
        await server.start()
        rounds: list[dict[str, Any]] = []
        try:
            for number in range(max(1, plan.soak_jobs // plan.soak_round_jobs)):
                rate = await drain_round(target, plan.soak_round_jobs)
                sizes = await table_sizes(target.url)
                rounds.append({"round": number + 1, "drain_jobs_per_s": rate, "sizes": sizes})
                shown = sizes_text(sizes)
                log(f"{system.name} soak round {number + 1}: {rate:,.0f} jobs/s, {shown}")
        finally:
            await server.stop()
    rates = [float(r["drain_jobs_per_s"]) for r in rounds]
    return {
        "autovacuum": (
            "migration 0014's per-table settings: "
            + ", ".join(f"{name} = {value}" for name, value in QUEUE_TABLE_STORAGE.items())
            if tuned_autovacuum
            else "PostgreSQL's defaults"
        ),
        "jobs_through": len(rounds) * plan.soak_round_jobs,
        "rounds": rounds,
        "drain_median_jobs_per_s": statistics.median(rates),
        "drain_first_last": [rates[0], rates[-1]],
        "slope_percent_per_100k_jobs": slope_percent_per_100k(rates, plan.soak_round_jobs),
    }


def sizes_text(sizes: dict[str, Any]) -> str:
    if "file_mb" in sizes:
        return f"file {sizes['file_mb']:.0f} MB (used {sizes['used_mb']:.0f}), {sizes['jobs']} jobs"
    return ", ".join(
        f"{name} {values['total_mb']:.1f} MB ({values['live_rows']} live, "
        f"{values['dead_rows']} dead, {values['autovacuums']} autovacuums)"
        for name, values in sorted(sizes.items())
    )


# -- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lifetime", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--only", nargs="+", choices=("history", "soak"))
    parser.add_argument("--backends", nargs="+", choices=("postgresql", "sqlite"))
    parser.add_argument("--history-jobs", type=int)
    parser.add_argument("--soak-jobs", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "lifetime.json")
    return parser.parse_args(argv)


async def main_async(plan: LifetimePlan, out: Path) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-lifetime-"))
    postgres = Postgres()
    log("starting PostgreSQL")
    postgres.start()
    document: dict[str, Any] = {"plan": asdict(plan), "results": {}}
    try:
        await postgres.read_settings()
        facts = await asyncio.to_thread(machine_facts, workdir)
        infra = Infra(postgres, None, workdir)
        document["environment"] = {
            "machine": facts,
            "load_average_at_start": os.getloadavg(),
            "postgresql": postgres.settings,
            "conveyor_revision": git_revision(),
        }
        # The harness's worker settings (its claim long poll), quick with this run.
        harness = Plan.quick_plan() if plan.quick else Plan()
        systems: list[ConveyorSystem] = []
        if "postgresql" in plan.backends:
            systems.append(ConveyorPostgres(infra, harness))
        if "sqlite" in plan.backends:
            systems.append(ConveyorSqlite(infra, harness))
        for system in systems:
            await system.prepare()
            results: dict[str, Any] = {}
            if "history" in plan.scenarios:
                results["history"] = await history(system, infra, plan)
            if "soak" in plan.scenarios:
                results["soak"] = [await soak(system, plan, workdir, tuned_autovacuum=True)]
                if system.backend == "postgresql":
                    results["soak"].append(
                        await soak(system, plan, workdir, tuned_autovacuum=False)
                    )
            document["results"][system.name] = results
        document["environment"]["load_average_at_end"] = os.getloadavg()
        await asyncio.to_thread(write_json, out, document)
        print(render(document))
        log(f"wrote {out}")
        return 0
    finally:
        postgres.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def render(document: dict[str, Any]) -> str:
    lines = []
    for name, results in document["results"].items():
        if "history" in results:
            found = results["history"]
            lines.append(
                f"== history / {name}: {document['plan']['history_jobs']:,} jobs of history"
            )
            lines.append(f"  {'figure':<22}{'empty':>12}{'full':>12}{'full/empty':>12}")
            summary, ratios = found["summary"], found["ratios_full_over_empty"]
            lines.append(
                f"  {'drain jobs/s':<22}{summary['empty']['drain_jobs_per_s']:>12,.0f}"
                f"{summary['full']['drain_jobs_per_s']:>12,.0f}{ratios['drain']:>12.2f}"
            )
            for figure in HTTP_FIGURES:
                key = f"{figure}_p95_ms"
                lines.append(
                    f"  {figure + ' p95 ms':<22}{summary['empty'][key]:>12.2f}"
                    f"{summary['full'][key]:>12.2f}{ratios[figure]:>12.2f}"
                )
            pruned = found["prune_pass"]
            lines.append(
                f"  prune pass: {pruned['jobs_deleted']:,} jobs in {pruned['seconds']:.1f}s "
                f"({pruned['jobs_per_s']:,.0f}/s); drain meanwhile "
                f"{pruned['drain_median_meanwhile']:,.0f} jobs/s"
            )
        for run in results.get("soak", []):
            lines.append(
                f"== soak / {name} ({run['autovacuum']}): {run['jobs_through']:,} jobs, drain "
                f"median {run['drain_median_jobs_per_s']:,.0f} jobs/s, slope "
                f"{run['slope_percent_per_100k_jobs']:+.1f} % per 100k jobs; last round: "
                f"{sizes_text(run['rounds'][-1]['sizes'])}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The pruner's line per pass, among the harness's own.
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("conveyor.pruner").setLevel(logging.INFO)
    plan = LifetimePlan.quick_plan() if args.quick else LifetimePlan()
    if args.only:
        plan = replace(plan, scenarios=tuple(args.only))
    if args.backends:
        plan = replace(plan, backends=tuple(args.backends))
    if args.history_jobs:
        plan = replace(plan, history_jobs=args.history_jobs)
    if args.soak_jobs:
        plan = replace(plan, soak_jobs=args.soak_jobs)
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    return asyncio.run(main_async(plan, args.out))


if __name__ == "__main__":
    sys.exit(main())
