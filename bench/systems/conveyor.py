"""Conveyor, three ways:

* `conveyor`: in-process on PostgreSQL. Producers call `JobService` directly; the worker is
  `conveyor.worker.Worker` on a `ServiceBackend` with its own store, woken by LISTEN/NOTIFY
  (a `PostgresListener`), as a separate API process and worker process would be.
* `conveyor-http`: the same database behind a real `conveyor serve` subprocess (uvicorn);
  producers POST to the API with httpx, the worker is a remote `Worker` on an
  `HttpBackend` (long-polled claims, batched completions).
* `conveyor-sqlite`: the embedded default, one process: one SQLite file (WAL,
  synchronous=FULL), one `JobService` shared by producers and the in-process worker. Its
  SSE scenarios need a server: `conveyor serve` on the same kind of SQLite file.

Worker slots are picked per variant by the `slots` scenario (the best of `plan.slot_choices`
by median drain rate); without it, `DEFAULT_SLOTS` (the choices of the last full run). The
long poll of an idle worker's claim is `plan.claim_wait_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import httpx

from bench import wrk
from bench.infra import Infra
from bench.measure import Starts, poll_until
from bench.plan import Plan
from bench.sse import CpuClock, SseTarget
from bench.systems.base import (
    JOB_TYPE,
    Backend,
    Consumer,
    DrainOutcome,
    Producer,
    Session,
    System,
    fresh_postgres_database,
)
from conveyor.bus.postgres import PostgresListener
from conveyor.bus.work import WorkSignal
from conveyor.domain.errors import ConveyorError
from conveyor.domain.events import key_actor, worker_actor
from conveyor.domain.jobs import CLAIM_LIMIT_OVER_HTTP, JobSpec
from conveyor.domain.workspaces import Role
from conveyor.service.jobs import AS_JOB, JobService, Unobserved
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.migrate import upgrade
from conveyor.store.urls import DatabaseURL
from conveyor.worker import Handlers, JobContext, Worker, WorkerBackend, WorkerOptions
from conveyor.worker.inprocess import ServiceBackend
from conveyor.worker.remote import HttpBackend

WORKSPACE = "bench"
DEFAULT_SLOTS = {"conveyor": 1000, "conveyor-http": 1000, "conveyor-sqlite": 1000}
"""Job slots of each variant's worker when the `slots` scenario does not run: what `slots`
chose in the full run of docs/benchmarks.md (median drain jobs/s of 50,000 jobs at 100 /
300 / 600 / 1,000 slots: in-process PostgreSQL 14,685 / 18,729 / 20,202 / 28,740; over
HTTP 7,561 / 8,250 / 9,971 / 13,265; SQLite 8,803 / 9,299 / 9,100 / 9,378, those four
within each other's spread). No-op jobs finish at once, so slots mostly bound how many jobs one
claim may take (and one completion batch holds)."""
PRODUCER_POOL = 10
WORKER_POOL = 10
CONTENTION_POOL = 64
LEASE_SECONDS = 60.0
CAPACITY_SCENARIOS = frozenset({"noisy-neighbour", "claim-keys", "claim-tenants", "limit-hammer"})


def noop_handlers(starts: Starts) -> Handlers:
    handlers = Handlers()

    async def noop(job: JobContext) -> None:
        starts.record(int(job.payload["i"]))

    handlers.add(JOB_TYPE, noop)
    return handlers


def spec(index: int) -> JobSpec:
    return JobSpec(type=JOB_TYPE, payload={"i": index})


def worker_options(slots: int, plan: Plan, worker_id: str = "bench-worker") -> WorkerOptions:
    """How the harness runs a Conveyor worker (`due-start` aside: it measures the defaults)."""
    return WorkerOptions(
        concurrency=slots,
        lease_seconds=LEASE_SECONDS,
        claim_wait_seconds=plan.claim_wait_seconds,
        shutdown_grace_seconds=10.0,
        worker_id=worker_id,
    )


class ConveyorWorkerConsumer(Consumer):
    """A `conveyor.worker.Worker` in this process, on whichever backend it is given."""

    def __init__(
        self,
        make_backend: Callable[[], Awaitable[WorkerBackend]],
        options: WorkerOptions,
        *,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.starts = Starts()
        self.options = options
        self._make_backend = make_backend
        self._on_stop = on_stop
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self._backend: WorkerBackend | None = None

    async def start(self) -> None:
        self._backend = await self._make_backend()
        self._worker = Worker(self._backend, noop_handlers(self.starts), self.options)
        self._task = asyncio.create_task(self._worker.run(), name="bench-conveyor-worker")

    async def drain(self, count: int, within: float) -> DrainOutcome:
        await self.start()
        worker = self._worker
        assert worker is not None
        try:
            end = await poll_until(
                lambda: worker.stats.completed >= count or self._dead(),
                within=within,
                what=f"{count} completions",
            )
            self.raise_if_dead()
        finally:
            await self.stop()
        return DrainOutcome(
            first_start=self.starts.first,
            last_completion=end,
            handled=len(self.starts),
            duplicates=self.starts.duplicates,
            extra={
                "claimed": worker.stats.claimed,
                "completed": worker.stats.completed,
                "slots": self.options.concurrency,
            },
        )

    def _dead(self) -> bool:
        return self._task is not None and self._task.done()

    def raise_if_dead(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()
            raise RuntimeError("the Conveyor worker stopped by itself")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._task is not None:
            await self._task
        if self._backend is not None:
            await self._backend.close()
        if self._on_stop is not None:
            await self._on_stop()
        self._worker = self._task = self._backend = None


class ServiceProducer(Producer):
    def __init__(
        self, service: JobService, workspace_id: Any, actor: str, owned: Store | None = None
    ) -> None:
        self._service = service
        self._workspace_id = workspace_id
        self._actor = actor
        self._owned = owned

    async def enqueue_each(self, indexes: list[int]) -> None:
        for index in indexes:
            await self._service.create_job(self._workspace_id, spec(index), self._actor)

    async def enqueue_batch(self, indexes: list[int]) -> None:
        await self._service.create_jobs(
            self._workspace_id, [spec(index) for index in indexes], self._actor
        )

    async def close(self) -> None:
        if self._owned is not None:
            await self._owned.close()


class HttpProducer(Producer):
    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60.0,
        )
        self._path = f"/v1/workspaces/{WORKSPACE}/jobs"

    async def enqueue_each(self, indexes: list[int]) -> None:
        for index in indexes:
            response = await self._client.post(
                self._path, json={"type": JOB_TYPE, "payload": {"i": index}}
            )
            if response.status_code != 201:
                raise RuntimeError(f"create job: HTTP {response.status_code} {response.text}")

    async def enqueue_batch(self, indexes: list[int]) -> None:
        body = {"jobs": [{"type": JOB_TYPE, "payload": {"i": index}} for index in indexes]}
        response = await self._client.post(f"{self._path}/batch", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"create jobs: HTTP {response.status_code} {response.text}")

    async def close(self) -> None:
        await self._client.aclose()


async def producer_from_spec(spec: dict[str, Any]) -> Producer:
    """A producer in another process (`bench.producer`)."""
    if spec["system"] == "conveyor-http":
        return HttpProducer(spec["url"], spec["token"])
    store = await open_store(DatabaseURL.parse(spec["url"]), pool_size=PRODUCER_POOL)
    return ServiceProducer(JobService(store), UUID(spec["workspace_id"]), spec["actor"], store)


@dataclass(frozen=True, slots=True)
class Keys:
    workspace_id: Any
    actor: str
    """The admin key's actor, for in-process calls."""
    token: str
    """An admin key."""
    worker_token: str
    """A worker key (the SSE writer claims and reports with it)."""


async def prepare_workspace(store: Store) -> Keys:
    """Workspace `bench`, an admin key and a worker key."""
    workspaces = WorkspaceService(store)
    workspace = await workspaces.create_workspace(WORKSPACE)
    issued = await workspaces.create_key(workspace.id, Role.ADMIN, "benchmark")
    worker = await workspaces.create_key(workspace.id, Role.WORKER, "benchmark worker")
    return Keys(workspace.id, key_actor(issued.key.id), issued.token, worker.token)


class ConflictCounter(Unobserved):
    """A `JobObserver` that counts the conflict retries of `JobService` (and ignores the
    rest, as `Unobserved` does)."""

    def __init__(self) -> None:
        self.retries = 0

    def conflict_retried(self, error: BaseException) -> None:
        self.retries += 1


class InProcessSession(Session):
    """Conveyor in this process, on PostgreSQL or SQLite."""

    def __init__(
        self, url: DatabaseURL, database: str | None, worker: WorkerOptions, workdir: Path
    ) -> None:
        self.url = url
        self.database = database
        self.worker = worker
        """The options of this session's worker (its slots: the variant's)."""
        self._workdir = workdir
        self._store: Store | None = None
        self._service: JobService | None = None
        self._keys: Keys | None = None

    @property
    def keys(self) -> Keys:
        assert self._keys is not None, "open() first"
        return self._keys

    async def open(self) -> None:
        store = await self._open_store(PRODUCER_POOL)
        try:
            self._keys = await prepare_workspace(store)
        finally:
            await store.close()

    async def _open_store(self, pool_size: int) -> Store:
        return await open_store(self.url, pool_size=pool_size)

    async def _shared(self) -> JobService:
        """The producers' service (on SQLite also the worker's: one process, one store)."""
        if self._service is None:
            self._store = await self._open_store(PRODUCER_POOL)
            self._service = JobService(self._store)
        return self._service

    async def producer(self) -> Producer:
        return ServiceProducer(await self._shared(), self.keys.workspace_id, self.keys.actor)

    async def producer_spec(self) -> dict[str, Any] | None:
        if self.url.kind == "sqlite":
            return None  # embedded: requests and workers share one process and one store
        return {
            "system": "conveyor",
            "url": self.url.url,
            "workspace_id": str(self.keys.workspace_id),
            "actor": self.keys.actor,
        }

    async def quiesce(self) -> None:
        if self.url.kind == "postgresql" and self._store is not None:
            await self._store.close()
            self._store = None
            self._service = None

    def consumer(self) -> Consumer:
        if self.url.kind == "sqlite":
            return self._sqlite_consumer()
        return self._postgres_consumer()

    def _sqlite_consumer(self) -> Consumer:
        async def backend() -> ServiceBackend:
            return ServiceBackend(await self._shared(), self.keys.workspace_id)

        return ConveyorWorkerConsumer(backend, self.worker)

    def _postgres_consumer(self) -> Consumer:
        resources: dict[str, Any] = {}

        async def backend() -> ServiceBackend:
            signal = WorkSignal()
            store = await self._open_store(WORKER_POOL)
            listener = PostgresListener(self.url.url, signal)
            await listener.start()
            resources.update(store=store, listener=listener)
            return ServiceBackend(JobService(store, work_signal=signal), self.keys.workspace_id)

        async def release() -> None:
            await resources["listener"].stop()
            await resources["store"].close()

        return ConveyorWorkerConsumer(backend, self.worker, on_stop=release)

    async def count_completed(self) -> int | None:
        store = await self._open_store(1)
        try:
            return await count_completed(store)
        finally:
            await store.close()

    @asynccontextmanager
    async def _sse_target(self) -> AsyncIterator[SseTarget]:
        """`conveyor serve` on this session's database (for SQLite: its file)."""
        await self.close()
        server = ConveyorServer(self.url.url, self._workdir)
        await server.start()
        try:
            yield server.target(self.keys)
        finally:
            await server.stop()

    def sse_target(self) -> AbstractAsyncContextManager[SseTarget]:
        return self._sse_target()

    async def contention(self, writers: int, updates: int) -> dict[str, Any]:
        """`writers` tasks report progress on one RUNNING job, `updates` times each, as the
        worker holding its lease (allow_decrease: every report is a real write). Each
        report is one guarded statement; `conflict_retries` counts the service's retries
        (through its observer), `gave_up` the reports refused in the end."""
        conflicts = ConflictCounter()
        workspace_id = self.keys.workspace_id
        store = await self._open_store(CONTENTION_POOL)
        try:
            service = JobService(store, observer=conflicts)
            job, _ = await service.create_job(workspace_id, spec(0), self.keys.actor)
            actor = worker_actor("bench-contention")
            [running] = await service.claim_jobs(
                workspace_id,
                types=[JOB_TYPE],
                limit=1,
                lease_seconds=600,
                worker_id="bench-contention",
                actor=actor,
                answer=AS_JOB,
            )
            assert running.id == job.id
            assert running.lease_id is not None
            gave_up: dict[str, int] = {}
            done = 0

            async def writer(number: int) -> None:
                nonlocal done
                for update in range(updates):
                    try:
                        await service.report_progress(
                            workspace_id,
                            job.id,
                            percent=(number * 7 + update * 13) % 101,
                            actor=actor,
                            lease_id=running.lease_id,
                            allow_decrease=True,
                        )
                        done += 1
                    except ConveyorError as error:
                        name = type(error).__name__
                        gave_up[name] = gave_up.get(name, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(writer(number) for number in range(writers)))
            elapsed = time.perf_counter() - started
            final = await service.get_job(workspace_id, job.id)
            retries = conflicts.retries
            return {
                "updates_per_s": done / elapsed,
                "conflict_retries": retries,
                "retries_per_update": retries / done if done else float("nan"),
                "successful_updates": done,
                "gave_up": sum(gave_up.values()),
                "gave_up_by_error": gave_up,
                "seconds": elapsed,
                # Every successful update is one version: fewer would be a lost update.
                "version_delta_matches": final.version - running.version == done,
            }
        finally:
            await store.close()

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
            self._service = None


async def count_completed(store: Store) -> int:
    async with store.database.read() as connection:
        row = await connection.fetchrow("SELECT count(*) AS n FROM jobs WHERE status = 'COMPLETED'")
    assert row is not None
    return int(row["n"])


class ConveyorSystem(System):
    """What the three variants share: Conveyor's version, and worker slots."""

    is_conveyor = True
    distribution = "conveyor"

    def __init__(self, infra: Infra, plan: Plan) -> None:
        super().__init__(infra, plan)
        self.slots = DEFAULT_SLOTS[self.name]
        self.slots_source = "default (DEFAULT_SLOTS in bench/systems/conveyor.py)"

    def set_slots(self, slots: int, source: str) -> None:
        self.slots = slots
        self.slots_source = source

    def worker_options(self) -> WorkerOptions:
        return worker_options(self.slots, self.plan)


class ConveyorPostgres(ConveyorSystem):
    name = "conveyor"
    title = "Conveyor, in-process (PostgreSQL)"
    backend: ClassVar[Backend] = "postgresql"
    scenarios = frozenset(
        {"enqueue-single", "enqueue-bulk", "slots", "drain", "latency", "latency-80", "contention"}
        | CAPACITY_SCENARIOS
        | {"due-start"}
    )
    not_applicable: ClassVar[dict[str, str]] = {
        "enqueue-single-httpx": "over HTTP only",
        "sse-1": "streams are served by conveyor serve: see conveyor-http (same PostgreSQL)",
        "sse-many": "streams are served by conveyor serve: see conveyor-http (same PostgreSQL)",
        "sse-quiet": "streams are served by conveyor serve: see conveyor-http (same PostgreSQL)",
        "sse-fanout": "streams are served by conveyor serve: see conveyor-http (same PostgreSQL)",
    }
    template = "bench_conveyor"

    def settings(self) -> dict[str, Any]:
        return {
            "producer": f"JobService.create_job / create_jobs, store pool {PRODUCER_POOL}",
            "worker": (
                f"Worker + ServiceBackend, {self.slots} slots ({self.slots_source}), own "
                f"store (pool {WORKER_POOL}), LISTEN/NOTIFY wake-ups, claim long-poll "
                f"{self.plan.claim_wait_seconds}s, lease {LEASE_SECONDS:.0f}s"
            ),
            "contention": f"JobService.report_progress, store pool {CONTENTION_POOL}",
        }

    async def prepare(self) -> None:
        await self.infra.postgres.create_template(self.template)
        url = DatabaseURL.parse(self.infra.postgres.url(self.template))
        await asyncio.to_thread(upgrade, url)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[InProcessSession]:
        async with fresh_postgres_database(self.infra, self.template) as database:
            session = InProcessSession(
                DatabaseURL.parse(self.infra.postgres.url(database)),
                database,
                self.worker_options(),
                self.infra.workdir,
            )
            await session.open()
            try:
                yield session
            finally:
                await session.close()

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()


class ConveyorSqlite(ConveyorSystem):
    name = "conveyor-sqlite"
    title = "Conveyor, embedded (SQLite, synchronous=FULL)"
    backend: ClassVar[Backend] = "sqlite"
    scenarios = ConveyorPostgres.scenarios | {"sse-1", "sse-many", "sse-quiet", "sse-fanout"}
    not_applicable: ClassVar[dict[str, str]] = {
        "db-cost": "SQLite: no statement counters",
        "enqueue-single-httpx": "over HTTP only",
    }

    def __init__(self, infra: Infra, plan: Plan) -> None:
        super().__init__(infra, plan)
        self._template: Path | None = None

    def settings(self) -> dict[str, Any]:
        return {
            "store": "one SQLite file, WAL, synchronous=FULL (open_store default)",
            "producer": "JobService.create_job / create_jobs, the worker's own service",
            "worker": (
                f"Worker + ServiceBackend in the same process and service, {self.slots} "
                f"slots ({self.slots_source}), in-process wake-ups"
            ),
            "sse": "conveyor serve on the run's SQLite file (defaults: synchronous=FULL, "
            "ping 15 s), streams from bench.sse_client, events POSTed by a worker key",
        }

    async def prepare(self) -> None:
        self._template = self.infra.sqlite_path("template")
        await asyncio.to_thread(upgrade, DatabaseURL.parse(f"sqlite:///{self._template}"))

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[InProcessSession]:
        assert self._template is not None
        path = self.infra.sqlite_path("run")
        shutil.copyfile(self._template, path)
        session = InProcessSession(
            DatabaseURL.parse(f"sqlite:///{path}"), None, self.worker_options(), self.infra.workdir
        )
        await session.open()
        try:
            yield session
        finally:
            await session.close()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()


class ConveyorServer:
    """`conveyor serve` in a child process, on a free loopback port."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        from devtools.postgres import free_port

        self._env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._database_url = database_url
        self._log = workdir / f"conveyor-serve-{self.port}.log"
        self._workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def target(self, keys: Keys) -> SseTarget:
        return SseTarget(
            url=self.url,
            port=self.port,
            pid=self.pid,
            workspace=WORKSPACE,
            job_type=JOB_TYPE,
            admin_token=keys.token,
            worker_token=keys.worker_token,
        )

    async def start(self) -> None:
        executable = Path(sys.executable).with_name("conveyor")
        command = (
            [str(executable)]
            if executable.exists()
            else [sys.executable, "-m", "conveyor.cli.main"]
        )
        command += [
            "serve",
            "--database-url",
            self._database_url,
            "--port",
            str(self.port),
            "--migrate",
        ]
        env = {
            **os.environ,
            "CONVEYOR_LOG_LEVEL": "WARNING",
            "CONVEYOR_ADMIN_KEY_FILE": str(self._workdir / "unused-admin.key"),
            **self._env,
        }
        with self._log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self._workdir
            )
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            deadline = time.monotonic() + 60
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"conveyor serve exited: {self._log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("conveyor serve did not become ready in 60s")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


class HttpSession(Session):
    def __init__(
        self,
        database_url: str,
        database: str,
        workdir: Path,
        worker: WorkerOptions,
        server_env: dict[str, str],
    ) -> None:
        self.database = database
        self.worker = worker
        self._database_url = database_url
        self._workdir = workdir
        self._server_env = server_env
        self._server: ConveyorServer | None = None
        self._keys: Keys | None = None

    @property
    def keys(self) -> Keys:
        assert self._keys is not None, "open() first"
        return self._keys

    async def open(self) -> None:
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        try:
            self._keys = await prepare_workspace(store)
        finally:
            await store.close()

    async def server(self) -> ConveyorServer:
        if self._server is None:
            server = ConveyorServer(self._database_url, self._workdir, self._server_env)
            await server.start()
            self._server = server
        return self._server

    async def server_pid(self) -> int | None:
        return (await self.server()).pid

    async def producer(self) -> Producer:
        return HttpProducer((await self.server()).url, self.keys.token)

    async def filler(self) -> Producer:
        # The same rows as over HTTP, without starting a server only to stop it again.
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        return ServiceProducer(JobService(store), self.keys.workspace_id, self.keys.actor, store)

    async def producer_spec(self) -> dict[str, Any] | None:
        return {
            "system": "conveyor-http",
            "url": (await self.server()).url,
            "token": self.keys.token,
        }

    async def quiesce(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def consumer(self) -> Consumer:
        async def backend() -> HttpBackend:
            return HttpBackend.connect((await self.server()).url, self.keys.token)

        return ConveyorWorkerConsumer(backend, self.worker)

    async def single_creates(self, plan: Plan) -> tuple[dict[str, float], dict[str, Any]]:
        """`enqueue-single` with wrk: `plan.producers` connections, one job per POST."""
        server = await self.server()
        body = json.dumps({"type": JOB_TYPE, "payload": {"i": 1}})
        script = wrk.write_script(self._workdir / "post.lua", self.keys.token, body)
        url = f"{server.url}/v1/workspaces/{WORKSPACE}/jobs"
        before = await self._count_jobs()
        warm = None
        if not plan.quick:
            warm = await wrk.run_wrk(
                url, script, threads=plan.wrk_threads, connections=plan.producers, seconds=1
            )
        clock = CpuClock(server.pid)
        clock.start()
        result = await wrk.run_wrk(
            url,
            script,
            threads=plan.wrk_threads,
            connections=plan.producers,
            seconds=plan.wrk_seconds,
        )
        server_cpu = clock.percent()
        stored = await self._count_jobs() - before - (warm.created if warm else 0)
        if result.not_created or (warm and warm.not_created) or result.socket_errors:
            raise RuntimeError(
                f"wrk: {result.not_created} answers were not 201 and {result.socket_errors} "
                "socket errors: the run is invalid"
            )
        if stored < result.created:
            raise RuntimeError(f"wrk saw {result.created} creates, the database has {stored}")
        details = {
            "client": f"wrk -t{plan.wrk_threads} -c{plan.producers} -d{plan.wrk_seconds:g}s",
            **result.as_json(),
            "jobs_in_database": stored,
            "server_cpu_pct": server_cpu,
        }
        return (
            {
                "jobs_per_s": result.per_second,
                "server_cpu_pct": server_cpu,
                "client_cpu_pct": details["wrk_cpu_pct"],
            },
            details,
        )

    async def _count_jobs(self) -> int:
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        try:
            async with store.database.read() as connection:
                row = await connection.fetchrow("SELECT count(*) AS n FROM jobs")
            assert row is not None
            return int(row["n"])
        finally:
            await store.close()

    def sse_target(self) -> AbstractAsyncContextManager[SseTarget]:
        return self._sse_target()

    @asynccontextmanager
    async def _sse_target(self) -> AsyncIterator[SseTarget]:
        server = await self.server()
        yield server.target(self.keys)

    async def count_completed(self) -> int | None:
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        try:
            return await count_completed(store)
        finally:
            await store.close()

    async def close(self) -> None:
        await self.quiesce()


class ConveyorHttp(ConveyorSystem):
    name = "conveyor-http"
    title = "Conveyor over HTTP (conveyor serve + remote worker, PostgreSQL)"
    backend: ClassVar[Backend] = "postgresql"
    scenarios = frozenset(
        {
            "enqueue-single",
            "enqueue-single-httpx",
            "enqueue-bulk",
            "slots",
            "drain",
            "latency",
            "latency-80",
            "sse-1",
            "sse-many",
            "sse-quiet",
            "sse-fanout",
            "due-start",
        }
    )
    not_applicable: ClassVar[dict[str, str]] = {
        "contention": "measured in-process (the HTTP hop adds nothing to the conflict path)",
        **dict.fromkeys(
            CAPACITY_SCENARIOS, "measured in-process (conveyor): the same claims in the database"
        ),
    }

    def scenario_unavailable(self, scenario: str) -> str | None:
        if scenario == "enqueue-single" and not wrk.available():
            return "wrk is not installed (scripts/bench.sh installs it)"
        return None

    def server_env(self) -> dict[str, str]:
        poll = self.plan.server_claim_poll_seconds
        return {} if poll is None else {"CONVEYOR_CLAIM_POLL_INTERVAL_SECONDS": str(poll)}

    def settings(self) -> dict[str, Any]:
        return {
            "server": "conveyor serve --migrate (uvicorn, uvloop, httptools), default pool 10, "
            "auth cache 10 s (default), CONVEYOR_LOG_LEVEL=WARNING"
            + "".join(f", {name}={value}" for name, value in self.server_env().items()),
            "producer": (
                f"enqueue-single: wrk -t{self.plan.wrk_threads} -c{self.plan.producers} "
                f"-d{self.plan.wrk_seconds:g}s POST /jobs (after a 1 s wrk warm-up); "
                f"enqueue-single-httpx: {self.plan.producers} httpx.AsyncClient producers in "
                "the harness; enqueue-bulk / latency: httpx, POST /jobs/batch and /jobs"
            ),
            "worker": (
                f"Worker + HttpBackend in the harness process, {self.slots} slots "
                f"({self.slots_source}), claims of at most {CLAIM_LIMIT_OVER_HTTP} (the API's "
                f"limit), claim long-poll {self.plan.claim_wait_seconds}s, batched completions"
            ),
            "sse": "streams from bench.sse_client on the same server, events POSTed by a "
            "worker key with a claimed lease",
        }

    template = "bench_conveyor_http"

    async def prepare(self) -> None:
        await self.infra.postgres.create_template(self.template)
        url = DatabaseURL.parse(self.infra.postgres.url(self.template))
        await asyncio.to_thread(upgrade, url)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[HttpSession]:
        async with fresh_postgres_database(self.infra, self.template) as database:
            session = HttpSession(
                self.infra.postgres.url(database),
                database,
                self.infra.workdir,
                self.worker_options(),
                self.server_env(),
            )
            await session.open()
            try:
                yield session
            finally:
                await session.close()

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()
