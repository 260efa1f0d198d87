"""The overview: counts by status and type, throughput, workers seen, queue age."""

from __future__ import annotations

import httpx

from tests.support.server import RunningServer


async def test_stats_show_queue_throughput_and_workers(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    await client.post("/jobs/batch", json={"jobs": [{"type": "email"}] * 3 + [{"type": "pdf"}]})
    claimed = (
        await client.post(
            "/claims", json={"worker_id": "box-1", "limit": 2, "types": ["email"]}, headers=worker
        )
    ).json()["data"]
    first, second = claimed
    await client.post(
        f"/jobs/{first['id']}/complete", json={"lease_id": first["lease_id"]}, headers=worker
    )
    await client.post(
        f"/jobs/{second['id']}/fail",
        json={"lease_id": second["lease_id"], "error": "x"},
        headers=worker,
    )
    server.runtime.stats._overviews.clear()  # the overview is cached for a moment

    stats = (await client.get("/stats")).json()
    assert stats["by_status"] == {
        "PENDING": 0,
        "QUEUED": 2,
        "RUNNING": 0,
        "COMPLETED": 1,
        "FAILED": 1,
        "CANCELLED": 0,
    }
    assert {"type": "pdf", "status": "QUEUED", "count": 1} in stats["counts"]
    [minute] = stats["throughput"]
    assert (minute["completed"], minute["failed"]) == (1, 1)
    assert [w["worker_id"] for w in stats["workers"]] == ["box-1"]
    assert stats["oldest_queued_age_seconds"] >= 0
    client_key = {"Authorization": f"Bearer {keys['client']}"}
    assert (await client.get("/stats", headers=client_key)).status_code == 200
