"""Execution timeouts over real HTTP, as a worker in any language sees them: a claim and its
heartbeats never lease an attempt past its deadline, a heartbeat after it answers 409
`lease-lost` with reason `timed_out`, the reaper takes the job back, and a worker may
report its own timeout (`fail` with `timed_out`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server

GRACE = 0.3


def clients(server: RunningServer, keys: dict[str, str]) -> tuple[httpx.AsyncClient, ...]:
    base = f"{server.url}/v1/workspaces/acme"
    return (
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {keys['admin']}"}),
        httpx.AsyncClient(
            base_url=base,
            headers={"Authorization": f"Bearer {keys['worker']}", "Conveyor-Worker-Id": "w-1"},
        ),
    )


@pytest.fixture
async def server(database_url: DatabaseURL) -> AsyncIterator[RunningServer]:
    """A short grace; the reaper runs as usual (every 0.2 s)."""
    async with running_server(settings_for(database_url, timeout_grace_seconds=GRACE)) as up:
        yield up


@pytest.fixture
async def reaperless_server(database_url: DatabaseURL) -> AsyncIterator[RunningServer]:
    """A short grace, and a reaper that runs only when the test says."""
    settings = settings_for(database_url, timeout_grace_seconds=GRACE, reaper_interval_seconds=3600)
    async with running_server(settings) as up:
        yield up


async def claim(worker: httpx.AsyncClient, job_type: str) -> dict[str, Any]:
    response = await worker.post(
        "/claims", json={"worker_id": "w-1", "types": [job_type], "lease_seconds": 30}
    )
    assert response.status_code == 200, response.text
    [job] = response.json()["data"]
    return dict(job)


def leased_for(job: dict[str, Any]) -> float:
    expires = datetime.fromisoformat(job["lease_expires_at"])
    return (expires - datetime.fromisoformat(job["started_at"])).total_seconds()


async def heartbeat_until_refused(
    worker: httpx.AsyncClient, job: dict[str, Any]
) -> tuple[list[dict[str, Any]], httpx.Response]:
    """Heartbeat as a hung worker would, until the server says no; the answers before."""
    accepted: list[dict[str, Any]] = []
    for _ in range(400):
        response = await worker.post(
            f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"], "lease_seconds": 30}
        )
        if response.status_code != 200:
            return accepted, response
        accepted.append(response.json())
        await asyncio.sleep(0.05)
    raise AssertionError("heartbeats were never refused")


async def test_a_hung_worker_that_heartbeats_is_refused_at_the_deadline_as_timed_out(
    reaperless_server: RunningServer, keys: dict[str, str]
) -> None:
    admin, worker = clients(reaperless_server, keys)
    async with admin, worker:
        created = await admin.post("/jobs", json={"type": "t", "timeout_seconds": 0.3})
        assert created.json()["timeout_seconds"] == 0.3
        job = await claim(worker, "t")
        assert job["timeout_seconds"] == 0.3
        assert leased_for(job) == pytest.approx(0.3 + GRACE, abs=0.05)

        accepted, refused = await heartbeat_until_refused(worker, job)
        assert all(leased_for(beat) <= 0.3 + GRACE + 0.05 for beat in accepted)
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert (problem["type"], problem["reason"]) == ("/problems/lease-lost", "timed_out")
        assert "timeout" in problem["detail"]
        still = (await admin.get(f"/jobs/{job['id']}")).json()
        assert still["status"] == "RUNNING", "refused, not yet taken back"

        [taken] = await reaperless_server.runtime.jobs.expire_leases()
        assert str(taken.id) == job["id"]
        failed = (await admin.get(f"/jobs/{job['id']}")).json()
        assert (failed["status"], failed["error"]) == ("FAILED", "timed out after 0.3 s")
        events = failed["events"]
        assert [e["type"] for e in events][-2:] == ["job.timed_out", "job.failed"]
        assert (events[-2]["actor"], events[-2]["payload"]) == (
            "system",
            {"attempt": 1, "timeout_seconds": 0.3},
        )
        after = await worker.post(
            f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"]}
        )
        assert (after.status_code, after.json()["reason"]) == (409, "finished")


async def test_the_reaper_takes_a_timed_out_job_back_from_a_worker_still_heartbeating(
    server: RunningServer, keys: dict[str, str]
) -> None:
    admin, worker = clients(server, keys)
    async with admin, worker:
        await admin.post(
            "/jobs",
            json={
                "type": "t",
                "timeout_seconds": 0.3,
                "max_attempts": 2,
                "retry_backoff_seconds": 60,
            },
        )
        job = await claim(worker, "t")
        _, refused = await heartbeat_until_refused(worker, job)
        assert (refused.status_code, refused.json()["type"]) == (409, "/problems/lease-lost")
        for _ in range(200):
            requeued = (await admin.get(f"/jobs/{job['id']}")).json()
            if requeued["status"] != "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert (requeued["status"], requeued["attempt"]) == ("QUEUED", 2)
        assert requeued["error"] == "timed out after 0.3 s"
        types = [e["type"] for e in requeued["events"]]
        assert types[-3:] == ["job.timed_out", "job.retrying", "job.queued"]
        # As the README says: once the reaper has taken the job back, the reason is what
        # became of it (queued for its retry), no longer `timed_out`.
        late = await worker.post(f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"]})
        assert (late.status_code, late.json()["reason"]) == (409, "expired")


async def test_a_worker_reports_its_own_timeout(
    server: RunningServer, keys: dict[str, str]
) -> None:
    admin, worker = clients(server, keys)
    async with admin, worker:
        await admin.post("/jobs", json={"type": "own", "timeout_seconds": 30})
        own = await claim(worker, "own")
        failed = await worker.post(
            f"/jobs/{own['id']}/fail",
            json={
                "lease_id": own["lease_id"],
                "error": "timed out after 30 s",
                "retryable": True,
                "timed_out": True,
            },
        )
        assert failed.status_code == 200, failed.text
        events = (await admin.get(f"/jobs/{own['id']}")).json()["events"]
        assert [e["type"] for e in events][-2:] == ["job.timed_out", "job.failed"]
        assert events[-2]["payload"] == {"attempt": 1, "timeout_seconds": 30}
        assert events[-2]["actor"].startswith("worker:w-1/key:")

        await admin.post("/jobs", json={"type": "default", "max_attempts": 2})
        default = await claim(worker, "default")
        body = {
            "lease_id": default["lease_id"],
            "error": "timed out after 5 s",
            "retryable": True,
            "timed_out": True,
        }
        refused = await worker.post(
            f"/jobs/{default['id']}/fail", json={**body, "timeout_seconds": 0}
        )
        assert (refused.status_code, refused.json()["type"]) == (422, "/problems/validation-error")
        requeued = await worker.post(
            f"/jobs/{default['id']}/fail", json={**body, "timeout_seconds": 5}
        )
        assert (requeued.json()["status"], requeued.json()["attempt"]) == ("QUEUED", 2)
        events = (await admin.get(f"/jobs/{default['id']}")).json()["events"]
        assert [e["type"] for e in events][-3:] == ["job.timed_out", "job.retrying", "job.queued"]
        assert events[-3]["payload"] == {"attempt": 1, "timeout_seconds": 5}
