"""The concurrency guarantees, each tested so that the test fails when the guarantee goes:

* a decision made on a stale read is never stored, even while the job's status would
  still allow it (the version compare-and-set);
* a PostgreSQL claim passes a row another transaction holds locked (`SKIP LOCKED`);
* a create wakes a long-polling claimer at once (not at its next poll).
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx
import pytest

from conveyor.domain.jobs import JobSpec, JobStatus, decide_failure
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_CLAIMED_JOB, AS_JOB, JobService
from conveyor.store import Store
from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server
from tests.worker.conftest import eventually

ACTOR = "test"


async def test_a_decision_on_a_stale_read_is_not_stored(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    """A worker claims a job, reads it, and goes silent; the reaper takes the job back and
    another worker claims it. The first worker's `fail`, decided on its old read, comes
    last: RUNNING may still move to FAILED, so only the version can refuse it."""
    job, _ = await service.create_job(
        workspace.id, JobSpec(type="t", max_attempts=3, retry_backoff_seconds=0), ACTOR
    )
    [stale] = await service.claim_jobs(
        workspace.id,
        types=None,
        limit=1,
        lease_seconds=0.05,
        worker_id="dead",
        actor=ACTOR,
        answer=AS_JOB,
    )
    assert stale.lease_id is not None

    async def reaped() -> bool:
        return bool(await service.expire_leases())

    await eventually(reaped, what="the reaper to take the job back")
    [current] = await service.claim_jobs(
        workspace.id,
        types=None,
        limit=1,
        lease_seconds=60,
        worker_id="alive",
        actor=ACTOR,
        answer=AS_JOB,
    )
    assert current.id == job.id
    assert current.status == JobStatus.RUNNING

    late = decide_failure(
        stale, stale.lease_id, "the dead worker's failure", retryable=False, jitter=0.0, actor="w"
    )
    assert await store.jobs.apply_change(workspace.id, late) is None
    after = await store.jobs.get_job(workspace.id, job.id)
    assert after == current, "a decision made on a stale read was stored"


async def test_a_postgresql_claim_passes_a_locked_row(
    service: JobService, workspace: Workspace, database_url: DatabaseURL, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer)")
    urgent, _ = await service.create_job(workspace.id, JobSpec(type="t", priority=1), ACTOR)
    second, _ = await service.create_job(workspace.id, JobSpec(type="t", priority=2), ACTOR)
    third, _ = await service.create_job(workspace.id, JobSpec(type="t", priority=3), ACTOR)
    holder = await asyncpg.connect(database_url.url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        locked = await holder.fetchval("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", urgent.id)
        assert locked == urgent.id
        # Without SKIP LOCKED each claim would wait for the lock until the transaction
        # ends, which it does only after these claims (or their bound) are over.
        claimed = await asyncio.wait_for(
            service.claim_jobs(
                workspace.id,
                types=None,
                limit=1,
                lease_seconds=60,
                worker_id="w",
                actor=ACTOR,
                answer=AS_JOB,
            ),
            timeout=10,
        )
        assert [job.id for job in claimed] == [second.id]
        briefly = await asyncio.wait_for(
            service.claim_jobs(
                workspace.id,
                types=None,
                limit=1,
                lease_seconds=60,
                worker_id="w",
                actor=ACTOR,
                answer=AS_CLAIMED_JOB,
            ),
            timeout=10,
        )
        assert [job.id for job in briefly] == [third.id]
        await transaction.rollback()
    finally:
        await holder.close()
    [last] = await service.claim_jobs(
        workspace.id,
        types=None,
        limit=1,
        lease_seconds=60,
        worker_id="w",
        actor=ACTOR,
        answer=AS_JOB,
    )
    assert last.id == urgent.id


async def claim_is_waiting(server: RunningServer, database_url: DatabaseURL, ws: UUID) -> bool:
    """The long-poll has looked for work, found none, and waits (it watches the workspace
    from before its look, so anything queued from now on wakes it)."""
    return server.runtime.jobs.waiting_claims > 0


async def test_a_create_wakes_a_waiting_claim_at_once(
    database_url: DatabaseURL,
    keys: dict[str, str],
    service: JobService,
    workspace: Workspace,
) -> None:
    """The server's long-polls look again only once an hour here, so only the create's
    wake-up (SQLite: the service's own signal; PostgreSQL: NOTIFY, through the server's
    listener, for a create made by another process) can end the claim within the bound."""
    settings = settings_for(
        database_url, claim_poll_interval_seconds=3600, reaper_interval_seconds=3600
    )
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme", timeout=120) as http,
    ):
        worker = {"Authorization": f"Bearer {keys['worker']}"}
        claim = asyncio.create_task(
            http.post("/claims", json={"worker_id": "w", "wait_seconds": 60}, headers=worker)
        )

        async def waiting() -> bool:
            return await claim_is_waiting(server, database_url, workspace.id)

        await eventually(waiting, what="the claim to wait")
        assert not claim.done()
        if database_url.kind == "sqlite":
            created = await http.post(
                "/jobs", json={"type": "t"}, headers={"Authorization": f"Bearer {keys['client']}"}
            )
            job_id = created.json()["id"]
        else:
            job, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
            job_id = str(job.id)
        # Well inside the claim's 60 s: a claim that missed the wake-up is still waiting.
        answer = await asyncio.wait_for(claim, timeout=30)
    assert answer.status_code == 200
    assert [job["id"] for job in answer.json()["data"]] == [job_id]
