"""The `due-start` scenario (Conveyor only): how soon an idle worker starts a job once it
is due.

An idle worker of `plan.due_slots` slots waits for work: in-process (`conveyor`: its own
store and LISTEN/NOTIFY; `conveyor-sqlite`: embedded, sharing the producers' store), or a
`conveyor worker` process over HTTP against `conveyor serve` (`conveyor-http`). Both long
-poll (the worker's default claim wait, 10 s). Then:

1. `plan.due_jobs` jobs, each due at its own time, `plan.due_spacing` apart (never two due
   together), each created `plan.due_lead` seconds (uniform) before it is due, in the
   order of creation: `due -> started` is `started_at - run_at`, both from the database.
2. `plan.due_retries` jobs created `plan.due_retry_spacing` apart, due at once, whose
   handler fails their first attempt (`Fail`, retryable) with `retry_backoff_seconds`
   `plan.due_retry_backoff`: the retry's `run_at` is the end of its backoff, and
   `retry due -> started` is the second attempt's `started_at - run_at`.

Jobs are created where a client of that variant would create them: through `JobService`
in the harness (on PostgreSQL on a store of its own, so the worker learns of them by
NOTIFY), or over HTTP (`conveyor-http`). A few warm-up jobs run first, not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from bench import due_handlers
from bench.infra import Infra
from bench.measure import percentile
from bench.plan import Plan
from bench.pools import WorkerPool, embedded_service, fetch, seconds, spread_ms
from bench.process import REPO, child_env
from bench.systems.base import System
from bench.systems.conveyor import (
    LEASE_SECONDS,
    PRODUCER_POOL,
    WORKSPACE,
    HttpSession,
    InProcessSession,
)
from conveyor.domain.jobs import JobSpec
from conveyor.domain.status import JobStatus
from conveyor.service.jobs import JobService
from conveyor.store import Store, open_store
from conveyor.store.urls import DatabaseURL
from conveyor.worker import WorkerOptions

CLAIM_WAIT_SECONDS = 10.0
"""The worker's long poll: `WorkerOptions`' and `conveyor worker`'s default."""
SETTLE_SECONDS = 30.0
"""How long jobs may take to finish after the last one came due."""

Create = Callable[[JobSpec], Awaitable[UUID]]


async def measure(
    system: System, infra: Infra, plan: Plan
) -> tuple[dict[str, float], dict[str, Any]]:
    async with system.session() as session:
        if isinstance(session, InProcessSession):
            runner = _in_process(session, plan)
        elif isinstance(session, HttpSession):
            runner = _remote(session, plan, infra.workdir)
        else:
            raise TypeError(f"{type(session).__name__}: not a Conveyor session")
        store = await open_store(_url(session, infra), pool_size=PRODUCER_POOL)
        try:
            async with runner as (create, worker):
                return await _schedule(store, create, plan, worker)
        finally:
            await store.close()


def _url(session: InProcessSession | HttpSession, infra: Infra) -> DatabaseURL:
    if isinstance(session, InProcessSession):
        return session.url
    assert session.database is not None, "conveyor-http runs on PostgreSQL"
    return DatabaseURL.parse(infra.postgres.url(session.database))


@contextlib.asynccontextmanager
async def _in_process(session: InProcessSession, plan: Plan) -> AsyncIterator[tuple[Create, str]]:
    store = await open_store(session.url, pool_size=PRODUCER_POOL)
    sqlite = session.url.kind == "sqlite"
    service = embedded_service(store) if sqlite else JobService(store)
    pool = WorkerPool(
        session.url,
        None,
        due_handlers.handlers,
        WorkerOptions(
            concurrency=plan.due_slots,
            lease_seconds=LEASE_SECONDS,
            claim_wait_seconds=CLAIM_WAIT_SECONDS,
            shutdown_grace_seconds=10.0,
            worker_id="bench-due",
        ),
        service=service if sqlite else None,
    )

    async def create(spec: JobSpec) -> UUID:
        pool.raise_if_dead()
        job, _ = await service.create_job(session.keys.workspace_id, spec, session.keys.actor)
        return job.id

    try:
        await pool.start()
        where = "its own store, LISTEN/NOTIFY"
        if sqlite:
            where = "embedded, the producers' store"
        yield create, f"in-process Worker ({where}), {plan.due_slots} slots, scope: every workspace"
    finally:
        try:
            await pool.stop()
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def _remote(
    session: HttpSession, plan: Plan, workdir: Path
) -> AsyncIterator[tuple[Create, str]]:
    server = await session.server()
    log = workdir / f"due-worker-{server.port}.log"
    executable = Path(sys.executable).with_name("conveyor")
    command = (
        [str(executable)] if executable.exists() else [sys.executable, "-m", "conveyor.cli.main"]
    )
    env = {
        **child_env(),
        "CONVEYOR_API_KEY": session.keys.worker_token,
        "CONVEYOR_LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *command,
            "worker",
            "--url",
            server.url,
            "--handlers",
            "bench.due_handlers:handlers",
            "--concurrency",
            str(plan.due_slots),
            "--worker-id",
            "bench-due-remote",
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
    client = httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {session.keys.token}"},
        timeout=30.0,
    )

    async def create(spec: JobSpec) -> UUID:
        if process.returncode is not None:
            raise RuntimeError(f"conveyor worker exited: {log.read_text()[-2000:]}")
        body: dict[str, Any] = {
            "type": spec.type,
            "payload": spec.payload,
            "max_attempts": spec.max_attempts,
            "retry_backoff_seconds": spec.retry_backoff_seconds,
            "retry_backoff_max_seconds": spec.retry_backoff_max_seconds,
        }
        if spec.run_at is not None:
            body["run_at"] = spec.run_at.isoformat()
        response = await client.post(f"/v1/workspaces/{WORKSPACE}/jobs", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"create job: HTTP {response.status_code} {response.text}")
        return UUID(response.json()["id"])

    try:
        yield (
            create,
            (
                f"conveyor worker process over HTTP (--concurrency {plan.due_slots}, claim "
                f"wait {CLAIM_WAIT_SECONDS:g} s) against conveyor serve (pid {server.pid})"
            ),
        )
    finally:
        await client.aclose()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _completed(store: Store, ids: set[UUID]) -> int:
    rows = await fetch(
        store, "SELECT id FROM jobs WHERE status = :status", {"status": JobStatus.COMPLETED.value}
    )
    return sum(1 for row in rows if store.database.codec.uuid(row["id"]) in ids)


