"""Execution timeouts in the worker, on both databases: an async handler past its timeout is
cancelled and its attempt fails (or is retried) as timed out; a plain function's job fails
at the deadline while its thread runs on, keeping its slot, and what the thread returns
or reports afterwards is ignored; a job's own timeout wins over its handler's default;
and a worker whose handler will not stop, but which still heartbeats, loses the job at
the deadline to the server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from conveyor.domain.errors import LeaseLossReason
from conveyor.domain.jobs import JobSpec
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobDetail, JobService
from conveyor.store.urls import DatabaseURL
from conveyor.worker import Handlers, JobContext, SyncJobContext, Worker, WorkerOptions
from conveyor.worker.backend import LeaseGone
from conveyor.worker.inprocess import ServiceBackend
from conveyor.worker.remote import HttpBackend
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server
from tests.worker.conftest import TERMINAL, eventually, wait_for_status

FAST: dict[str, Any] = {"lease_seconds": 2.0, "heartbeat_seconds": 0.1, "claim_wait_seconds": 1.0}

handlers = Handlers()
seen: dict[str, Any] = {}
"""What the handlers below saw, by job id."""
release = threading.Event()
"""Lets the blocked plain handler return."""


@handlers.job("timeouts.hang")
async def hang(job: JobContext) -> dict[str, int]:
    """Hangs on its first attempt until cancelled; succeeds on later ones."""
    if job.attempt == 1:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen[str(job.id)] = "cancelled"
            raise
    return {"attempt": job.attempt}


@handlers.job("timeouts.blocking")
def blocking(job: SyncJobContext) -> dict[str, bool]:
    """A plain function that cannot be stopped: it returns when the test lets it, then
    tries to report on a job that is no longer its own."""
    release.wait(30)
    try:
        job.progress(90, "too late")
        seen[str(job.id)] = "reported"
    except LeaseGone as gone:
        seen[str(job.id)] = gone.reason
    seen["thread_returned"] = True
    return {"late": True}


@handlers.job("timeouts.after_thread")
async def after_thread(job: JobContext) -> dict[str, bool]:
    return {"thread_returned": seen.get("thread_returned", False)}


@handlers.job("timeouts.nap", timeout=0.3)
async def nap(job: JobContext) -> dict[str, bool]:
    """Sleeps longer than its handler's default timeout."""
    await asyncio.sleep(float(job.payload["seconds"]))
    return {"woke": True}


@handlers.job("timeouts.stubborn")
async def stubborn(job: JobContext) -> None:
    """Ignores cancellation: runs until the job is taken away from its worker."""
    while not job.cancelled:
        try:
            await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            seen.setdefault(f"{job.id}:cancelled", True)
    seen[str(job.id)] = job.lost_because


@pytest.fixture(autouse=True)
def fresh_state() -> None:
    seen.clear()
    release.clear()


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)
        await worker.backend.close()


