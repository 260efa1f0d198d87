"""The overview: counts by status and type, throughput, workers seen, queue age."""

from __future__ import annotations

from datetime import datetime

import httpx

from conveyor.store import Store
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


async def test_stats_name_queued_types_no_live_worker_serves(
    server: RunningServer,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    store: Store,
) -> None:
    """Jobs of a type nobody handles (a `command` job where no worker allows them) sit
    QUEUED in silence no more: the overview names them, and a worker gone quiet past its
    lease stops counting."""
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    for worker_id, types in (("mailer", ["email"]), ("reporter", ["pdf"])):
        claim = {"worker_id": worker_id, "limit": 1, "types": types, "lease_seconds": 5}
        assert (await client.post("/claims", json=claim, headers=worker)).json()["data"] == []
    jobs = [{"type": "email"}, {"type": "pdf"}, *[{"type": "command"}] * 3]
    assert (await client.post("/jobs/batch", json={"jobs": jobs})).status_code == 201
    server.runtime.stats._overviews.clear()

    stats = (await client.get("/stats")).json()
    assert stats["unserved_types"] == [{"type": "command", "queued": 3}]
    workers = {w["worker_id"]: (w["state"], w["types"]) for w in stats["workers"]}
    assert workers == {"mailer": ("active", ["email"]), "reporter": ("active", ["pdf"])}

    async with store.database.write() as connection:  # twenty minutes of silence
        await connection.execute(
            "UPDATE workers SET last_seen_at = conveyor_after(-1200) WHERE worker_id = :w",
            {"w": "reporter"},
        )
    server.runtime.stats._overviews.clear()
    stats = (await client.get("/stats")).json()
    assert stats["unserved_types"] == [
        {"type": "command", "queued": 3},
        {"type": "pdf", "queued": 1},
    ]
    assert {w["worker_id"]: w["state"] for w in stats["workers"]} == {
        "mailer": "active",
        "reporter": "stopped",
    }

    anything = {"worker_id": "generalist", "limit": 1, "lease_seconds": 5}
    await client.post("/claims", json=anything, headers=worker)  # no types: serves any type
    server.runtime.stats._overviews.clear()
    assert (await client.get("/stats")).json()["unserved_types"] == []


async def test_the_queue_waits_from_when_a_job_became_claimable_and_only_due_jobs_warn(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    """A job made now with a run_at long past has waited seconds, not years; a job whose
    run_at is still ahead waits for its time, not for a worker, so it is neither the oldest
    queued job nor a type no worker serves."""
    made = await client.post("/jobs", json={"type": "later", "run_at": "2031-01-01T00:00:00Z"})
    assert made.status_code == 201
    server.runtime.stats._overviews.clear()
    stats = (await client.get("/stats")).json()
    assert stats["by_status"]["QUEUED"] == 1
    assert (stats["oldest_queued_at"], stats["oldest_queued_age_seconds"]) == (None, None)
    assert stats["unserved_types"] == []

    made = await client.post("/jobs", json={"type": "past", "run_at": "2020-01-01T00:00:00Z"})
    queued_at = datetime.fromisoformat(made.json()["updated_at"])  # it entered the queue
    server.runtime.stats._overviews.clear()
    stats = (await client.get("/stats")).json()
    assert datetime.fromisoformat(stats["oldest_queued_at"]) == queued_at
    assert 0 <= stats["oldest_queued_age_seconds"] < 60
    assert stats["unserved_types"] == [{"type": "past", "queued": 1}]


async def test_a_job_released_from_hold_has_waited_since_its_release(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    """Held jobs wait for someone to release them, not for a worker: the queue's wait
    starts when the job enters it (its `updated_at`, stamped by every move into QUEUED)."""
    made = (await client.post("/jobs", json={"type": "held", "hold": True})).json()
    released = await client.patch(f"/jobs/{made['id']}/status", json={"status": "QUEUED"})
    assert released.status_code == 200, released.text
    job = (await client.get(f"/jobs/{made['id']}")).json()
    assert job["updated_at"] > job["created_at"]
    server.runtime.stats._overviews.clear()
    stats = (await client.get("/stats")).json()
    queued_at = datetime.fromisoformat(job["updated_at"])
    assert datetime.fromisoformat(stats["oldest_queued_at"]) == queued_at
