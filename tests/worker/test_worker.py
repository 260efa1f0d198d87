"""Workers end to end: in the server's process and over HTTP, on both stores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.store import Store
from conveyor.worker import Handlers, Worker, WorkerOptions
from conveyor.worker.backend import CompletionReport, UnknownWorkspace
from conveyor.worker.command import register as register_command_jobs
from conveyor.worker.inprocess import ServiceBackend
from conveyor.worker.remote import HttpBackend
from tests.support.server import RunningServer
from tests.worker.conftest import TERMINAL, eventually, wait_for_status, worker_process
from tests.worker.handlers_for_tests import handlers

FAST = {"lease_seconds": 2.0, "heartbeat_seconds": 0.2, "claim_wait_seconds": 1.0}


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)
        await worker.backend.close()


def http_worker(server: RunningServer, key: str, **options: object) -> Worker:
    backend = HttpBackend.connect(server.url, key)
    settings = {**FAST, "shutdown_grace_seconds": 5.0, **options}
    chosen = Handlers()
    chosen.merge(handlers)
    if settings.pop("allow_command_jobs", False):
        register_command_jobs(chosen)
    return Worker(backend, chosen, WorkerOptions(**settings))  # type: ignore[arg-type]


async def create(client: httpx.AsyncClient, job_type: str, **body: object) -> str:
    response = await client.post("/jobs", json={"type": job_type, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_in_process_worker_runs_async_sync_and_step_handlers(
    service: JobService, workspace: Workspace
) -> None:
    from conveyor.domain.jobs import JobSpec

    specs = [
        JobSpec(type="test.echo", payload={"n": 1}),
        JobSpec(type="test.sync"),
        JobSpec(type="test.steps"),
        JobSpec(type="test.permanent", max_attempts=3),
        JobSpec(type="test.unserialisable"),
    ]
    created = [job for job, _ in await service.create_jobs(workspace.id, specs, "test")]
    worker = Worker(ServiceBackend(service, workspace.id), handlers, WorkerOptions(**FAST))  # type: ignore[arg-type]
    async with running(worker):

        async def all_done() -> bool:
            jobs = [await service.get_job(workspace.id, job.id) for job in created]
            return all(job.status.is_terminal for job in jobs)

        await eventually(all_done, what="every job to finish")
    echo, sync, steps, permanent, unserialisable = [
        await service.get_job_detail(workspace.id, job.id) for job in created
    ]
    assert (echo.job.status, echo.job.result) == ("COMPLETED", {"n": 1})
    assert (sync.job.status, sync.job.result) == ("COMPLETED", {"thread": True})
    assert sync.steps[0].output == "done\n"
    assert steps.job.status == "COMPLETED"
    assert [(s.name, s.status) for s in steps.steps] == [("plan", "COMPLETED"), ("gate", "FAILED")]
    assert steps.steps[0].tokens_input == 100
    assert "ai.tool_called" in [e.type for e in steps.events]
    assert (permanent.job.status, permanent.job.attempt) == ("FAILED", 1)
    assert permanent.job.error == "not worth retrying"
    assert unserialisable.job.status == "FAILED"
    assert "not JSON" in (unserialisable.job.error or "")
    assert worker.stats.completed == 3


async def test_a_result_the_server_refuses_fails_the_job_and_says_why(
    service: JobService, workspace: Workspace
) -> None:
    from conveyor.domain.jobs import JobSpec

    [(job, _)] = await service.create_jobs(workspace.id, [JobSpec(type="test.too_deep")], "test")
    worker = Worker(ServiceBackend(service, workspace.id), handlers, WorkerOptions(**FAST))  # type: ignore[arg-type]
    async with running(worker):
        await eventually(
            lambda: _is_terminal(service, workspace.id, job.id), what="the job to finish"
        )
    failed = await service.get_job(workspace.id, job.id)
    assert failed.status == "FAILED", failed
    assert "the result was refused" in (failed.error or ""), failed.error
    assert "nested deeper" in (failed.error or ""), failed.error
    assert (worker.stats.completed, worker.stats.failed) == (0, 1)


class SlowCompletions(ServiceBackend):
    """Completions take a second to be answered."""

    async def complete_many(
        self, reports: list[CompletionReport], worker_id: str
    ) -> list[Exception | None]:
        await asyncio.sleep(1.0)
        return await super().complete_many(reports, worker_id)


async def test_stopping_waits_for_completions_already_on_their_way(
    service: JobService, workspace: Workspace
) -> None:
    from conveyor.domain.jobs import JobSpec

    specs = [JobSpec(type="test.echo", payload={"n": n}) for n in range(5)]
    created = [job for job, _ in await service.create_jobs(workspace.id, specs, "test")]
    worker = Worker(SlowCompletions(service, workspace.id), handlers, WorkerOptions(**FAST))  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    await eventually(lambda: _claimed_all(worker, 5), what="the worker to claim the five jobs")
    worker.stop()  # the handlers are done; their completions are waiting on the backend
    await asyncio.wait_for(task, 20)
    jobs = [await service.get_job(workspace.id, job.id) for job in created]
    assert [job.status for job in jobs] == ["COMPLETED"] * 5
    assert (worker.stats.completed, worker.stats.released) == (5, 0)


async def _is_terminal(service: JobService, workspace_id: UUID, job_id: UUID) -> bool:
    return (await service.get_job(workspace_id, job_id)).status.is_terminal


async def _claimed_all(worker: Worker, count: int) -> bool:
    return worker.stats.claimed == count


async def test_remote_worker_retries_a_flaky_handler_until_it_succeeds(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    job_id = await create(
        client,
        "test.flaky",
        payload={"succeed_on": 3},
        max_attempts=3,
        retry_backoff_seconds=0.05,
        retry_backoff_max_seconds=0.1,
    )
    async with running(http_worker(server, keys["worker"])):
        job = await wait_for_status(client, job_id, TERMINAL)
    assert job["status"] == "COMPLETED"
    assert job["attempt"] == 3
    assert job["result"] == {"attempt": 3}
    types = [event["type"] for event in job["events"]]  # type: ignore[index]
    assert types == [
        "job.created",
        "job.queued",
        "job.started",
        "job.retrying",
        "job.queued",
        "job.started",
        "job.retrying",
        "job.queued",
        "job.started",
        "job.completed",
    ]
    retrying = [e for e in job["events"] if e["type"] == "job.retrying"]  # type: ignore[union-attr]
    assert [e["payload"]["attempt"] for e in retrying] == [2, 3]
    assert "flaky failure on attempt 1" in retrying[0]["payload"]["error"]


async def test_a_handler_that_raises_leaves_its_traceback_with_the_job(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    job_id = await create(client, "test.flaky", payload={"succeed_on": 9}, max_attempts=1)
    async with running(http_worker(server, keys["worker"])):
        job = await wait_for_status(client, job_id, TERMINAL)
    assert (job["status"], job["error"]) == ("FAILED", "RuntimeError: flaky failure on attempt 1")
    detail = str(job["error_detail"])
    assert detail.startswith("Traceback (most recent call last):"), detail
    assert "in flaky" in detail, "the handler's own frame is named"
    assert detail.rstrip().endswith("RuntimeError: flaky failure on attempt 1")


async def test_cancelling_a_running_command_job_terminates_the_process(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import os, time; "
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        "print('started', flush=True); time.sleep(120)"
    )
    job_id = await create(client, "command", payload={"argv": [sys.executable, "-c", script]})
    async with running(http_worker(server, keys["worker"], allow_command_jobs=True)) as worker:

        async def printed_started() -> bool:
            events = (await client.get(f"/jobs/{job_id}/events")).json()["data"]
            return any(
                e["type"] == "step.output" and "started" in e["payload"]["text"] for e in events
            )

        await eventually(printed_started, what="the command's first output")
        pid = int(pid_file.read_text())
        cancelled = await client.post(f"/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200

        def process_gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # A zombie still answers kill(0): it has exited but was not reaped yet.
            with contextlib.suppress(FileNotFoundError):
                return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
            return True

        async def stopped() -> bool:
            return process_gone() and worker.running == 0

        await eventually(stopped, what="the command to be terminated")
    job = (await client.get(f"/jobs/{job_id}")).json()
    assert job["status"] == "CANCELLED"
    types = [event["type"] for event in job["events"]]
    assert "job.completed" not in types
    assert "job.failed" not in types
    assert types.count("job.cancelled") == 1


async def test_command_job_completes_with_exit_code_and_output(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str], tmp_path: Path
) -> None:
    ok = await create(
        client,
        "command",
        payload={
            "argv": [
                sys.executable,
                "-c",
                "import sys; print('out'); print('err', file=sys.stderr)",
            ],
            "cwd": str(tmp_path),
        },
    )
    failing = await create(
        client, "command", payload={"argv": [sys.executable, "-c", "import sys; sys.exit(3)"]}
    )
    slow = await create(
        client,
        "command",
        payload={
            "argv": [sys.executable, "-c", "import time; time.sleep(30)"],
            "timeout_seconds": 0.5,
        },
    )
    async with running(http_worker(server, keys["worker"], allow_command_jobs=True)):
        done = {
            job_id: await wait_for_status(client, job_id, TERMINAL)
            for job_id in (ok, failing, slow)
        }
    assert done[ok]["status"] == "COMPLETED"
    assert done[ok]["result"]["exit_code"] == 0  # type: ignore[index]
    assert "out" in done[ok]["result"]["output_tail"]  # type: ignore[index]
    outputs = {
        e["payload"]["stream"]: e["payload"]["text"]
        for e in done[ok]["events"]  # type: ignore[union-attr]
        if e["type"] == "step.output"
    }
    assert outputs == {"stdout": "out\n", "stderr": "err\n"}
    assert done[failing]["status"] == "FAILED"
    assert "exit code 3" in str(done[failing]["error"])
    assert done[slow]["status"] == "FAILED"
    assert "timed out" in str(done[slow]["error"])


async def test_command_jobs_are_not_claimed_unless_allowed(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    job_id = await create(client, "command", payload={"argv": ["true"]})
    async with running(http_worker(server, keys["worker"])) as worker:
        assert "command" not in worker.types
        await asyncio.sleep(0.5)
    assert (await client.get(f"/jobs/{job_id}")).json()["status"] == "QUEUED"


async def test_a_worker_claiming_from_a_workspace_that_does_not_exist_stops(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """No workspace that exists answers a claim 404: trying again cannot help."""
    backend = HttpBackend.connect(server.url, keys["instance_worker"], workspaces=["nope"])
    worker = Worker(backend, handlers, WorkerOptions(**FAST))  # type: ignore[arg-type]
    try:
        with pytest.raises(UnknownWorkspace, match="workspace nope not found"):
            await asyncio.wait_for(worker.run(), 20)
    finally:
        await backend.close()
    assert worker.stats.claimed == 0


async def test_a_remote_worker_with_more_slots_than_one_claim_may_ask_for_still_drains(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # The API takes at most 500 jobs a claim; a worker with 600 free slots asks in parts.
    response = await client.post(
        "/jobs/batch",
        json={"jobs": [{"type": "test.echo", "payload": {"n": n}} for n in range(40)]},
    )
    assert response.status_code == 201, response.text
    ids = [job["id"] for job in response.json()["data"]]
    async with running(http_worker(server, keys["worker"], concurrency=600)) as worker:

        async def all_done() -> bool:
            return worker.stats.completed == len(ids)

        await eventually(all_done, what="the 600-slot worker to run all 40 jobs")


async def test_a_killed_worker_s_job_runs_again_elsewhere_and_completes_once(
    server: RunningServer,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    store: Store,
    workspace: Workspace,
    tmp_path: Path,
) -> None:
    job_id = await create(client, "test.block", max_attempts=2, retry_backoff_seconds=0)
    with worker_process(
        server.url,
        keys["worker"],
        "--lease-seconds",
        "1",
        "--concurrency",
        "1",
        log=tmp_path / "doomed.log",
    ) as doomed:
        await wait_for_status(client, job_id, {"RUNNING"})
        first = await store.jobs.get_job(workspace.id, UUID(job_id))
        assert first is not None
        assert first.lease_id is not None
        doomed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 10)
    async with running(http_worker(server, keys["worker"])):
        job = await wait_for_status(client, job_id, TERMINAL)
    assert job["status"] == "COMPLETED"
    assert job["attempt"] == 2
    types = [event["type"] for event in job["events"]]  # type: ignore[union-attr]
    assert types.count("job.completed") == 1
    assert types.count("job.lease_expired") == 1

    late = await client.post(
        f"/jobs/{job_id}/complete",
        json={"lease_id": str(first.lease_id), "result": {"from": "the dead worker"}},
    )
    assert late.status_code == 409
    assert late.json()["type"] == "/problems/lease-lost"
    after = (await client.get(f"/jobs/{job_id}")).json()
    assert after["result"] == {"attempt": 2}
    assert after["version"] == job["version"]


async def test_sigterm_hands_running_jobs_back_after_the_grace_period(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str], tmp_path: Path
) -> None:
    blocked = await create(client, "test.block", max_attempts=1)
    with worker_process(
        server.url,
        keys["worker"],
        "--shutdown-grace",
        "0.5",
        "--lease-seconds",
        "5",
        log=tmp_path / "worker.log",
    ) as process:
        await wait_for_status(client, blocked, {"RUNNING"})
        process.send_signal(signal.SIGTERM)
        # Off the event loop: the server answering the worker runs on it.
        assert await asyncio.to_thread(process.wait, 20) == 0
    job = (await client.get(f"/jobs/{blocked}")).json()
    assert (job["status"], job["attempt"]) == ("QUEUED", 1), "handed back, attempt not spent"
    assert [e["type"] for e in job["events"]][-2:] == ["job.released", "job.queued"]


async def test_server_and_worker_ride_out_a_postgresql_restart(
    tmp_path: Path,
) -> None:
    """A dedicated PostgreSQL, restarted under a running server and worker."""
    from tests.conftest import settings_for
    from tests.support.postgres import postgres_of_its_own
    from tests.support.server import running_server

    async with (
        postgres_of_its_own() as (postgres, url, admin),
        running_server(settings_for(url)) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {admin}"},
        ) as client,
        running(http_worker(server, admin)),
    ):
        before = [await create(client, "test.echo", payload={"i": i}) for i in range(10)]
        for job_id in before:
            await wait_for_status(client, job_id, {"COMPLETED"})

        await asyncio.to_thread(postgres.restart, 1.0)

        after: list[str] = []
        for i in range(10):
            for _ in range(100):
                response = await client.post(
                    "/jobs", json={"type": "test.echo", "payload": {"i": i}}
                )
                if response.status_code == 201:
                    after.append(response.json()["id"])
                    break
                assert response.status_code == 503, response.text
                await asyncio.sleep(0.1)
        assert len(after) == 10
        for job_id in after:
            await wait_for_status(client, job_id, {"COMPLETED"}, within=30)
        # The jobs above may finish while the listener still sleeps out its
        # reconnect backoff (this process wakes its own claimers meanwhile); it must
        # come back on its own within its capped backoff.
        listener = server.runtime.listener
        assert listener is not None
        for _ in range(150):
            if listener.reconnects >= 1 and listener.connected.is_set():
                break
            await asyncio.sleep(0.1)
        assert listener.reconnects >= 1, "the LISTEN connection never came back"
        assert listener.connected.is_set(), "the LISTEN connection is not up"
