"""Waiting claims are woken, not polled: by room under a limit (a limited job finished, a
limit resumed) and by the next job coming due. The server's long-polls look again only
once an hour here, so only the wake-up can end a claim within the test's bound."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conveyor.domain.workspaces import Workspace
from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.service.test_guarantees import claim_is_waiting
from tests.support.server import RunningServer, running_server
from tests.worker.conftest import eventually

HOUR = 3600


async def waiting_claim(
    http: httpx.AsyncClient, server: RunningServer, database_url: DatabaseURL, ws: Workspace
) -> asyncio.Task[httpx.Response]:
    claim = asyncio.create_task(
        http.post("/claims", json={"worker_id": "waiting", "wait_seconds": 60})
    )

    async def waits() -> bool:
        return await claim_is_waiting(server, database_url, ws.id)

    await eventually(waits, what="the claim to wait")
    assert not claim.done()
    return claim


def claimed_ids(answer: httpx.Response) -> list[Any]:
    assert answer.status_code == 200, answer.text
    return [job["id"] for job in answer.json()["data"]]


@pytest.mark.parametrize(
    ("method", "ending", "body"),
    [
        ("POST", "complete", {}),
        ("POST", "fail", {"error": "boom"}),
        ("PATCH", "status", {"status": "COMPLETED"}),
    ],
    ids=["completed", "failed", "completed-by-status"],
)
async def test_a_limited_job_finishing_wakes_a_claim_waiting_for_room(
    database_url: DatabaseURL,
    keys: dict[str, str],
    workspace: Workspace,
    method: str,
    ending: str,
    body: dict[str, Any],
) -> None:
    """Completing (a batch of one), failing (a single guarded change: on PostgreSQL its
    leave is the trigger's) and completing by status (a single change whose statement
    writes its leave) all wake the claim."""
    settings = settings_for(
        database_url, claim_poll_interval_seconds=HOUR, reaper_interval_seconds=HOUR
    )
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=120,
        ) as http,
    ):
        await http.put("/limits/gpu", json={"max_running": 1})
        first = (await http.post("/jobs", json={"type": "t", "concurrency_key": "gpu"})).json()
        second = (await http.post("/jobs", json={"type": "t", "concurrency_key": "gpu"})).json()
        [running] = (await http.post("/claims", json={"worker_id": "a", "limit": 5})).json()["data"]
        assert running["id"] == first["id"]
        claim = await waiting_claim(http, server, database_url, workspace)
        done = await http.request(
            method, f"/jobs/{first['id']}/{ending}", json={"lease_id": running["lease_id"], **body}
        )
        assert done.status_code == 200
        assert claimed_ids(await asyncio.wait_for(claim, 30)) == [second["id"]]


async def test_resuming_a_paused_limit_wakes_a_waiting_claim(
    database_url: DatabaseURL, keys: dict[str, str], workspace: Workspace
) -> None:
    settings = settings_for(
        database_url, claim_poll_interval_seconds=HOUR, reaper_interval_seconds=HOUR
    )
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=120,
        ) as http,
    ):
        await http.put("/limits/type:t", json={"paused": True})
        job = (await http.post("/jobs", json={"type": "t"})).json()
        detail = (await http.get(f"/jobs/{job['id']}")).json()
        assert [(w["name"], w["reason"]) for w in detail["waiting_for"]] == [("type:t", "paused")]
        claim = await waiting_claim(http, server, database_url, workspace)
        await http.put("/limits/type:t", json={"paused": False})
        assert claimed_ids(await asyncio.wait_for(claim, 30)) == [job["id"]]


@pytest.mark.parametrize("held", [False, True], ids=["alone", "beside-a-held-job"])
async def test_a_job_due_later_is_claimed_when_it_comes_due_without_polling(
    database_url: DatabaseURL, keys: dict[str, str], workspace: Workspace, held: bool
) -> None:
    """The claim learns when the next job comes due (a scheduled start, a retry's backoff)
    and looks again then: well before the hour its poll would take. Also when the
    workspace has due jobs a full limit holds back: the claim that found only those still
    looks again when the next job comes due."""
    settings = settings_for(
        database_url, claim_poll_interval_seconds=HOUR, reaper_interval_seconds=HOUR
    )
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=120,
        ) as http,
    ):
        if held:
            await http.put("/limits/gpu", json={"max_running": 1})
            for _ in range(2):
                await http.post("/jobs", json={"type": "t", "concurrency_key": "gpu"})
            running = await http.post("/claims", json={"worker_id": "a", "limit": 5})
            assert len(claimed_ids(running)) == 1, "the limit holds the second job back"
        claim = await waiting_claim(http, server, database_url, workspace)
        due = datetime.now(UTC) + timedelta(seconds=1)
        job = (await http.post("/jobs", json={"type": "t", "run_at": due.isoformat()})).json()
        [claimed] = (await asyncio.wait_for(claim, 30)).json()["data"]
        assert claimed["id"] == job["id"]
        assert datetime.fromisoformat(claimed["started_at"]) >= due, "not before it is due"
