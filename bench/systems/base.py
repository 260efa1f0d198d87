"""What the scenarios ask of a system. Each system adapts its own client and worker APIs to
these few calls, so the timing code (in `bench.scenarios`) is one piece shared by all.

Every job is a no-op whose payload is its index `i`; its handler notes when it started
(`Starts`) and returns nothing.
"""

from __future__ import annotations

import abc
import importlib.metadata
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import asyncpg

from bench.infra import Infra
from bench.measure import Starts
from bench.plan import Plan
from bench.sse import SseTarget

JOB_TYPE = "bench.noop"
Backend = Literal["postgresql", "sqlite", "redis"]


def package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class DrainOutcome:
    """One drain: the first handler start and the moment the last completion was
    recorded by the system (committed to its store)."""

    first_start: float
    last_completion: float
    handled: int
    duplicates: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.last_completion - self.first_start


class Producer(abc.ABC):
    """One client that enqueues jobs: for concurrency, the scenario opens several."""

    @abc.abstractmethod
    async def enqueue_each(self, indexes: list[int]) -> None:
        """Enqueue these jobs one call per job, one after the other."""

    @abc.abstractmethod
    async def enqueue_batch(self, indexes: list[int]) -> None:
        """Enqueue these jobs in one bulk call."""

    async def close(self) -> None:
        return None


class Consumer(abc.ABC):
    """The system's workers, run in their usual form (in-process tasks or processes).
    `starts` holds every handler start once the consumer has stopped."""

    starts: Starts

    @abc.abstractmethod
    async def drain(self, count: int, within: float) -> DrainOutcome:
        """Start the workers on `count` queued jobs; return once all are completed and the
        workers have stopped."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the workers, waiting for jobs (for the latency scenarios)."""

    async def wait_done(self, count: int, within: float) -> bool:
        """Wait until `count` jobs in all have been handled; False on timeout."""
        deadline = time.monotonic() + within
        while not await self.starts.wait_for(count, min(0.5, deadline - time.monotonic())):
            self.raise_if_dead()
            if time.monotonic() >= deadline:
                return False
        return True

    def raise_if_dead(self) -> None:
        """Raise when the workers stopped by themselves (a crash, not a stop())."""
        return

    @abc.abstractmethod
    async def stop(self) -> None: ...


class Session(abc.ABC):
    """One measured run on a fresh database (or Redis, flushed)."""

    database: str | None = None
    """The PostgreSQL database of this run, for the database-cost counters."""

    @abc.abstractmethod
    async def producer(self) -> Producer: ...

    async def filler(self) -> Producer:
        """The producer that fills the queue before a drain (not timed)."""
        return await self.producer()

    @abc.abstractmethod
    def consumer(self) -> Consumer: ...

    async def quiesce(self) -> None:
        """Close every connection this session holds to its database (between filling the
        queue and draining it), so the database's counters are complete when read."""
        return

    async def producer_spec(self) -> dict[str, Any] | None:
        """How a producer in another process reaches this session (`bench.producer`), or
        None when producers must live in the harness process (embedded SQLite)."""
        return None

    async def count_completed(self) -> int | None:
        """Completed jobs according to the system's own store (a sanity check)."""
        return None

    async def contention(self, writers: int, updates: int) -> dict[str, Any]:
        """Concurrent progress reports on one running job (Conveyor only)."""
        raise NotImplementedError

    async def single_creates(self, plan: Plan) -> tuple[dict[str, float], dict[str, Any]] | None:
        """`enqueue-single` by other means than `producer()` (metrics, details), or None
        for the usual producers. conveyor-http: wrk."""
        return None

    async def server_pid(self) -> int | None:
        """The server process the clients talk to, if there is one (for its CPU)."""
        return None

    def sse_target(self) -> AbstractAsyncContextManager[SseTarget]:
        """A running `conveyor serve` on this session's store (Conveyor only)."""
        raise NotImplementedError


class System(abc.ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    backend: ClassVar[Backend]
    is_conveyor: ClassVar[bool] = False
    distribution: ClassVar[str]
    scenarios: ClassVar[frozenset[str]] = frozenset(
        {"enqueue-single", "enqueue-bulk", "drain", "latency", "latency-80"}
    )
    not_applicable: ClassVar[dict[str, str]] = {}
    """Why a scenario has no equivalent for this system."""

    def __init__(self, infra: Infra, plan: Plan) -> None:
        self.infra = infra
        self.plan = plan

    def supports(self, scenario: str) -> bool:
        if scenario == "db-cost":
            return self.backend == "postgresql" and "drain" in self.scenarios
        return scenario in self.scenarios

    def why_not(self, scenario: str) -> str:
        if scenario in self.not_applicable:
            return self.not_applicable[scenario]
        if scenario == "db-cost":
            return f"not on PostgreSQL ({self.backend})"
        if scenario == "enqueue-single-httpx":
            return "Conveyor's HTTP API only"
        if scenario == "slots":
            return "Conveyor only (peers' worker settings were tuned by hand: see settings)"
        if scenario.startswith("sse-"):
            return "no event streams"
        return "no equivalent"

    def unavailable(self) -> str | None:
        """Why this system cannot run here (a package or server missing), or None."""
        return None

    def scenario_unavailable(self, scenario: str) -> str | None:
        """Why this one scenario cannot run here (a tool missing), or None."""
        return None

    def version(self) -> str:
        return package_version(self.distribution)

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """How this system is configured for the benchmark, for the report."""

    async def prepare(self) -> None:
        """Once per harness run: build the schema template."""
        return

    async def cleanup(self) -> None:
        return None

    @abc.abstractmethod
    def session(self) -> AbstractAsyncContextManager[Session]:
        """A fresh store for one measured run."""


async def count_rows(url: str, sql: str) -> int:
    """`SELECT count(*) …` on a peer's database, on a connection of its own."""
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_postgres_database(infra: Infra, template: str) -> AsyncIterator[str]:
    """A database cloned from `template`, dropped afterwards."""
    name = await infra.postgres.fresh_database(template)
    try:
        yield name
    finally:
        await infra.postgres.drop(name)
