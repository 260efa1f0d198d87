"""Fixtures of the API tests."""

from __future__ import annotations

import httpx
import pytest

from conveyor.store import Store


@pytest.fixture
async def targets(client: httpx.AsyncClient, keys: dict[str, str], store: Store) -> dict[str, str]:
    """In workspace `acme`: a running job with its lease and a step, a held (PENDING) job
    with a step reported without a lease, a cancelled job (to retry), a spare key, and the
    token of a revoked key."""
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    job = (await client.post("/jobs", json={"type": "t"})).json()
    [claimed] = (
        await client.post("/claims", json={"worker_id": "w", "lease_seconds": 3600}, headers=worker)
    ).json()["data"]
    step = await client.post(
        f"/jobs/{job['id']}/steps",
        json={"name": "s", "lease_id": claimed["lease_id"]},
        headers=worker,
    )
    # held: no claim takes it, so it stays a job reported on without a lease
    pending = (await client.post("/jobs", json={"type": "t", "hold": True})).json()
    pending_step = await client.post(
        f"/jobs/{pending['id']}/steps", json={"name": "s"}, headers=worker
    )
    failed = (await client.post("/jobs", json={"type": "other"})).json()
    await client.post(f"/jobs/{failed['id']}/cancel")
    spare = (await client.post("/keys", json={"role": "client", "name": "spare"})).json()
    revoked = (await client.post("/keys", json={"role": "admin"})).json()
    await client.delete(f"/keys/{revoked['id']}")
    await client.put("/limits/openai", json={"max_running": 8})
    schedule = await client.post(
        # paused: a tick during the matrix (every 5 minutes) would change the database
        "/schedules",
        json={"name": "matrix", "cron": "*/5 * * * *", "paused": True, "job": {"type": "t"}},
    )
    return {
        "schedule": schedule.json()["id"],
        "job": job["id"],
        "lease": claimed["lease_id"],
        "step": step.json()["id"],
        "pending": pending["id"],
        "pending_step": pending_step.json()["id"],
        "failed": failed["id"],
        "key": spare["id"],
        "revoked_token": revoked["token"],
    }
