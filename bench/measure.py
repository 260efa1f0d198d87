"""Small measuring tools shared by every system: handler-start records, percentiles, a
steady-rate producer and waiting helpers. Timestamps are `time.time()` (one machine, one
clock) wherever a handler in another process must be compared with the producer."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


class Starts:
    """When each job's handler started, by the job's index `i` (its payload)."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.duplicates = 0
        self._changed = asyncio.Event()

    def record(self, index: int, when: float | None = None) -> None:
        if index in self.at:
            self.duplicates += 1
            return
        self.at[index] = time.time() if when is None else when
        self._changed.set()

    def merge(self, starts: dict[int, float]) -> None:
        for index, when in starts.items():
            self.record(index, when)

    def __len__(self) -> int:
        return len(self.at)

    @property
    def first(self) -> float:
        return min(self.at.values())

    async def wait_for(self, count: int, within: float) -> bool:
        """Wait until `count` distinct jobs have started (same-process handlers)."""
        deadline = time.monotonic() + within
        while len(self.at) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
        return True


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    median: float
    low: float
    high: float
    runs: list[float]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        clean = [value for value in values if not math.isnan(value)]
        if not clean:
            return cls(math.nan, math.nan, math.nan, list(values))
        return cls(statistics.median(clean), min(clean), max(clean), list(values))

    def as_json(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": self.runs}


async def poll_until(
    check: Callable[[], bool] | Callable[[], Awaitable[bool]],
    *,
    within: float,
    interval: float = 0.005,
    what: str = "condition",
) -> float:
    """Wait until `check()` is true; return `time.time()` of the first true look. The
    interval bounds the error this adds to a measured end time."""
    deadline = time.monotonic() + within
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class ProducedLoad:
    enqueued_at: dict[int, float] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    behind_seconds: float = 0.0
    """How late the producer ran at worst (it could not keep up when this is large)."""

    @property
    def achieved_rate(self) -> float:
        elapsed = self.finished - self.started
        return len(self.enqueued_at) / elapsed if elapsed > 0 else math.nan


TICK_SECONDS = 0.01
WARMUP_BASE = 10_000_000
"""Warm-up jobs carry indexes from here, apart from the measured ones."""


async def produce_steadily(
    enqueue_one: Callable[[int], Awaitable[None]],
    enqueue_many: Callable[[list[int]], Awaitable[None]],
    *,
    rate: float,
    seconds: float,
    first_index: int = 0,
) -> ProducedLoad:
    """Enqueue `rate` jobs a second for `seconds`, on a fixed schedule (open loop: a slow
    enqueue does not slow the schedule down, the producer catches up instead). Below one
    job per 10 ms tick each job is its own call at its own time; above, each tick's jobs go
    in one bulk call. A job's enqueue time is taken just before the call that carries it."""
    load = ProducedLoad()
    total = max(1, round(rate * seconds))
    load.started = time.time()
    origin = time.monotonic()
    index = first_index
    sent = 0
    while sent < total:
        due = min(total, math.floor((time.monotonic() - origin) * rate) + 1)
        batch = list(range(index, index + max(0, due - sent)))
        if batch:
            load.behind_seconds = max(
                load.behind_seconds, time.monotonic() - origin - (sent / rate)
            )
            now = time.time()
            for item in batch:
                load.enqueued_at[item] = now
            if len(batch) == 1:
                await enqueue_one(batch[0])
            else:
                await enqueue_many(batch)
            index += len(batch)
            sent += len(batch)
        if sent >= total:
            break
        next_due = origin + sent / rate
        per_call = 1.0 / rate
        wait = next_due - time.monotonic() if per_call >= TICK_SECONDS else TICK_SECONDS
        if wait > 0:
            await asyncio.sleep(wait)
    load.finished = time.time()
    return load