async def _wait_completed(store: Store, ids: set[UUID], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while await _completed(store, ids) < len(ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not all {len(ids)} jobs completed within {within:.0f}s")
        await asyncio.sleep(0.05)


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


async def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _schedule(
    store: Store, create: Create, plan: Plan, worker: str
) -> tuple[dict[str, float], dict[str, Any]]:
    due_handlers.handler_starts.clear()
    warmup = {
        await create(JobSpec(type=due_handlers.DUE_TYPE, payload={"warmup": n}))
        for n in range(plan.due_slots)
    }
    await _wait_completed(store, warmup, 60.0, "warm-up")
    await asyncio.sleep(0.5)  # the worker is idle again, waiting on a long poll

    low, high = plan.due_lead
    rng = random.Random(os.getpid())
    base = time.time() + high + 0.5
    plan_of = []
    for n in range(plan.due_jobs):
        due = base + n * plan.due_spacing
        plan_of.append((due - rng.uniform(low, high), due, n))
    plan_of.sort()
    due_ids: set[UUID] = set()
    lateness = 0.0
    for create_at, due, n in plan_of:
        await _sleep_until(create_at)
        lateness = max(lateness, time.time() - create_at)
        spec = JobSpec(type=due_handlers.DUE_TYPE, payload={"i": n}, run_at=_at(due))
        due_ids.add(await create(spec))
    await _sleep_until(plan_of[-1][1] if plan_of else time.time())
    await _wait_completed(store, due_ids, SETTLE_SECONDS, "due jobs")

    retry_ids: set[UUID] = set()
    origin = time.time()
    for n in range(plan.due_retries):
        await _sleep_until(origin + n * plan.due_retry_spacing)
        spec = JobSpec(
            type=due_handlers.RETRY_TYPE,
            payload={"i": n},
            max_attempts=2,
            retry_backoff_seconds=plan.due_retry_backoff,
            retry_backoff_max_seconds=plan.due_retry_backoff,
        )
        retry_ids.add(await create(spec))
    await _wait_completed(store, retry_ids, SETTLE_SECONDS + plan.due_retry_backoff, "retried jobs")

    rows = await fetch(store, "SELECT id, attempt, run_at, started_at FROM jobs")
    codec = store.database.codec
    due_ms: list[float] = []
    retry_ms: list[float] = []
    handler_ms: list[float] = []
    attempts: dict[int, int] = {}
    for row in rows:
        job_id = codec.uuid(row["id"])
        late = (seconds(store, row["started_at"]) - seconds(store, row["run_at"])) * 1000
        if job_id in due_ids:
            due_ms.append(late)
            if job_id in due_handlers.handler_starts:
                handler_ms.append(
                    (due_handlers.handler_starts[job_id] - seconds(store, row["run_at"])) * 1000
                )
        elif job_id in retry_ids:
            retry_ms.append(late)
            attempts[int(row["attempt"])] = attempts.get(int(row["attempt"]), 0) + 1
    if attempts != {2: len(retry_ids)}:
        raise RuntimeError(f"retried jobs by attempt: {attempts} (every one should be on 2)")
    metrics = {**spread_ms(due_ms), **spread_ms(retry_ms, "retry_")}
    details: dict[str, Any] = {
        "worker": worker,
        "jobs": len(due_ms),
        "retries": len(retry_ms),
        "min_ms": min(due_ms),
        "p90_ms": percentile(due_ms, 0.90),
        "retry_min_ms": min(retry_ms) if retry_ms else None,
        "producer_late_max_ms": lateness * 1000,
        "handler_start_ms": spread_ms(handler_ms) if handler_ms else None,
    }
    return metrics, details
