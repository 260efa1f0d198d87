"""How big a benchmark run is: the full run, or `--quick` for a smoke test."""

from __future__ import annotations

from dataclasses import dataclass, replace

SCENARIOS = (
    "enqueue-single",
    "enqueue-bulk",
    "drain",
    "db-cost",
    "latency",
    "latency-80",
    "contention",
)
"""In the order they run: `latency-80` needs each system's drain rate, and `db-cost` is
read around the drain runs (it has no runs of its own)."""


@dataclass(frozen=True, slots=True)
class Plan:
    quick: bool = False
    jobs: int = 5000
    """Jobs per run for enqueue and drain, the same for every system."""
    repeat: int = 3
    producers: int = 8
    """Concurrent producers in `enqueue-single`, each making one call per job."""
    batch_size: int = 500
    """Jobs per call in `enqueue-bulk` (and for filling the queue before a drain)."""
    latency_rate: float = 100.0
    latency_seconds: float = 5.0
    saturation_fraction: float = 0.8
    """`latency-80` runs at this fraction of each system's own median drain rate."""
    warmup_jobs: int = 40
    contention_writers: int = 64
    contention_updates: int = 40
    """Updates each writer makes in `contention`."""
    timeout_seconds: float = 300.0
    scenarios: tuple[str, ...] = SCENARIOS

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(
            quick=True,
            jobs=500,
            repeat=1,
            latency_seconds=0.5,
            warmup_jobs=8,
            contention_updates=3,
            timeout_seconds=60.0,
        )

    def with_overrides(
        self, *, jobs: int | None, repeat: int | None, only: list[str] | None
    ) -> Plan:
        plan = self
        if jobs is not None:
            plan = replace(plan, jobs=jobs)
        if repeat is not None:
            plan = replace(plan, repeat=repeat)
        if only:
            unknown = sorted(set(only) - set(SCENARIOS))
            if unknown:
                raise ValueError(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
            wanted = set(only)
            if "db-cost" in wanted:
                wanted.add("drain")
            if "latency-80" in wanted:
                wanted.add("drain")
            plan = replace(plan, scenarios=tuple(s for s in SCENARIOS if s in wanted))
        return plan
