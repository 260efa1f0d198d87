"""Benchmark Conveyor against its peers, in one run on one machine.

    python -m bench.run [--quick] [--only SCENARIO ...] [--jobs N] [--repeat R]
                        [--slots N ...] [--streams N] [--out bench/results/latest.json]

Starts a throwaway PostgreSQL (fsync, synchronous_commit and full_page_writes on) and a
Redis, runs every scenario for every system with the same job count, repeats each run,
prints a table (median [min..max]) and writes every run's figures as JSON. Measurement
only: nothing here passes or fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import conveyor
from bench.infra import Infra, Postgres, Redis, machine_facts
from bench.plan import SCENARIOS, Plan
from bench.report import Row, Run, compare, render_table
from bench.scenarios import RunOutcome, describe, metrics_of, runner_for
from bench.systems.base import System, package_version
from bench.systems.conveyor import ConveyorHttp, ConveyorPostgres, ConveyorSqlite, ConveyorSystem
from bench.systems.pgqueuer_system import PgQueuer
from bench.systems.procrastinate_system import Procrastinate
from bench.systems.rq_system import Rq

REPO = Path(__file__).resolve().parents[1]
INNER = {"drain": ("db-cost",), "sse-1": ("sse-quiet",)}
"""Scenarios measured within another's runs."""
SYSTEMS: tuple[type[System], ...] = (
    ConveyorPostgres,
    ConveyorHttp,
    ConveyorSqlite,
    Procrastinate,
    PgQueuer,
    Rq,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one run each")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", choices=SCENARIOS)
    parser.add_argument("--jobs", type=int, help="jobs per run (enqueue and drain)")
    parser.add_argument("--repeat", type=int, help="runs per scenario and system")
    parser.add_argument(
        "--slots", type=int, nargs="+", metavar="N", help="worker slots `slots` tries"
    )
    parser.add_argument("--streams", type=int, help="open streams in sse-many")
    parser.add_argument(
        "--followers", type=int, nargs="+", metavar="N", help="workspace followers sse-fanout tries"
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        default=None,
        help="claim-keys: drain without ANALYZE after the fill",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    return parser.parse_args(argv)


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        head, dirty = "", ""
    if not head:
        # An exported tree (git archive) has no history: its runner names the revision.
        return os.environ.get("BENCH_REVISION", "unknown")
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


class Harness:
    def __init__(self, plan: Plan, infra: Infra) -> None:
        self.plan = plan
        self.infra = infra
        self.systems = [kind(infra, plan) for kind in SYSTEMS]
        self.rows: dict[tuple[str, str], Row] = {}
        self.drain_rates: dict[str, float] = {}

    def row(self, scenario: str, system: System) -> Row:
        return self.rows.setdefault((scenario, system.name), Row(scenario, system.name))

    async def prepare(self) -> list[System]:
        ready = []
        for system in self.systems:
            reason = system.unavailable()
            # A system with none of the plan's scenarios (`--only`) runs nothing to set up for.
            if reason is None and any(map(system.supports, self.plan.scenarios)):
                try:
                    await system.prepare()
                except Exception as error:
                    reason = f"set-up failed: {error!r}"
                    log(traceback.format_exc())
            if reason is not None:
                log(f"{system.name}: unavailable ({reason})")
                for scenario in self.plan.scenarios:
                    row = self.row(scenario, system)
                    row.status, row.reason = "unavailable", reason
                continue
            ready.append(system)
        return ready

    async def run(self) -> None:
        ready = await self.prepare()
        for scenario in self.plan.scenarios:
            for system in ready:
                if not system.supports(scenario):
                    row = self.row(scenario, system)
                    row.status, row.reason = "n/a", system.why_not(scenario)
            if scenario in ("db-cost", "sse-quiet"):
                continue  # measured within the drain and sse-1 runs
            takers = []
            for system in ready:
                if not system.supports(scenario):
                    continue
                missing = system.scenario_unavailable(scenario)
                if missing is not None:
                    row = self.row(scenario, system)
                    row.status, row.reason = "unavailable", missing
                    continue
                takers.append(system)
            if scenario == "slots":
                await self.tune_slots([s for s in takers if isinstance(s, ConveyorSystem)])
                continue
            runner = runner_for(scenario, self.drain_rates)
            assert not isinstance(runner, str), runner
            for repeat in range(self.plan.repeat):
                # Rotate the order each round, so no system always runs first or last.
                shift = repeat % len(takers) if takers else 0
                for system in takers[shift:] + takers[:shift]:
                    await self.measure(scenario, system, runner, repeat)
            if scenario == "drain":
                for system in takers:
                    self.drain_rates[system.name] = (
                        self.row("drain", system).summary("jobs_per_s").median
                    )

    async def tune_slots(self, takers: list[ConveyorSystem]) -> None:
        """Drain at each of `plan.slot_choices` worker slots, `repeat` rounds, and keep each
        variant's best median for the scenarios after this one."""
        runner = runner_for("drain", self.drain_rates)
        assert not isinstance(runner, str)
        choices = list(self.plan.slot_choices)
        for repeat in range(self.plan.repeat):
            shift = repeat % len(takers) if takers else 0
            turn = repeat % len(choices)
            for system in takers[shift:] + takers[:shift]:
                for slots in choices[turn:] + choices[:turn]:
                    system.set_slots(slots, "trial")
                    await self.measure(
                        "slots",
                        system,
                        runner,
                        repeat,
                        rename={"jobs_per_s": f"slots_{slots}"},
                        label=f"slots / {system.name} {slots} slots",
                    )
        for system in takers:
            row = self.row("slots", system)
            medians = {n: row.summary(f"slots_{n}").median for n in choices}
            measured = {n: m for n, m in medians.items() if not math.isnan(m)}
            if not measured:
                system.set_slots(
                    type(system)(self.infra, self.plan).slots, "default: every trial failed"
                )
                continue
            best = max(measured, key=lambda n: measured[n])
            tried = ", ".join(f"{n}: {m:,.0f}" for n, m in medians.items())
            system.set_slots(best, f"chosen by `slots`, median drain jobs/s at {tried}")
            row.runs.append(Run({"chosen": float(best)}, {"medians": medians}))
            log(f"slots / {system.name}: {best} slots ({tried})")

    async def measure(
        self,
        scenario: str,
        system: System,
        runner: Any,
        repeat: int,
        *,
        rename: dict[str, str] | None = None,
        label: str | None = None,
    ) -> None:
        row = self.row(scenario, system)
        label = f"{label or f'{scenario} / {system.name}'} run {repeat + 1}/{self.plan.repeat}"
        started = time.monotonic()
        settle_heap()
        try:
            outcome: RunOutcome = await asyncio.wait_for(
                runner(system, self.infra, self.plan), self.plan.timeout_seconds * 2
            )
        except Exception as error:
            row.errors.append(f"{type(error).__name__}: {error}")
            log(f"{label}: FAILED {type(error).__name__}: {error}")
            log(traceback.format_exc())
            for inner in (row, *(self.row(s, system) for s in INNER.get(scenario, ()))):
                if inner.scenario in self.plan.scenarios and not inner.runs:
                    inner.status, inner.reason = "error", f"{type(error).__name__}: {error}"
            return
        for inner in (row, *(self.row(s, system) for s in INNER.get(scenario, ()))):
            if inner.status == "error":
                inner.status, inner.reason = "ok", ""
        outcome.metrics = taken(outcome.metrics, rename)
        row.runs.append(Run(outcome.metrics, outcome.details))
        for other, also in outcome.also.items():
            if other in self.plan.scenarios:
                self.row(other, system).runs.append(Run(taken(also.metrics), also.details))
        if outcome.db_cost is not None and scenario == "drain" and "db-cost" in self.plan.scenarios:
            self.row("db-cost", system).runs.append(Run(outcome.db_cost))
        shown = ", ".join(
            f"{key}={value:,.1f}" for key, value in outcome.metrics.items() if not math.isnan(value)
        )
        log(f"{label}: {shown} ({time.monotonic() - started:.1f}s)")

    def ordered_rows(self) -> list[Row]:
        order = {name: index for index, name in enumerate(s.name for s in self.systems)}
        rows = [row for row in self.rows.values() if row.scenario in self.plan.scenarios]
        return sorted(rows, key=lambda r: (SCENARIOS.index(r.scenario), order[r.system]))


def settle_heap() -> None:
    """Every run starts from the same collector state, for every system alike: what the
    runs before left is collected and the rest frozen (`gc.freeze`), as `conveyor serve` and
    `conveyor worker` freeze their start-up heap (`conveyor.heap`). Without it, a run's
    full collections would walk every earlier run's and every system's leftovers too."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def environment(plan: Plan, infra: Infra, facts: dict[str, Any]) -> dict[str, Any]:
    loop = "uvloop" if _uvloop() is not None else "asyncio"
    return {
        "machine": {
            **facts,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "event_loop": f"{loop} (the harness process: producers and in-process workers)",
            "garbage_collector": (
                "the harness process collects and freezes its heap (gc.freeze) before each "
                "run, for every system"
            ),
            "load_average_at_end": os.getloadavg(),
        },
        "conveyor_revision": git_revision(),
        "conveyor_source": str(Path(conveyor.__file__).parent),
        "postgresql": infra.postgres.settings,
        "redis": {
            "version": infra.redis.version if infra.redis else None,
            "persistence": "none (--save '' --appendonly no)",
        },
        "plan": {
            "quick": plan.quick,
            "jobs": plan.jobs,
            "repeat": plan.repeat,
            "producers": plan.producers,
            "wrk_threads": plan.wrk_threads,
            "wrk_seconds": plan.wrk_seconds,
            "batch_size": plan.batch_size,
            "slot_choices": list(plan.slot_choices),
            "claim_wait_seconds": plan.claim_wait_seconds,
            "server_claim_poll_seconds": plan.server_claim_poll_seconds,
            "latency_rate": plan.latency_rate,
            "latency_seconds": plan.latency_seconds,
            "saturation_fraction": plan.saturation_fraction,
            "contention_writers": plan.contention_writers,
            "contention_updates": plan.contention_updates,
            "sse_streams": plan.sse_streams,
            "sse_rate": plan.sse_rate,
            "sse_seconds": plan.sse_seconds,
            "sse_idle_seconds": plan.sse_idle_seconds,
            "sse_fanout_followers": list(plan.sse_fanout_followers),
            "sse_fanout_seconds": plan.sse_fanout_seconds,
            "sse_fanout_connections": plan.sse_fanout_connections,
            "sse_fanout_server_per_window": plan.sse_fanout_server_per_window,
            "noisy_neighbour": {
                "a_jobs": plan.noisy_jobs,
                "b_jobs": plan.noisy_b_jobs,
                "head_start": plan.noisy_head_start,
                "slots": plan.noisy_slots,
            },
            "claim_keys": {
                "keys": plan.keys,
                "max_running": plan.keys_max_running,
                "analyze_after_fill": plan.keys_analyze,
            },
            "claim_tenants": {"tenants": plan.tenants},
            "limit_hammer": {
                "jobs": plan.hammer_jobs,
                "workers": plan.hammer_workers,
                "slots": plan.hammer_slots,
                "max_running": plan.hammer_max_running,
                "work_ms": plan.hammer_work_ms,
            },
            "due_start": {
                "jobs": plan.due_jobs,
                "spacing_s": plan.due_spacing,
                "lead_s": list(plan.due_lead),
                "slots": plan.due_slots,
                "retries": plan.due_retries,
                "retry_backoff_s": plan.due_retry_backoff,
            },
            "scenarios": list(plan.scenarios),
        },
    }


def header_lines(
    plan: Plan, infra: Infra, systems: list[System], facts: dict[str, Any]
) -> list[str]:
    pg = infra.postgres.settings
    runs = "1 run" if plan.repeat == 1 else f"{plan.repeat} runs, median [min..max]"
    disk = facts["disk"]
    lines = [
        f"Conveyor benchmark: {plan.jobs} jobs per run, {runs}"
        + (" (--quick: smoke-test sizes, not for comparison)" if plan.quick else ""),
        f"machine: {facts['cpus']} CPUs ({facts['cpu_model']}), {facts['memory_gib']} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{'uvloop' if _uvloop() else 'asyncio'} in the harness",
        f"Conveyor revision {git_revision()}, imported from {Path(conveyor.__file__).parent}",
        f"disk: {disk['fdatasync_per_s']:,.0f} fdatasync/s of 8 KiB "
        f"({disk['fdatasync_mean_ms']:.2f} ms each); {facts['wrk'] or 'wrk not installed'}",
        f"PostgreSQL {pg.get('server_version', '?')}: fsync={pg.get('fsync')} "
        f"synchronous_commit={pg.get('synchronous_commit')} "
        f"full_page_writes={pg.get('full_page_writes')} wal_sync_method="
        f"{pg.get('wal_sync_method')} shared_buffers={pg.get('shared_buffers')}",
        f"Redis {infra.redis.version if infra.redis else 'not available'}: no persistence "
        "(--save '' --appendonly no): RQ's figures are not durable",
        "how: every run on a fresh database (or a flushed Redis), the same job count for all;",
        "  drain = first handler start to last completion stored; latency = time.time() just",
        "  before the enqueue call to handler start (one machine, one clock), the producer in a",
        "  process of its own (conveyor-sqlite: in the workers' process, as embedded); db-cost =",
        "  top-level statements (BEGIN/COMMIT and pool resets count, statements inside SQL",
        "  functions do not) and commits, over the drain window, per job",
        "systems:",
    ]
    for system in systems:
        lines.append(f"  {system.name:<16} {system.title}, {system.version()}")
        for key, value in system.settings().items():
            lines.append(f"  {'':<16}   {key}: {value}")
    return lines


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def taken(metrics: dict[str, float], rename: dict[str, str] | None = None) -> dict[str, float]:
    """The figures that could be taken: one that could not (CPU without psutil) is NaN, and
    is left out rather than shown as NaN."""
    return {(rename or {}).get(k, k): v for k, v in metrics.items() if not math.isnan(v)}


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


async def main_async(plan: Plan, out: Path) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    postgres = Postgres()
    redis = Redis() if Redis.available() else None
    started = datetime.datetime.now(datetime.UTC)
    load_at_start = os.getloadavg()
    log(f"starting PostgreSQL and {'Redis' if redis else 'no Redis (not installed)'}")
    postgres.start()
    try:
        if redis is not None:
            redis.start()
        await postgres.read_settings()
        facts = await asyncio.to_thread(machine_facts, workdir)
        infra = Infra(postgres, redis, workdir)
        harness = Harness(plan, infra)
        await harness.run()
        rows = harness.ordered_rows()
        header = header_lines(plan, infra, harness.systems, facts)
        header.insert(
            2,
            "load average (1, 5, 15 min) at start "
            + " ".join(f"{x:.2f}" for x in load_at_start)
            + ", at end "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
            + " (other work on the machine skews the figures)",
        )
        print(render_table(rows, plan, header), flush=True)
        conveyor = {s.name for s in harness.systems if s.is_conveyor}
        document: dict[str, Any] = {
            "started_at": started.isoformat(),
            "finished_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "environment": environment(plan, infra, facts),
            "systems": {
                s.name: {
                    "title": s.title,
                    "version": s.version(),
                    "backend": s.backend,
                    "is_conveyor": s.is_conveyor,
                    "settings": s.settings(),
                    "unavailable": s.unavailable(),
                }
                for s in harness.systems
            },
            "scenarios": {
                name: {
                    "description": describe(name, plan),
                    "metrics": {
                        m.key: {"label": m.label, "higher_is_better": m.higher_is_better}
                        for m in metrics_of(name, plan)
                    },
                }
                for name in plan.scenarios
            },
            "rows": [row.as_json(plan) for row in rows],
            "comparisons": [c.as_json() for c in compare(rows, conveyor)],
            "packages": {
                name: package_version(name)
                for name in (
                    "conveyor",
                    "procrastinate",
                    "pgqueuer",
                    "rq",
                    "redis",
                    "psycopg",
                    "psycopg-pool",
                    "asyncpg",
                    "uvicorn",
                    "httpx",
                    "uvloop",
                    "psutil",
                )
            },
        }
        document["environment"]["machine"]["load_average_at_start"] = load_at_start
        await asyncio.to_thread(write_json, out, document)
        log(f"wrote {out}")
        return 0
    finally:
        if redis is not None:
            redis.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.quick_plan() if args.quick else Plan()
    plan = plan.with_overrides(
        jobs=args.jobs,
        repeat=args.repeat,
        only=args.only,
        streams=args.streams,
        slots=args.slots,
        followers=args.followers,
        analyze=args.analyze,
    )
    uvloop = _uvloop()
    if uvloop is not None:
        return int(uvloop.run(main_async(plan, args.out)))
    return asyncio.run(main_async(plan, args.out))


if __name__ == "__main__":
    sys.exit(main())
