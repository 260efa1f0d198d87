"""The parts every drill shares: a workspace with keys, the settings that keep a drill to
seconds (short leases, a fast reaper, frequent pings), real `conveyor serve` and `conveyor
worker` processes running the drill handlers, and clients that create jobs and remember
which creates were acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conveyor.domain.workspaces import Role
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import open_store
from conveyor.store.urls import DatabaseURL
from tests.drills.handlers import SIDE_FILE_VARIABLE
from tests.drills.observe import (
    EventRow,
    JobRow,
    Note,
    read_events,
    read_jobs,
    read_side_file,
)
from tests.support.processes import conveyor_worker_process, server_process
from tests.worker.conftest import eventually

WORKSPACE = "acme"
HANDLERS = "tests.drills.handlers:handlers"
LEASE_SECONDS = 2
"""Short, so a dead worker's job is taken back within seconds."""
JOB = {"type": "drill.work", "max_attempts": 5, "retry_backoff_seconds": 0}
"""Attempts to spare (a crash costs one) and no backoff, so a job taken back from a dead
worker runs again at once and the drill stays short."""


@dataclass
class Drill:
    database: DatabaseURL
    directory: Path
    admin_key: str
    worker_key: str
    client_key: str

    @classmethod
    async def prepare(
        cls, database: DatabaseURL, directory: Path, *, admin_key: str | None = None
    ) -> Drill:
        """Workspace `acme` (unless `admin_key` says it exists) and a key per role."""
        store = await open_store(database, pool_size=1)
        try:
            workspaces = WorkspaceService(store)
            if admin_key is None:
                workspace = await workspaces.create_workspace(WORKSPACE)
            else:
                workspace = await workspaces.get_workspace(WORKSPACE)
            admin = admin_key or (await workspaces.create_key(workspace.id, Role.ADMIN)).token
            worker = (await workspaces.create_key(workspace.id, Role.WORKER)).token
            client = (await workspaces.create_key(workspace.id, Role.CLIENT)).token
        finally:
            await store.close()
        return cls(database, directory, admin, worker, client)

    @property
    def side_file(self) -> Path:
        return self.directory / "side-file.log"

    def environment(self, **more: str) -> dict[str, str]:
        """What every drill process gets: the side file, and timings in seconds, not minutes."""
        return {
            SIDE_FILE_VARIABLE: str(self.side_file),
            "CONVEYOR_REAPER_INTERVAL_SECONDS": "0.2",
            "CONVEYOR_CLAIM_POLL_INTERVAL_SECONDS": "0.5",
            "CONVEYOR_SSE_PING_SECONDS": "1",
            "CONVEYOR_SQLITE_SYNCHRONOUS": "FULL",
            "CONVEYOR_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
            "CONVEYOR_SHUTDOWN_GRACE_SECONDS": "1",
            "CONVEYOR_LOG_LEVEL": "WARNING",
            **more,
        }

    def server(
        self, name: str, *extra: str, port: int | None = None, **env: str
    ) -> contextlib.AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]:
        return server_process(
            self.database.url,
            self.directory / f"{name}.log",
            *extra,
            env=self.environment(**env),
            port=port,
        )

    def worker(
        self, base_url: str, name: str, *, concurrency: int = 4
    ) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
        return conveyor_worker_process(
            base_url,
            self.worker_key,
            HANDLERS,
            self.directory / f"{name}.log",
            "--worker-id",
            name,
            "--lease-seconds",
            str(LEASE_SECONDS),
            "--concurrency",
            str(concurrency),
            "--shutdown-grace",
            "1",
            env=self.environment(),
        )

    def client(self, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{base_url}/v1/workspaces/{WORKSPACE}",
            headers={"Authorization": f"Bearer {self.client_key}"},
            timeout=10,
        )

    async def jobs(self) -> dict[str, JobRow]:
        return await read_jobs(self.database, WORKSPACE)

    async def events(self) -> list[EventRow]:
        return await read_events(self.database, WORKSPACE)

    def notes(self) -> list[Note]:
        return read_side_file(self.side_file)

    async def wait_completed(self, ids: set[str], *, within: float = 45) -> None:
        async def all_completed() -> bool:
            jobs = await self.jobs()
            return all(job_id in jobs and jobs[job_id].status == "COMPLETED" for job_id in ids)

        try:
            await eventually(all_completed, within=within, what=f"{len(ids)} jobs to complete")
        except AssertionError:
            jobs = await self.jobs()
            stuck = {i: jobs[i].status if i in jobs else "missing" for i in ids}
            stuck = {i: s for i, s in stuck.items() if s != "COMPLETED"}
            raise AssertionError(f"jobs not COMPLETED within {within}s: {stuck}") from None

    async def wait_for_notes(self, check: Any, what: str, *, within: float = 30) -> None:
        async def seen() -> bool:
            return bool(check(self.notes()))

        await eventually(seen, within=within, what=what)


async def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no handler runs, no connection is closed politely, nothing is flushed."""
    process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(process.wait, 10)


@dataclass
class Creates:
    """Clients creating jobs one request each, every create with its own idempotency key:
    `acknowledged` maps the key of every create answered 2xx to the job's id; a create whose
    answer never came (the connection broke) is `in_doubt` until it is sent again with the
    same key, as a careful client does."""

    job: dict[str, Any]
    acknowledged: dict[str, str] = field(default_factory=dict)
    in_doubt: set[str] = field(default_factory=set)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def body(self, key: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = {**self.job["payload"], **(payload or {}), "key": key}
        return {**self.job, "idempotency_key": key, "payload": payload}

    async def create(
        self, http: httpx.AsyncClient, key: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """One create; False when the connection broke (the create is then in doubt)."""
        try:
            response = await http.post("/jobs", json=self.body(key, payload))
        except httpx.TransportError:
            self.in_doubt.add(key)
            return False
        if response.status_code in (200, 201):
            self.acknowledged[key] = str(response.json()["id"])
            self.in_doubt.discard(key)
        else:
            self.refused.append((response.status_code, response.text[:300]))
        return True

    async def until_broken(self, http: httpx.AsyncClient, prefix: str) -> None:
        """Create job after job until the server goes away."""
        number = 0
        while await self.create(http, f"{prefix}-{number}"):
            number += 1

    async def resend_in_doubt(self, http: httpx.AsyncClient) -> None:
        for key in sorted(self.in_doubt):
            assert await self.create(http, key), f"create {key} broke again"
        assert not self.in_doubt, f"creates still in doubt: {self.in_doubt} ({self.refused})"


async def stop_worker(worker: subprocess.Popen[bytes], *, gracefully: bool = False) -> None:
    """The worker must still be running: it rode out whatever the drill did without a hand
    on it. Then stopped before the server, whose graceful stop would otherwise wait on the
    worker's long-polling claim: with SIGTERM, as an operator would, when `gracefully` (it
    must then exit cleanly; that takes a couple of seconds of settling), else SIGKILL."""
    assert worker.poll() is None, f"the worker process died (exit {worker.returncode})"
    if not gracefully:
        await kill(worker)
        return
    worker.terminate()
    code = await asyncio.to_thread(worker.wait, 15)
    assert code == 0, f"the worker exited {code} on SIGTERM"
