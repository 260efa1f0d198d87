"""How big a benchmark run is: the full run, or `--quick` for a smoke test."""

from __future__ import annotations

from dataclasses import dataclass, replace

SCENARIOS = (
    "enqueue-single",
    "enqueue-single-httpx",
    "enqueue-bulk",
    "slots",
    "drain",
    "db-cost",
    "latency",
    "latency-80",
    "contention",
    "noisy-neighbour",
    "claim-keys",
    "claim-tenants",
    "limit-hammer",
    "due-start",
    "sse-1",
    "sse-quiet",
    "sse-many",
    "sse-fanout",
)
"""In the order they run: `slots` picks each Conveyor variant's worker slots for the
scenarios after it, `latency-80` needs each system's drain rate, `db-cost` is read around
the drain runs and `sse-quiet` is measured within each `sse-1` run (neither has runs of its
own)."""


@dataclass(frozen=True, slots=True)
class Plan:
    quick: bool = False
    jobs: int = 50_000
    """Jobs per run for enqueue and drain, the same for every system: the issue's 50,000
    (a drain of 5,000 lasted under half a second on the fastest systems)."""
    repeat: int = 3
    producers: int = 8
    """Concurrent producers in `enqueue-single`, each making one call per job (for
    conveyor-http: wrk connections)."""
    wrk_threads: int = 2
    wrk_seconds: float = 10.0
    """Length of one wrk run (`enqueue-single` of conveyor-http), after a 1 s warm-up."""
    batch_size: int = 500
    """Jobs per call in `enqueue-bulk` (and for filling the queue before a drain)."""
    slot_choices: tuple[int, ...] = (100, 300, 600, 1000)
    """Worker slots tried by `slots` for each Conveyor variant (the best median is kept)."""
    claim_wait_seconds: float = 1.0
    """Long poll of an idle Conveyor worker's claim (`due-start` keeps the worker's default,
    which is what it measures). Wake-ups are pushed (in-process signal, LISTEN/NOTIFY), so
    this only decides how long a stopping worker waits for its last claim to come back:
    every drain ends with one."""
    latency_rate: float = 100.0
    latency_seconds: float = 5.0
    saturation_fraction: float = 0.8
    """`latency-80` runs at this fraction of each system's own median drain rate."""
    warmup_jobs: int = 40
    contention_writers: int = 64
    contention_updates: int = 40
    """Updates each writer makes in `contention`."""
    sse_streams: int = 1000
    """Open streams in `sse-many` (all on the written job) and `sse-quiet` (one on it, the
    rest on other jobs); `sse-1`: one."""
    sse_rate: float = 50.0
    """Events a second the writer appends to the streamed job."""
    sse_seconds: float = 4.0
    sse_idle_seconds: float = 17.0
    """How long `sse-many` watches the server with every stream open and nothing written:
    longer than the server's ping interval (15 s by default), so each stream's ping and
    key re-check fall inside the window."""
    sse_fanout_followers: tuple[int, ...] = (0, 100, 300)
    """Clients following the workspace stream in `sse-fanout`, one window each."""
    sse_fanout_seconds: float = 10.0
    sse_fanout_connections: int = 8
    """Keep-alive connections the `sse-fanout` producer creates jobs on, one request each."""
    sse_fanout_measured: int = 10
    """Followers that parse every event for its delivery lag (the rest only count them)."""
    sse_fanout_server_per_window: bool = True
    """`sse-fanout`: a fresh database and `conveyor serve` for each follower count, so no
    window inherits the rows, the heap or the streams of the one before."""
    noisy_jobs: int = 100_000
    """`noisy-neighbour`: jobs queued in workspace A before the pool starts."""
    noisy_b_jobs: int = 100
    """`noisy-neighbour`: jobs workspace B creates, in one call, once the pool is busy."""
    noisy_head_start: int = 5_000
    """`noisy-neighbour`: A's jobs the pool completes before B creates its own."""
    noisy_slots: int = 200
    keys: int = 1_000
    """`claim-keys`: distinct concurrency keys over `jobs` jobs."""
    keys_max_running: int = 10
    """`claim-keys`: each key's limit in the limited variant."""
    tenants: int = 50
    """`claim-tenants`: workspaces sharing `jobs` and `keys`, served by one worker."""
    keys_analyze: bool = True
    """`claim-keys`: ANALYZE the database after filling it, so every variant is planned on
    the table's statistics (False: as the database has them then; see docs/benchmarks.md)."""
    hammer_jobs: int = 5_000
    hammer_workers: int = 8
    hammer_slots: int = 100
    """`limit-hammer`: slots of each of the `hammer_workers` workers."""
    hammer_max_running: int = 5
    hammer_work_ms: float = 10.0
    """`limit-hammer`: each handler sleeps a uniform 0..this many ms, so the jobs end one by
    one and every ending is a race for the room it leaves."""
    due_jobs: int = 200
    """`due-start`: jobs, each due at its own time, `due_spacing` apart."""
    due_spacing: float = 0.05
    due_lead: tuple[float, float] = (0.3, 3.0)
    """`due-start`: each job is created this many seconds (uniform) before it is due."""
    due_slots: int = 4
    due_retries: int = 50
    """`due-start`: jobs that fail once and come due again after their backoff."""
    due_retry_spacing: float = 0.1
    due_retry_backoff: float = 0.5
    server_claim_poll_seconds: float | None = None
    """How often a claim long-polling on conveyor-http's `conveyor serve` looks again (None:
    the server's default, 10 s). That is also when a claim whose worker has gone notices it,
    and the server's graceful stop waits for it: `due-start` stops its `conveyor worker` in
    the middle of a long poll of the default 10 s."""
    timeout_seconds: float = 300.0
    scenarios: tuple[str, ...] = SCENARIOS

    @classmethod
    def quick_plan(cls) -> Plan:
        """Smoke-test sizes (tests/bench): every scenario for every system, each as small
        as it can be while it still does what it measures. Most of a quick run is fixed
        cost (fresh databases, server and client processes starting): the sizes keep the
        rest below it."""
        return cls(
            quick=True,
            jobs=200,
            repeat=1,
            wrk_seconds=1.0,
            slot_choices=(100,),
            # Every drain ends with a stop that waits for the worker's last claim.
            claim_wait_seconds=0.1,
            latency_seconds=0.3,
            warmup_jobs=8,
            contention_writers=16,  # still racing; opening 64 connections costs more
            contention_updates=3,
            sse_streams=50,
            sse_seconds=0.3,
            sse_idle_seconds=0.3,
            sse_fanout_followers=(0, 20),
            sse_fanout_seconds=0.5,
            # One server for both windows: its start is most of a quick window.
            sse_fanout_server_per_window=False,
            # B still arrives with most of A's jobs queued ahead of it.
            noisy_jobs=1_000,
            noisy_b_jobs=20,
            noisy_head_start=200,
            keys=50,
            keys_max_running=5,
            tenants=5,
            # Each of the 3 x 20 slots still races for the room of a limit of 5.
            hammer_jobs=100,
            hammer_workers=3,
            hammer_slots=20,
            due_jobs=10,
            due_lead=(0.2, 0.5),
            due_retries=3,
            server_claim_poll_seconds=1.0,
            timeout_seconds=60.0,
        )

    def with_overrides(
        self,
        *,
        jobs: int | None,
        repeat: int | None,
        only: list[str] | None,
        streams: int | None = None,
        slots: list[int] | None = None,
        followers: list[int] | None = None,
        analyze: bool | None = None,
    ) -> Plan:
        plan = self
        if analyze is not None:
            plan = replace(plan, keys_analyze=analyze)
        if jobs is not None:
            plan = replace(plan, jobs=jobs)
        if repeat is not None:
            plan = replace(plan, repeat=repeat)
        if streams is not None:
            plan = replace(plan, sse_streams=streams)
        if slots:
            plan = replace(plan, slot_choices=tuple(slots))
        if followers:
            plan = replace(plan, sse_fanout_followers=tuple(followers))
        if only:
            unknown = sorted(set(only) - set(SCENARIOS))
            if unknown:
                raise ValueError(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
            wanted = set(only)
            if "db-cost" in wanted:
                wanted.add("drain")
            if "latency-80" in wanted:
                wanted.add("drain")
            if "sse-quiet" in wanted:
                wanted.add("sse-1")
            plan = replace(plan, scenarios=tuple(s for s in SCENARIOS if s in wanted))
        return plan
