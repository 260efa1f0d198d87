"""The scenarios: the one place where anything is timed, the same code for every system.

Each function runs one measured run on a fresh store and returns its metrics. Warm-up work
(opening pools, the first few jobs) happens before the clock starts, the same for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import capacity, due, fanout
from bench.infra import Infra
from bench.measure import WARMUP_BASE, percentile, produce_steadily
from bench.plan import Plan
from bench.producer import RemoteProducer
from bench.sse import CpuClock, SseRun
from bench.systems.base import Session, System


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    fmt: str = "{:,.0f}"


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    name: str
    description: str
    metrics: tuple[Metric, ...]
    compared: tuple[str, ...]
    """Metrics on which each Conveyor variant is compared with the best peer."""


JOBS_PER_S = Metric("jobs_per_s", "jobs/s (higher is better)", True)
CPU = (
    Metric("server_cpu_pct", "server CPU %", False),
    Metric("client_cpu_pct", "client CPU %", False),
)
SSE = (
    Metric("p50_ms", "p50 ms", False, "{:,.1f}"),
    Metric("p99_ms", "p99 ms", False, "{:,.1f}"),
    Metric("max_ms", "max ms", False, "{:,.1f}"),
    Metric("last_stream_p99_ms", "last-stream p99 ms", False, "{:,.1f}"),
    Metric("post_p50_ms", "POST p50 ms", False, "{:,.1f}"),
    Metric("server_cpu_pct", "server CPU %", False),
    Metric("client_cpu_pct", "client CPU %", False),
)
SSE_IDLE = (
    Metric("idle_server_cpu_pct", "idle server CPU %", False, "{:,.1f}"),
    Metric("idle_statements", "idle statements", False),
    Metric("open_seconds", "open s", False, "{:,.1f}"),
)


def slot_metric(slots: int) -> Metric:
    return Metric(f"slots_{slots}", f"{slots} slots jobs/s", True)


LATENCY = (
    Metric("p50_ms", "p50 ms", False, "{:,.1f}"),
    Metric("p99_ms", "p99 ms", False, "{:,.1f}"),
    Metric("max_ms", "max ms", False, "{:,.1f}"),
    Metric("rate", "jobs/s offered", True),
    Metric("served", "jobs/s served", True),
)
KEY_VARIANTS = (
    Metric("plain_jobs_per_s", "plain jobs/s", True),
    Metric("keys_jobs_per_s", "keys jobs/s", True),
    Metric("limits_jobs_per_s", "limits jobs/s", True),
    Metric("keys_ratio", "keys / plain", True, "{:.2f}"),
    Metric("limits_ratio", "limits / plain", True, "{:.2f}"),
)
"""`claim-keys` and `claim-tenants`: each of the three drains, and each over the plain one."""

SCENARIO_INFO: dict[str, ScenarioInfo] = {
    info.name: info
    for info in (
        ScenarioInfo(
            "enqueue-single",
            "one job per call, {producers} concurrent producers, {jobs} jobs (conveyor-http: "
            "wrk -t{wrk_threads} -c{producers} for {wrk_seconds:g} s, POST /jobs; CPU % of "
            "one core)",
            (JOBS_PER_S, *CPU),
            ("jobs_per_s",),
        ),
        ScenarioInfo(
            "enqueue-single-httpx",
            "conveyor-http with {producers} httpx producers in the harness process instead "
            "of wrk, {jobs} jobs: the client costs as much CPU as the server here, so this "
            "measures both",
            (JOBS_PER_S, *CPU),
            (),
        ),
        ScenarioInfo(
            "enqueue-bulk",
            "bulk calls of {batch_size} jobs, one producer, {jobs} jobs",
            (JOBS_PER_S,),
            ("jobs_per_s",),
        ),
        ScenarioInfo(
            "slots",
            "worker slots for each Conveyor variant: {jobs}-job drains at each of "
            "{slot_choices}; the best median is used from here on",
            (),
            (),
        ),
        ScenarioInfo(
            "drain",
            "{jobs} queued no-op jobs, first handler start to last completion stored",
            (JOBS_PER_S,),
            ("jobs_per_s",),
        ),
        ScenarioInfo(
            "db-cost",
            "PostgreSQL work per job during the drain (pg_stat_statements top-level calls, "
            "pg_stat_database xact_commit, WAL bytes)",
            (
                Metric("statements_per_job", "statements/job (lower is better)", False, "{:.2f}"),
                Metric("commits_per_job", "commits/job", False, "{:.2f}"),
                Metric("wal_bytes_per_job", "WAL bytes/job", False, "{:,.0f}"),
            ),
            ("statements_per_job", "commits_per_job"),
        ),
        ScenarioInfo(
            "latency",
            "enqueue call to handler start at a steady {latency_rate:.0f} jobs/s for "
            "{latency_seconds:g} s",
            LATENCY,
            ("p50_ms", "p99_ms"),
        ),
        ScenarioInfo(
            "latency-80",
            "enqueue call to handler start at {saturation_pct:.0f} % of the system's own median "
            "drain rate for {latency_seconds:g} s (bulk calls every 10 ms above 100 jobs/s); "
            "each system at its own rate, so not compared across systems; served below "
            "offered means the system fell behind",
            LATENCY,
            (),
        ),
        ScenarioInfo(
            "contention",
            "{contention_writers} concurrent writers reporting progress on one running job, "
            "{contention_updates} updates each",
            (
                Metric("updates_per_s", "updates/s (higher is better)", True),
                Metric("conflict_retries", "conflict retries", False),
                Metric("gave_up", "gave up", False),
            ),
            ("updates_per_s",),
        ),
        ScenarioInfo(
            "noisy-neighbour",
            "workspace A: {noisy_jobs} queued jobs; a pool of {noisy_slots} slots serving every "
            "workspace drains them; after {noisy_head_start} B creates {noisy_b_jobs}: B's wait "
            "(created_at to started_at, the database's) and A's jobs started meanwhile (after "
            "B's were created, before B's last started); fifo = the same jobs in one workspace",
            (
                Metric("fair_p50_ms", "fair B wait p50 ms", False, "{:,.1f}"),
                Metric("fair_p99_ms", "fair p99 ms", False, "{:,.1f}"),
                Metric("fair_max_ms", "fair max ms", False, "{:,.1f}"),
                Metric("fair_a_between", "fair A meanwhile", False),
                Metric("fifo_p50_ms", "fifo B wait p50 ms", False),
                Metric("fifo_p99_ms", "fifo p99 ms", False),
                Metric("fifo_max_ms", "fifo max ms", False),
                Metric("fifo_a_between", "fifo A meanwhile", False),
            ),
            (),
        ),
        ScenarioInfo(
            "claim-keys",
            "{jobs} queued jobs drained three ways in one run, each on a fresh database: plain "
            "(no keys), keys ({keys} concurrency keys, no limits), limits (the same keys, each "
            "max_running {keys_max_running}); ratio = over plain; {analyzed}",
            KEY_VARIANTS,
            (),
        ),
        ScenarioInfo(
            "claim-tenants",
            "the same three ways over {tenants} workspaces ({jobs} jobs and {keys} keys shared "
            "out evenly), one worker serving every workspace (an instance worker); {analyzed}",
            KEY_VARIANTS,
            (),
        ),
        ScenarioInfo(
            "limit-hammer",
            "one limit of max_running {hammer_max_running}, {hammer_jobs} jobs of its key, "
            "{hammer_workers} workers x {hammer_slots} slots (each its own store), handlers "
            "of 0..{hammer_work_ms:g} ms: the most "
            "RUNNING ever seen by a monitor process polling count(*), and rebuilt from the "
            "job.started/ending events by timestamp and by insert order",
            (
                Metric("max_polled", "max RUNNING polled", False),
                Metric("max_by_time", "max by event time", False),
                Metric("max_by_order", "max by event order", False),
                Metric("jobs_per_s", "jobs/s", True),
                Metric("polls_per_s", "polls/s", True),
            ),
            (),
        ),
        ScenarioInfo(
            "due-start",
            "an idle worker ({due_slots} slots, long-polling); {due_jobs} jobs each due at its "
            "own time {due_spacing_ms:.0f} ms apart, created {due_lead} s ahead: started_at - "
            "run_at (the database's); retry: {due_retries} jobs failing once with a "
            "{due_retry_backoff:g} s backoff, the retry's run_at to its start",
            (
                Metric("p50_ms", "p50 ms", False, "{:,.1f}"),
                Metric("p99_ms", "p99 ms", False, "{:,.1f}"),
                Metric("max_ms", "max ms", False, "{:,.1f}"),
                Metric("retry_p50_ms", "retry p50 ms", False, "{:,.1f}"),
                Metric("retry_p99_ms", "retry p99 ms", False, "{:,.1f}"),
                Metric("retry_max_ms", "retry max ms", False, "{:,.1f}"),
            ),
            (),
        ),
        ScenarioInfo(
            "sse-1",
            "one SSE stream on a running job on conveyor serve; a worker POSTs "
            "{sse_rate:g} events/s for {sse_seconds:g} s; write (time.time() before the "
            "POST) to receive; CPU % of one core while writing",
            SSE,
            (),
        ),
        ScenarioInfo(
            "sse-many",
            "{sse_streams} SSE streams on one running job, same writer; idle: "
            "{sse_idle_seconds:g} s with every stream open and nothing written (server CPU, "
            "conveyor_db_statements delta); last-stream = per event, the slowest stream",
            (*SSE, *SSE_IDLE),
            (),
        ),
        ScenarioInfo(
            "sse-fanout",
            "single creates over HTTP at full speed ({sse_fanout_connections} keep-alive "
            "connections, {sse_fanout_seconds:g} s) while {sse_fanout_followers} clients "
            "follow the workspace stream, {sse_fanout_servers}; lag = event timestamp to "
            "arrival ({sse_fanout_measured} streams sampled); behind = after the last "
            "create, until every stream had every event",
            (),
            (),
        ),
        ScenarioInfo(
            "sse-quiet",
            "{sse_streams} SSE streams open: the one of sse-1 (same server, same job, right "
            "after it) and one on each of {sse_others} other (queued) jobs that nothing "
            "writes to; same writer, the one stream measured",
            (*SSE, SSE_IDLE[-1]),
            (),
        ),
    )
}


def metrics_of(scenario: str, plan: Plan) -> tuple[Metric, ...]:
    """The metrics a scenario reports (those of `slots` depend on the plan)."""
    if scenario == "slots":
        return (*(slot_metric(n) for n in plan.slot_choices), Metric("chosen", "chosen", True))
    if scenario == "sse-fanout":
        return tuple(
            Metric(key, label, key.startswith("creates"), "{:,.1f}")
            for followers in plan.sse_fanout_followers
            for key, label in fanout.metric_labels(followers).items()
        )
    return SCENARIO_INFO[scenario].metrics


def describe(scenario: str, plan: Plan) -> str:
    return SCENARIO_INFO[scenario].description.format(
        producers=plan.producers,
        wrk_threads=plan.wrk_threads,
        wrk_seconds=plan.wrk_seconds,
        slot_choices=", ".join(str(n) for n in plan.slot_choices),
        sse_rate=plan.sse_rate,
        sse_seconds=plan.sse_seconds,
        sse_streams=plan.sse_streams,
        sse_others=plan.sse_streams - 1,
        sse_idle_seconds=plan.sse_idle_seconds,
        jobs=plan.jobs,
        batch_size=plan.batch_size,
        latency_rate=plan.latency_rate,
        latency_seconds=plan.latency_seconds,
        saturation_pct=plan.saturation_fraction * 100,
        contention_writers=plan.contention_writers,
        contention_updates=plan.contention_updates,
        sse_fanout_connections=plan.sse_fanout_connections,
        sse_fanout_seconds=plan.sse_fanout_seconds,
        sse_fanout_followers=", ".join(str(n) for n in plan.sse_fanout_followers),
        sse_fanout_measured=plan.sse_fanout_measured,
        sse_fanout_servers=(
            "a fresh server for each" if plan.sse_fanout_server_per_window else "one server for all"
        ),
        noisy_jobs=plan.noisy_jobs,
        noisy_slots=plan.noisy_slots,
        noisy_head_start=plan.noisy_head_start,
        noisy_b_jobs=plan.noisy_b_jobs,
        keys=plan.keys,
        keys_max_running=plan.keys_max_running,
        tenants=plan.tenants,
        analyzed="ANALYZE after the fill" if plan.keys_analyze else "no ANALYZE after the fill",
        hammer_max_running=plan.hammer_max_running,
        hammer_jobs=plan.hammer_jobs,
        hammer_workers=plan.hammer_workers,
        hammer_slots=plan.hammer_slots,
        hammer_work_ms=plan.hammer_work_ms,
        due_slots=plan.due_slots,
        due_jobs=plan.due_jobs,
        due_spacing_ms=plan.due_spacing * 1000,
        due_lead="..".join(f"{x:g}" for x in plan.due_lead),
        due_retries=plan.due_retries,
        due_retry_backoff=plan.due_retry_backoff,
    )


@dataclass
class RunOutcome:
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    db_cost: dict[str, float] | None = None
    also: dict[str, RunOutcome] = field(default_factory=dict)
    """Runs of scenarios measured within this one (`sse-quiet` within `sse-1`)."""


def chunks(indexes: range | list[int], size: int) -> Iterator[list[int]]:
    items = list(indexes)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def split(indexes: range, parts: int) -> list[list[int]]:
    return [list(indexes[number::parts]) for number in range(parts)]


async def enqueue_single(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    async with system.session() as session:
        external = await session.single_creates(plan)
        if external is not None:
            return RunOutcome(*external)
        return await _single_by_producers(session, plan)


async def enqueue_single_httpx(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    async with system.session() as session:
        return await _single_by_producers(session, plan)


async def _single_by_producers(session: Session, plan: Plan) -> RunOutcome:
    """`plan.producers` concurrent producers in this process; with a server, the CPU of both
    sides (the harness process is the client)."""
    producers = [await session.producer() for _ in range(plan.producers)]
    try:
        warmup = range(WARMUP_BASE, WARMUP_BASE + max(plan.warmup_jobs, plan.producers))
        await asyncio.gather(
            *(
                p.enqueue_each(part)
                for p, part in zip(producers, split(warmup, plan.producers), strict=True)
            )
        )
        parts = split(range(plan.jobs), plan.producers)
        pid = await session.server_pid()
        server = CpuClock(pid) if pid is not None else None
        client = CpuClock(os.getpid())  # this process alone: its children are servers
        for clock in (server, client):
            if clock is not None:
                clock.start()
        started = time.perf_counter()
        await asyncio.gather(
            *(p.enqueue_each(part) for p, part in zip(producers, parts, strict=True))
        )
        elapsed = time.perf_counter() - started
        metrics = {"jobs_per_s": plan.jobs / elapsed}
        if server is not None:
            metrics["server_cpu_pct"] = server.percent()
            metrics["client_cpu_pct"] = client.percent()
    finally:
        for producer in producers:
            await producer.close()
    return RunOutcome(metrics, {"seconds": elapsed})


async def enqueue_bulk(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    async with system.session() as session:
        producer = await session.producer()
        try:
            await producer.enqueue_batch(list(range(WARMUP_BASE, WARMUP_BASE + plan.warmup_jobs)))
            started = time.perf_counter()
            for batch in chunks(range(plan.jobs), plan.batch_size):
                await producer.enqueue_batch(batch)
            elapsed = time.perf_counter() - started
        finally:
            await producer.close()
    return RunOutcome({"jobs_per_s": plan.jobs / elapsed}, {"seconds": elapsed})


async def drain(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    postgres = infra.postgres
    async with system.session() as session:
        producer = await session.filler()
        try:
            for batch in chunks(range(plan.jobs), plan.batch_size):
                await producer.enqueue_batch(batch)
        finally:
            await producer.close()
        await session.quiesce()
        database = session.database
        if database is not None:
            await postgres.wait_idle(database)
            before = await postgres.snapshot(database)
            await postgres.reset_statements()
        consumer = session.consumer()
        outcome = await consumer.drain(plan.jobs, plan.timeout_seconds)
        await session.quiesce()
        db_cost = None
        details: dict[str, Any] = {
            "seconds": outcome.seconds,
            "handled": outcome.handled,
            "duplicate_starts": outcome.duplicates,
            **outcome.extra,
        }
        if database is not None:
            await postgres.wait_idle(database)
            used = (await postgres.snapshot(database)).minus(before)
            db_cost = {
                "statements_per_job": used.statements / plan.jobs,
                "commits_per_job": used.commits / plan.jobs,
                "wal_bytes_per_job": used.wal_bytes / plan.jobs,
                "rows_per_job": used.rows / plan.jobs,
            }
            details["database"] = {
                "statements": used.statements,
                "commits": used.commits,
                "rows": used.rows,
                "wal_records": used.wal_records,
                "wal_bytes": used.wal_bytes,
            }
        completed = await session.count_completed()
        details["completed_in_store"] = completed
    if outcome.handled != plan.jobs:
        raise RuntimeError(f"drain handled {outcome.handled} of {plan.jobs} jobs")
    if completed is not None and completed < plan.jobs:
        raise RuntimeError(f"only {completed} of {plan.jobs} jobs are completed in the store")
    return RunOutcome({"jobs_per_s": plan.jobs / outcome.seconds}, details, db_cost)


async def latency(system: System, infra: Infra, plan: Plan, rate: float) -> RunOutcome:
    warmup = list(range(WARMUP_BASE, WARMUP_BASE + plan.warmup_jobs))
    async with system.session() as session:
        consumer = session.consumer()
        stopped = False
        remote: RemoteProducer | None = None
        starting: asyncio.Task[RemoteProducer] | None = None
        spec = await session.producer_spec()
        if spec is not None:
            # The usual case: the producer is a process of its own, like any client. It
            # starts (and queues its warm-up jobs) while the workers start.
            starting = asyncio.create_task(
                RemoteProducer.start(
                    spec,
                    rate=rate,
                    seconds=plan.latency_seconds,
                    warmup=len(warmup),
                    workdir=infra.workdir,
                )
            )
        try:
            await consumer.start()
            if starting is not None:
                remote = await starting
                if not await consumer.wait_done(len(warmup), plan.timeout_seconds):
                    raise RuntimeError("warm-up jobs did not run")
                load = await remote.run()
            else:
                # Embedded SQLite: requests are served in the workers' own process.
                producer = await session.producer()
                try:
                    await producer.enqueue_each(warmup)
                    if not await consumer.wait_done(len(warmup), plan.timeout_seconds):
                        raise RuntimeError("warm-up jobs did not run")
                    load = await produce_steadily(
                        lambda index: producer.enqueue_each([index]),
                        producer.enqueue_batch,
                        rate=rate,
                        seconds=plan.latency_seconds,
                    )
                finally:
                    await producer.close()
            total = len(warmup) + len(load.enqueued_at)
            finished = await consumer.wait_done(total, plan.timeout_seconds)
            await consumer.stop()
            stopped = True
        finally:
            if starting is not None and remote is None:
                with contextlib.suppress(Exception):
                    remote = await starting
            if remote is not None:
                await remote.kill()
            if not stopped:
                await consumer.stop()
    starts = consumer.starts.at
    samples = [
        (starts[index] - enqueued) * 1000
        for index, enqueued in load.enqueued_at.items()
        if index in starts
    ]
    missing = len(load.enqueued_at) - len(samples)
    if not finished or missing:
        raise RuntimeError(f"{missing} of {len(load.enqueued_at)} jobs never started")
    measured = [starts[index] for index in load.enqueued_at]
    served = len(measured) / (max(measured) - min(load.enqueued_at.values()))
    return RunOutcome(
        {
            "p50_ms": percentile(samples, 0.50),
            "p99_ms": percentile(samples, 0.99),
            "max_ms": max(samples),
            "rate": load.achieved_rate,
            "served": served,
        },
        {
            "target_rate": rate,
            "jobs": len(samples),
            "producer": "own process" if spec is not None else "harness process",
            "producer_behind_s": load.behind_seconds,
            "p90_ms": percentile(samples, 0.90),
            "min_ms": min(samples),
        },
    )


async def contention(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    async with system.session() as session:
        result = await session.contention(plan.contention_writers, plan.contention_updates)
    metrics = {key: float(result[key]) for key in ("updates_per_s", "conflict_retries", "gave_up")}
    if not result["version_delta_matches"]:
        raise RuntimeError("a progress update was lost (version delta != successful updates)")
    return RunOutcome(metrics, result)


def _sse_metrics(result: dict[str, Any], metrics: tuple[Metric, ...]) -> dict[str, float]:
    return {m.key: float(result[m.key]) for m in metrics}


async def sse_one_then_quiet(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    """`sse-1`: one stream, the only one on the server; then, on the same server and job,
    `sse-quiet`: the same stream measured again once `plan.sse_streams - 1` more are open,
    one on each of as many other jobs."""
    async with (
        system.session() as session,
        session.sse_target() as target,
        SseRun(target, infra.workdir) as run,
    ):
        one = await run.open(1)
        alone = await run.write(one, rate=plan.sse_rate, seconds=plan.sse_seconds)
        alone["streams_on_server"] = await run.streams_on_server()
        outcome = RunOutcome(_sse_metrics(alone, SSE), alone)
        if "sse-quiet" in plan.scenarios:
            others = await run.open(0, others=plan.sse_streams - 1)
            opened = await run.streams_on_server()
            among = await run.write(one, rate=plan.sse_rate, seconds=plan.sse_seconds)
            among.update(
                streams_on_server=opened,
                other_streams=plan.sse_streams - 1,
                open_seconds=others.open_seconds,
            )
            outcome.also["sse-quiet"] = RunOutcome(_sse_metrics(among, (*SSE, SSE_IDLE[-1])), among)
    return outcome


async def sse_many(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    """`plan.sse_streams` streams on the written job: the idle window, then the writer."""
    async with (
        system.session() as session,
        session.sse_target() as target,
        SseRun(target, infra.workdir) as run,
    ):
        clients = await run.open(plan.sse_streams)
        opened = await run.streams_on_server()
        idle = await run.idle(plan.sse_idle_seconds, clients)
        result = await run.write(clients, rate=plan.sse_rate, seconds=plan.sse_seconds)
        result.update(idle, streams_on_server=opened)
    return RunOutcome(_sse_metrics(result, (*SSE, *SSE_IDLE)), result)


async def sse_fanout(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    return RunOutcome(*await fanout.measure(system, infra, plan))


async def noisy_neighbour(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    return RunOutcome(*await capacity.noisy_neighbour(system, infra, plan))


async def claim_keys(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    return RunOutcome(*await capacity.claim_keys(system, infra, plan))


async def claim_tenants(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    return RunOutcome(*await capacity.claim_tenants(system, infra, plan))


async def limit_hammer(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    return RunOutcome(*await capacity.limit_hammer(system, infra, plan))


async def due_start(system: System, infra: Infra, plan: Plan) -> RunOutcome:
    return RunOutcome(*await due.measure(system, infra, plan))


ScenarioRunner = Callable[[System, Infra, Plan], Awaitable[RunOutcome]]


def runner_for(scenario: str, drain_rates: dict[str, float]) -> ScenarioRunner | str:
    """The function measuring `scenario`, or why it cannot run."""
    if scenario == "enqueue-single":
        return enqueue_single
    if scenario == "enqueue-single-httpx":
        return enqueue_single_httpx
    if scenario == "sse-1":
        return sse_one_then_quiet
    if scenario == "sse-many":
        return sse_many
    if scenario == "sse-fanout":
        return sse_fanout
    if scenario == "enqueue-bulk":
        return enqueue_bulk
    if scenario == "drain":
        return drain
    if scenario == "latency":
        return lambda system, infra, plan: latency(system, infra, plan, plan.latency_rate)
    if scenario == "latency-80":

        async def saturated(system: System, infra: Infra, plan: Plan) -> RunOutcome:
            measured = drain_rates.get(system.name, math.nan)
            if math.isnan(measured):
                raise RuntimeError("no drain rate was measured for this system")
            return await latency(system, infra, plan, measured * plan.saturation_fraction)

        return saturated
    if scenario == "contention":
        return contention
    if scenario == "noisy-neighbour":
        return noisy_neighbour
    if scenario == "claim-keys":
        return claim_keys
    if scenario == "claim-tenants":
        return claim_tenants
    if scenario == "limit-hammer":
        return limit_hammer
    if scenario == "due-start":
        return due_start
    return f"{scenario} has no runs of its own"