async def create(client: httpx.AsyncClient, job_type: str, **body: Any) -> str:
    response = await client.post("/jobs", json={"type": job_type, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def in_process(service: JobService, workspace: Workspace, **options: Any) -> Worker:
    backend = ServiceBackend(service, workspace.id)
    return Worker(backend, handlers, WorkerOptions(**{**FAST, **options}))


def over_http(server: RunningServer, key: str, **options: Any) -> Worker:
    backend = HttpBackend.connect(server.url, key)
    return Worker(backend, handlers, WorkerOptions(**{**FAST, **options}))


async def finished(service: JobService, workspace: Workspace, job_id: UUID) -> JobDetail:
    async def done() -> bool:
        return (await service.get_job(workspace.id, job_id)).status.is_terminal

    await eventually(done, what=f"job {job_id} to finish")
    return await service.get_job_detail(workspace.id, job_id)


def kinds(detail: JobDetail) -> list[str]:
    return [event.type for event in detail.events]


async def test_an_async_handler_past_its_timeout_is_cancelled_and_its_job_fails(
    service: JobService, workspace: Workspace
) -> None:
    job, _ = await service.create_job(
        workspace.id, JobSpec(type="timeouts.hang", timeout_seconds=0.3), "test"
    )
    worker = in_process(service, workspace)
    async with running(worker):
        detail = await finished(service, workspace, job.id)
    assert (detail.job.status, detail.job.error) == ("FAILED", "timed out after 0.3 s")
    assert seen[str(job.id)] == "cancelled"
    assert kinds(detail) == [
        "job.created",
        "job.queued",
        "job.started",
        "job.timed_out",
        "job.failed",
    ]
    timed_out = detail.events[3]
    assert timed_out.actor.startswith("worker:"), "the worker said so, not the reaper"
    assert timed_out.payload == {"attempt": 1, "timeout_seconds": 0.3}
    assert (worker.stats.failed, worker.stats.completed) == (1, 0)


async def test_an_async_handler_past_its_timeout_is_retried_while_attempts_are_left(
    service: JobService, workspace: Workspace
) -> None:
    spec = JobSpec(
        type="timeouts.hang", timeout_seconds=0.3, max_attempts=2, retry_backoff_seconds=0.05
    )
    job, _ = await service.create_job(workspace.id, spec, "test")
    async with running(in_process(service, workspace)):
        detail = await finished(service, workspace, job.id)
    assert (detail.job.status, detail.job.attempt, detail.job.result) == (
        "COMPLETED",
        2,
        {"attempt": 2},
    )
    assert kinds(detail)[2:] == [
        "job.started",
        "job.timed_out",
        "job.retrying",
        "job.queued",
        "job.started",
        "job.completed",
    ]


async def test_a_plain_handler_past_its_timeout_fails_at_the_deadline_and_keeps_its_slot(
    service: JobService, workspace: Workspace
) -> None:
    stuck, _ = await service.create_job(
        workspace.id, JobSpec(type="timeouts.blocking", timeout_seconds=0.3, priority=1), "test"
    )
    after, _ = await service.create_job(
        workspace.id, JobSpec(type="timeouts.after_thread", priority=10), "test"
    )
    worker = in_process(service, workspace, concurrency=1)
    async with running(worker):
        failed = await finished(service, workspace, stuck.id)
        assert "thread_returned" not in seen, "failed at the deadline, its thread still running"
        assert (failed.job.status, failed.job.error) == ("FAILED", "timed out after 0.3 s")
        assert kinds(failed)[-2:] == ["job.timed_out", "job.failed"]
        release.set()
        second = await finished(service, workspace, after.id)
    # The one slot stayed taken until the thread returned: the next job ran after it.
    assert second.job.result == {"thread_returned": True}
    assert seen[str(stuck.id)] == LeaseLossReason.TIMED_OUT, "its late report was refused"
    late = await service.get_job_detail(workspace.id, stuck.id)
    assert (late.job.status, late.job.result) == ("FAILED", None), "its late result is ignored"
    assert late.events == failed.events
    assert (worker.stats.completed, worker.stats.failed) == (1, 1)


async def test_a_handler_s_default_applies_to_jobs_without_their_own_timeout(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    defaulted = await create(client, "timeouts.nap", payload={"seconds": 3600})
    own = await create(client, "timeouts.nap", payload={"seconds": 0.6}, timeout_seconds=30)
    async with running(over_http(server, keys["worker"])):
        timed_out = await wait_for_status(client, defaulted, TERMINAL)
        completed = await wait_for_status(client, own, TERMINAL)
    assert (timed_out["status"], timed_out["error"]) == ("FAILED", "timed out after 0.3 s")
    [event] = [e for e in timed_out["events"] if e["type"] == "job.timed_out"]  # type: ignore[union-attr]
    assert event["payload"] == {"attempt": 1, "timeout_seconds": 0.3}, "the handler's default"
    assert (completed["status"], completed["result"]) == ("COMPLETED", {"woke": True})


async def test_a_job_s_own_timeout_wins_over_a_longer_handler_default(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    chosen = Handlers()
    chosen.add("timeouts.hang", hang, timeout=3600)
    job_id = await create(client, "timeouts.hang", timeout_seconds=0.3)
    backend = HttpBackend.connect(server.url, keys["worker"])
    async with running(Worker(backend, chosen, WorkerOptions(**FAST))):
        job = await wait_for_status(client, job_id, TERMINAL)
    assert (job["status"], job["error"]) == ("FAILED", "timed out after 0.3 s")
    [event] = [e for e in job["events"] if e["type"] == "job.timed_out"]  # type: ignore[union-attr]
    assert event["payload"] == {"attempt": 1, "timeout_seconds": 0.3}
    assert event["actor"].startswith("worker:"), "the worker stopped it, at the job's timeout"


@pytest.fixture
async def strict_server(database_url: DatabaseURL) -> AsyncIterator[RunningServer]:
    """A server with a short grace past the timeout."""
    settings = settings_for(database_url, timeout_grace_seconds=0.3)
    async with running_server(settings) as running_:
        yield running_


async def test_a_heartbeating_worker_whose_handler_will_not_stop_loses_the_job_at_the_deadline(
    strict_server: RunningServer, keys: dict[str, str]
) -> None:
    async with httpx.AsyncClient(
        base_url=f"{strict_server.url}/v1/workspaces/acme",
        headers={"Authorization": f"Bearer {keys['admin']}"},
    ) as client:
        job_id = await create(client, "timeouts.stubborn", timeout_seconds=0.3)
        async with running(over_http(strict_server, keys["worker"])):
            job = await wait_for_status(client, job_id, TERMINAL)

            async def handler_stopped() -> bool:
                return job_id in seen

            await eventually(handler_stopped, what="the handler to learn it lost the job")
    assert (job["status"], job["error"]) == ("FAILED", "timed out after 0.3 s")
    assert seen[f"{job_id}:cancelled"], "the worker tried to stop it at the timeout"
    timed_out = [e for e in job["events"] if e["type"] == "job.timed_out"]  # type: ignore[union-attr]
    assert [e["actor"] for e in timed_out] == ["system"], "the server took it back"
    assert seen[job_id] in (LeaseLossReason.TIMED_OUT, LeaseLossReason.FINISHED)
