"""A server killed with SIGKILL in the middle of writes: every batch it acknowledged is in
the database whole, no batch is there in part, and every job has its creation events."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from pathlib import Path
from uuid import UUID

import httpx

from conveyor.domain.job_lists import JobFilter
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.store.urls import DatabaseURL
from tests.support.processes import serve_process, server_process

BATCH = 50
PRODUCERS = 4


async def produce(
    url: str, key: str, number: int, acknowledged: dict[str, set[str]], flowing: asyncio.Event
) -> str:
    """Create batches until the server goes away; record the ids of each batch answered.
    Returns the tag of the batch that was in flight when the connection broke."""
    sent = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=f"{url}/v1/workspaces/acme", headers=headers, timeout=10
    ) as http:
        while True:
            tag = f"p{number}-b{sent}"
            jobs = [{"type": "crash.test", "payload": {"tag": tag, "i": i}} for i in range(BATCH)]
            try:
                response = await http.post("/jobs/batch", json={"jobs": jobs})
            except httpx.TransportError:
                return tag
            sent += 1
            assert response.status_code == 201, response.text
            acknowledged[tag] = {job["id"] for job in response.json()["data"]}
            if len(acknowledged) >= 20:
                flowing.set()


async def test_a_killed_server_loses_no_acknowledged_job_and_leaves_no_half_batch(
    database_url: DatabaseURL,
    keys: dict[str, str],
    service: JobService,
    workspace: Workspace,
    tmp_path: Path,
) -> None:
    acknowledged: dict[str, set[str]] = {}
    flowing = asyncio.Event()
    with server_process(database_url.url, tmp_path / "killed.log") as (url, process):
        producers = [
            asyncio.create_task(produce(url, keys["client"], n, acknowledged, flowing))
            for n in range(PRODUCERS)
        ]
        await asyncio.wait_for(flowing.wait(), 30)  # writes in full flow
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        # Each producer was cut off mid-request: those batches may or may not have committed.
        in_flight = await asyncio.wait_for(asyncio.gather(*producers), 30)

    # A new server on the same database starts cleanly (SQLite recovers its WAL).
    with serve_process(database_url.url, tmp_path / "restarted.log") as url:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/readyz")).status_code == 200

    stored: dict[str, set[str]] = defaultdict(set)
    page = 1
    while True:
        found = await service.list_jobs(
            workspace.id, JobFilter(type="crash.test"), page=page, limit=200
        )
        for job in found.jobs:
            assert isinstance(job.payload, dict)
            stored[str(job.payload["tag"])].add(str(job.id))
        if page >= found.total_pages:
            break
        page += 1

    for tag, ids in acknowledged.items():
        assert stored.get(tag) == ids, f"batch {tag} was acknowledged but is not all there"
    for tag, ids in stored.items():
        when = " (in flight when the server died)" if tag in in_flight else ""
        assert len(ids) == BATCH, f"batch {tag}{when} is in the database in part: {len(ids)} jobs"
    for ids in stored.values():
        for job_id in ids:
            events = await service.list_events(workspace.id, UUID(job_id))
            assert [(e.seq, e.type) for e in events] == [
                (1, "job.created"),
                (2, "job.queued"),
            ], f"job {job_id} lacks its creation events"
