"""Conveyor, three ways:

* `conveyor`: in-process on PostgreSQL. Producers call `JobService` directly; the worker is
  `conveyor.worker.Worker` on a `ServiceBackend` with its own store, woken by LISTEN/NOTIFY
  (a `PostgresListener`), as a separate API process and worker process would be.
* `conveyor-http`: the same database behind a real `conveyor serve` subprocess (uvicorn);
  producers POST to the API with httpx, the worker is a remote `Worker` on an
  `HttpBackend` (long-polled claims, batched completions).
* `conveyor-sqlite`: the embedded default, one process: one SQLite file (WAL,
  synchronous=FULL), one `JobService` shared by producers and the in-process worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import httpx

from bench.infra import Infra
from bench.measure import Starts, poll_until
from bench.plan import Plan
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
from conveyor.domain.jobs import Job, JobSpec
from conveyor.domain.workspaces import Role
from conveyor.service.jobs import JobService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.migrate import upgrade
from conveyor.store.urls import DatabaseURL
from conveyor.worker import Handlers, JobContext, Worker, WorkerBackend, WorkerOptions
from conveyor.worker.inprocess import ServiceBackend
from conveyor.worker.remote import HttpBackend

WORKSPACE = "bench"
WORKER_SLOTS = 100
"""Job slots of the worker: no-op jobs finish at once, so slots mostly bound how many jobs
one claim may take. Tried 25, 50, 100, 200, 500: in-process 100 and up measured alike;
over HTTP 500 was ~15 % faster than 100 (kept at 100 for one setting everywhere)."""
PRODUCER_POOL = 10
WORKER_POOL = 10
CONTENTION_POOL = 64
CLAIM_WAIT_SECONDS = 1.0
"""Long-poll length of an idle worker's claim. Wake-ups are pushed (in-process signal,
LISTEN/NOTIFY), so this only decides how soon an idle worker notices `stop()`."""
LEASE_SECONDS = 60.0


def noop_handlers(starts: Starts) -> Handlers:
    handlers = Handlers()

    async def noop(job: JobContext) -> None:
        starts.record(int(job.payload["i"]))

    handlers.add(JOB_TYPE, noop)
    return handlers


def spec(index: int) -> JobSpec:
    return JobSpec(type=JOB_TYPE, payload={"i": index})


class ConveyorWorkerConsumer(Consumer):
    """A `conveyor.worker.Worker` in this process, on whichever backend it is given."""

    def __init__(
        self,
        make_backend: Callable[[], Awaitable[WorkerBackend]],
        *,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.starts = Starts()
        self._make_backend = make_backend
        self._on_stop = on_stop
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self._backend: WorkerBackend | None = None

    async def start(self) -> None:
        self._backend = await self._make_backend()
        self._worker = Worker(
            self._backend,
            noop_handlers(self.starts),
            WorkerOptions(
                concurrency=WORKER_SLOTS,
                lease_seconds=LEASE_SECONDS,
                claim_wait_seconds=CLAIM_WAIT_SECONDS,
                shutdown_grace_seconds=10.0,
                worker_id="bench-worker",
            ),
        )
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
            extra={"claimed": worker.stats.claimed, "completed": worker.stats.completed},
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


async def prepare_workspace(store: Store) -> tuple[Any, str, str]:
    """Workspace `bench` and an admin key: (workspace id, actor, token)."""
    workspaces = WorkspaceService(store)
    workspace = await workspaces.create_workspace(WORKSPACE)
    issued = await workspaces.create_key(workspace.id, Role.ADMIN, "benchmark")
    return workspace.id, key_actor(issued.key.id), issued.token


class ConflictCounter:
    """A `JobObserver` that counts the conflict retries of `JobService` (and ignores the
    rest)."""

    def __init__(self) -> None:
        self.retries = 0

    def conflict_retried(self, error: BaseException) -> None:
        self.retries += 1

    def jobs_created(self, jobs: Sequence[Job]) -> None:
        return

    def jobs_claimed(self, jobs: Sequence[Job]) -> None:
        return

    def jobs_completed(self, jobs: Sequence[Job]) -> None:
        return

    def job_settled(self, job: Job) -> None:
        return

    def leases_expired(self, count: int) -> None:
        return


class InProcessSession(Session):
    """Conveyor in this process, on PostgreSQL or SQLite."""

    def __init__(self, url: DatabaseURL, database: str | None) -> None:
        self.url = url
        self.database = database
        self._store: Store | None = None
        self._service: JobService | None = None
        self._workspace_id: Any = None
        self._actor = ""

    async def open(self) -> None:
        store = await self._open_store(PRODUCER_POOL)
        try:
            self._workspace_id, self._actor, _ = await prepare_workspace(store)
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
        return ServiceProducer(await self._shared(), self._workspace_id, self._actor)

    async def producer_spec(self) -> dict[str, Any] | None:
        if self.url.kind == "sqlite":
            return None  # embedded: requests and workers share one process and one store
        return {
            "system": "conveyor",
            "url": self.url.url,
            "workspace_id": str(self._workspace_id),
            "actor": self._actor,
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
            return ServiceBackend(await self._shared(), self._workspace_id)

        return ConveyorWorkerConsumer(backend)

    def _postgres_consumer(self) -> Consumer:
        resources: dict[str, Any] = {}

        async def backend() -> ServiceBackend:
            signal = WorkSignal()
            store = await self._open_store(WORKER_POOL)
            listener = PostgresListener(self.url.url, signal)
            await listener.start()
            resources.update(store=store, listener=listener)
            return ServiceBackend(JobService(store, work_signal=signal), self._workspace_id)

        async def release() -> None:
            await resources["listener"].stop()
            await resources["store"].close()

        return ConveyorWorkerConsumer(backend, on_stop=release)

    async def count_completed(self) -> int | None:
        store = await self._open_store(1)
        try:
            async with store.database.read() as connection:
                row = await connection.fetchrow(
                    "SELECT count(*) AS n FROM jobs WHERE status = 'COMPLETED'"
                )
            assert row is not None
            return int(row["n"])
        finally:
            await store.close()

    async def contention(self, writers: int, updates: int) -> dict[str, Any]:
        """`writers` tasks report progress on one RUNNING job, `updates` times each, as the
        worker holding its lease (allow_decrease: every report is a real write)."""
        conflicts = ConflictCounter()
        store = await self._open_store(CONTENTION_POOL)
        try:
            service = JobService(store, observer=conflicts)
            job, _ = await service.create_job(self._workspace_id, spec(0), self._actor)
            actor = worker_actor("bench-contention")
            [running] = await service.claim_jobs(
                self._workspace_id,
                types=[JOB_TYPE],
                limit=1,
                lease_seconds=600,
                worker_id="bench-contention",
                actor=actor,
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
                            self._workspace_id,
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
            final = await service.get_job(self._workspace_id, job.id)
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


class ConveyorPostgres(System):
    name = "conveyor"
    title = "Conveyor, in-process (PostgreSQL)"
    backend: ClassVar[Backend] = "postgresql"
    is_conveyor = True
    distribution = "conveyor"
    scenarios = frozenset(
        {"enqueue-single", "enqueue-bulk", "drain", "latency", "latency-80", "contention"}
    )
    template = "bench_conveyor"

    def settings(self) -> dict[str, Any]:
        return {
            "producer": f"JobService.create_job / create_jobs, store pool {PRODUCER_POOL}",
            "worker": (
                f"Worker + ServiceBackend, {WORKER_SLOTS} slots, own store (pool "
                f"{WORKER_POOL}), LISTEN/NOTIFY wake-ups, claim long-poll "
                f"{CLAIM_WAIT_SECONDS}s, lease {LEASE_SECONDS:.0f}s"
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
                DatabaseURL.parse(self.infra.postgres.url(database)), database
            )
            await session.open()
            try:
                yield session
            finally:
                await session.close()

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()


class ConveyorSqlite(System):
    name = "conveyor-sqlite"
    title = "Conveyor, embedded (SQLite, synchronous=FULL)"
    backend: ClassVar[Backend] = "sqlite"
    is_conveyor = True
    distribution = "conveyor"
    scenarios = ConveyorPostgres.scenarios
    not_applicable: ClassVar[dict[str, str]] = {"db-cost": "SQLite: no statement counters"}

    def __init__(self, infra: Infra, plan: Plan) -> None:
        super().__init__(infra, plan)
        self._template: Path | None = None

    def settings(self) -> dict[str, Any]:
        return {
            "store": "one SQLite file, WAL, synchronous=FULL (open_store default)",
            "producer": "JobService.create_job / create_jobs, the worker's own service",
            "worker": (
                f"Worker + ServiceBackend in the same process and service, {WORKER_SLOTS} "
                "slots, in-process wake-ups"
            ),
        }

    async def prepare(self) -> None:
        self._template = self.infra.sqlite_path("template")
        await asyncio.to_thread(upgrade, DatabaseURL.parse(f"sqlite:///{self._template}"))

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[InProcessSession]:
        assert self._template is not None
        path = self.infra.sqlite_path("run")
        shutil.copyfile(self._template, path)
        session = InProcessSession(DatabaseURL.parse(f"sqlite:///{path}"), None)
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

    def __init__(self, database_url: str, workdir: Path) -> None:
        from tests.support.postgres import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._database_url = database_url
        self._log = workdir / f"conveyor-serve-{self.port}.log"
        self._workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

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
    def __init__(self, database_url: str, database: str, workdir: Path) -> None:
        self.database = database
        self._database_url = database_url
        self._workdir = workdir
        self._server: ConveyorServer | None = None
        self._token = ""
        self._workspace_id: Any = None
        self._actor = ""

    async def open(self) -> None:
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        try:
            self._workspace_id, self._actor, self._token = await prepare_workspace(store)
        finally:
            await store.close()

    async def server(self) -> ConveyorServer:
        if self._server is None:
            server = ConveyorServer(self._database_url, self._workdir)
            await server.start()
            self._server = server
        return self._server

    async def producer(self) -> Producer:
        return HttpProducer((await self.server()).url, self._token)

    async def filler(self) -> Producer:
        # The same rows as over HTTP, without starting a server only to stop it again.
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        return ServiceProducer(JobService(store), self._workspace_id, self._actor, store)

    async def producer_spec(self) -> dict[str, Any] | None:
        return {"system": "conveyor-http", "url": (await self.server()).url, "token": self._token}

    async def quiesce(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def consumer(self) -> Consumer:
        async def backend() -> HttpBackend:
            return HttpBackend.connect((await self.server()).url, self._token, workspace=WORKSPACE)

        return ConveyorWorkerConsumer(backend)

    async def count_completed(self) -> int | None:
        store = await open_store(DatabaseURL.parse(self._database_url), pool_size=1)
        try:
            async with store.database.read() as connection:
                row = await connection.fetchrow(
                    "SELECT count(*) AS n FROM jobs WHERE status = 'COMPLETED'"
                )
            assert row is not None
            return int(row["n"])
        finally:
            await store.close()

    async def close(self) -> None:
        await self.quiesce()


class ConveyorHttp(System):
    name = "conveyor-http"
    title = "Conveyor over HTTP (conveyor serve + remote worker, PostgreSQL)"
    backend: ClassVar[Backend] = "postgresql"
    is_conveyor = True
    distribution = "conveyor"
    not_applicable: ClassVar[dict[str, str]] = {
        "contention": "measured in-process (the HTTP hop adds nothing to the conflict path)"
    }

    def settings(self) -> dict[str, Any]:
        return {
            "server": "conveyor serve --migrate (uvicorn, uvloop), default pool 10, "
            "CONVEYOR_LOG_LEVEL=WARNING",
            "producer": "httpx.AsyncClient per producer: POST /jobs, POST /jobs/batch",
            "worker": (
                f"Worker + HttpBackend in the harness process, {WORKER_SLOTS} slots, claim "
                f"long-poll {CLAIM_WAIT_SECONDS}s, batched completions"
            ),
        }

    template = "bench_conveyor_http"

    async def prepare(self) -> None:
        await self.infra.postgres.create_template(self.template)
        url = DatabaseURL.parse(self.infra.postgres.url(self.template))
        await asyncio.to_thread(upgrade, url)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[HttpSession]:
        async with fresh_postgres_database(self.infra, self.template) as database:
            session = HttpSession(self.infra.postgres.url(database), database, self.infra.workdir)
            await session.open()
            try:
                yield session
            finally:
                await session.close()

    def session(self) -> AbstractAsyncContextManager[Session]:
        return self._session()
