"""RQ (Redis): `Queue.enqueue` / `enqueue_many` to enqueue; several `SimpleWorker`
processes to run jobs (RQ workers run one job at a time, so parallelism is processes).

Redis runs without persistence (`--save '' --appendonly no`): RQ's figures are for a queue
that loses everything on a crash, unlike the PostgreSQL systems (fsync on)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

from bench.infra import Infra, Redis, importable
from bench.measure import Starts, poll_until
from bench.plan import Plan
from bench.process import child_env
from bench.systems.base import (
    Backend,
    Consumer,
    DrainOutcome,
    Producer,
    Session,
    System,
    package_version,
)

WORKER_PROCESSES = 4
"""SimpleWorker processes. Tuned on 2 cores: 2, 4 and 8 were tried."""
QUEUE = "bench"
READY_KEY = "bench:ready"
GO_KEY = "bench:go"
REPO = Path(__file__).resolve().parents[2]


class RqProducer(Producer):
    """RQ's client is synchronous: each producer's calls run on a thread of its own."""

    def __init__(self, url: str, threads: ThreadPoolExecutor, *, owned: bool = False) -> None:
        from redis import Redis as RedisClient
        from rq import Queue

        self._connection = RedisClient.from_url(url)
        self._queue = Queue(QUEUE, connection=self._connection)
        self._threads = threads
        self._owned = owned

    async def enqueue_each(self, indexes: list[int]) -> None:
        from bench.systems.rq_jobs import noop

        def run() -> None:
            for index in indexes:
                self._queue.enqueue(noop, index)

        await asyncio.get_running_loop().run_in_executor(self._threads, run)

    async def enqueue_batch(self, indexes: list[int]) -> None:
        from rq import Queue

        from bench.systems.rq_jobs import noop

        def run() -> None:
            self._queue.enqueue_many([Queue.prepare_data(noop, (index,)) for index in indexes])

        await asyncio.get_running_loop().run_in_executor(self._threads, run)

    async def close(self) -> None:
        self._connection.close()
        if self._owned:
            self._threads.shutdown(wait=True)


async def producer_from_spec(spec: dict[str, Any]) -> Producer:
    """A producer in another process (`bench.producer`)."""
    return RqProducer(spec["url"], ThreadPoolExecutor(max_workers=1), owned=True)


class RqConsumer(Consumer):
    def __init__(self, url: str, workdir: Path, processes: int) -> None:
        from redis import Redis as RedisClient

        self.starts = Starts()
        self._url = url
        self._workdir = workdir
        self._count = processes
        self._redis = RedisClient.from_url(url)
        self._processes: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def _spawn(self, *, burst: bool, gated: bool) -> None:
        self._redis.delete(READY_KEY, GO_KEY)
        env = child_env()
        for number in range(self._count):
            out = self._workdir / f"rq-worker-{os.getpid()}-{time.monotonic_ns()}-{number}.json"
            command = [
                sys.executable,
                "-m",
                "bench.systems.rq_worker",
                "--redis",
                self._url,
                "--queue",
                QUEUE,
                "--out",
                str(out),
                "--ready",
                READY_KEY,
            ]
            if gated:
                command += ["--go", GO_KEY]
            if burst:
                command.append("--burst")
            process = await asyncio.create_subprocess_exec(*command, env=env, cwd=REPO)
            self._processes.append((process, out))
        await poll_until(
            lambda: self._redis.llen(READY_KEY) >= self._count or self._any_exited(),
            within=60,
            interval=0.02,
            what="RQ workers to start",
        )
        if self._any_exited():
            raise RuntimeError("an RQ worker process exited during start-up")

    def _any_exited(self) -> bool:
        return any(process.returncode is not None for process, _ in self._processes)

    async def _collect(self) -> float:
        """Wait for every worker process; merge their notes; the last completion time."""
        last_done = 0.0
        for process, out in self._processes:
            code = await process.wait()
            if code != 0:
                raise RuntimeError(f"RQ worker exited with status {code}")
            notes = json.loads(out.read_text())
            out.unlink()
            self.starts.merge({int(index): when for index, when in notes["starts"].items()})
            last_done = max(last_done, float(notes["last_done"]))
        self._processes = []
        return last_done

    async def drain(self, count: int, within: float) -> DrainOutcome:
        # Burst workers stop when the queue is empty; they start working together, on a
        # go signal, once every process is up (Python start-up is not part of a drain).
        await self._spawn(burst=True, gated=True)
        self._redis.rpush(GO_KEY, *range(self._count))
        last_done = await asyncio.wait_for(self._collect(), within)
        return DrainOutcome(
            first_start=self.starts.first,
            last_completion=last_done,
            handled=len(self.starts),
            duplicates=self.starts.duplicates,
        )

    async def start(self) -> None:
        await self._spawn(burst=False, gated=False)

    async def wait_done(self, count: int, within: float) -> bool:
        from rq import Queue

        registry = Queue(QUEUE, connection=self._redis).finished_job_registry
        try:
            await poll_until(
                lambda: registry.count >= count or self._any_exited(),
                within=within,
                interval=0.02,
            )
        except TimeoutError:
            return False
        self.raise_if_dead()
        return True

    def raise_if_dead(self) -> None:
        if self._any_exited():
            raise RuntimeError("an RQ worker process exited by itself")

    async def stop(self) -> None:
        for process, _ in self._processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current job
        await self._collect()
        self._redis.close()


class RqSession(Session):
    def __init__(self, redis: Redis, workdir: Path, processes: int, producers: int) -> None:
        self._redis = redis
        self._workdir = workdir
        self._processes = processes
        self._threads = ThreadPoolExecutor(max_workers=producers, thread_name_prefix="rq-producer")

    async def producer(self) -> Producer:
        return RqProducer(self._redis.url, self._threads)

    def consumer(self) -> Consumer:
        return RqConsumer(self._redis.url, self._workdir, self._processes)

    async def producer_spec(self) -> dict[str, Any] | None:
        return {"system": "rq", "url": self._redis.url}

    async def count_completed(self) -> int | None:
        from redis import Redis as RedisClient
        from rq import Queue

        connection = RedisClient.from_url(self._redis.url)
        try:
            return int(Queue(QUEUE, connection=connection).finished_job_registry.count)
        finally:
            connection.close()

    def close(self) -> None:
        self._threads.shutdown(wait=True)


class Rq(System):
    name = "rq"
    title = "RQ (Redis, no persistence)"
    backend: ClassVar[Backend] = "redis"
    distribution = "rq"
    not_applicable: ClassVar[dict[str, str]] = {
        "contention": "Conveyor only",
        "noisy-neighbour": "nothing comparable: a worker takes its queues in a fixed order",
        "claim-keys": "no concurrency keys or limits",
        "claim-tenants": "no tenants, concurrency keys or limits",
        "limit-hammer": "no concurrency limits",
        "due-start": "not measured (Conveyor's due-time wake-ups)",
    }

    def __init__(self, infra: Infra, plan: Plan) -> None:
        super().__init__(infra, plan)
        self.processes = WORKER_PROCESSES

    def unavailable(self) -> str | None:
        if not importable("rq") or not importable("redis"):
            return "rq (and redis) are not installed"
        if self.infra.redis is None:
            return "redis-server is not installed"
        return None

    def version(self) -> str:
        return f"{package_version('rq')} (redis-py {package_version('redis')})"

    def settings(self) -> dict[str, Any]:
        redis_version = self.infra.redis.version if self.infra.redis else "?"
        return {
            "server": f"redis-server {redis_version}, --save '' --appendonly no (not durable)",
            "producer": "Queue.enqueue / enqueue_many (pipelined), one thread per producer",
            "worker": (
                f"{self.processes} SimpleWorker processes (no fork per job); drain: --burst, "
                "started together"
            ),
            "jobs kept": "yes, results kept for result_ttl (500 s, the default)",
        }

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[RqSession]:
        assert self.infra.redis is not None
        self.infra.redis.flush()
        session = RqSession(
            self.infra.redis, self.infra.workdir, self.processes, self.plan.producers
        )
        try:
            yield session
        finally:
            session.close()
            self.infra.redis.flush()

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()
