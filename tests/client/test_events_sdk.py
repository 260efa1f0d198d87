"""A job's events through the SDK, sync and async, against a real server: `list_events`
answers a page, `iter_events` every event, page after page, each once and in order."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import httpx
import pytest

from conveyor.client import AsyncClient, Client
from tests.support.server import RunningServer


def claimed_with_eight_events(server: RunningServer, keys: dict[str, str]) -> str:
    """A job claimed over HTTP whose worker appended five events of its own: eight."""
    with Client(server.url, keys["admin"]) as client:
        job_id = str(client.create_job("t")["id"])
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    base = f"{server.url}/v1/workspaces/acme"
    with httpx.Client(headers=worker) as http:
        claimed = http.post(f"{base}/claims", json={"limit": 1, "worker_id": "w"})
        [job] = claimed.raise_for_status().json()["data"]
        assert job["id"] == job_id
        for n in range(5):
            event = {"type": "ai.tool_called", "payload": {"n": n}, "lease_id": job["lease_id"]}
            http.post(f"{base}/jobs/{job_id}/events", json=event).raise_for_status()
    return job_id


def sync_session(server: RunningServer, keys: dict[str, str]) -> dict[str, Any]:
    job_id = claimed_with_eight_events(server, keys)
    with Client(server.url, keys["admin"]) as client:
        return {
            "job_id": job_id,
            "all": client.list_events(job_id),
            "page": client.list_events(job_id, 1, limit=2),
            "paged": list(client.iter_events(job_id, limit=2)),
            "after": list(client.iter_events(job_id, 3, limit=3)),
        }


def test_a_page_larger_than_the_server_answers_is_refused_before_asking() -> None:
    """A page of more than 1,000 would come back short and read as the last."""
    with Client("http://127.0.0.1:9", "key", workspace="acme") as client:
        with pytest.raises(ValueError, match="limit"):
            client.list_events(uuid4(), limit=1001)
        with pytest.raises(ValueError, match="limit"):
            client.iter_events(uuid4(), limit=0)  # at the call, before any iteration


async def test_the_async_client_refuses_a_page_size_at_the_call() -> None:
    async with AsyncClient("http://127.0.0.1:9", "key", workspace="acme") as client:
        with pytest.raises(ValueError, match="limit"):
            client.iter_events(uuid4(), limit=1001)


async def test_the_blocking_client_reads_every_event_page_by_page(
    server: RunningServer, keys: dict[str, str]
) -> None:
    seen = await asyncio.to_thread(sync_session, server, keys)
    every = seen["all"]
    seqs = [event["seq"] for event in every]
    assert len(every) == 8
    assert seqs == sorted(set(seqs)), seqs
    assert seen["page"] == every[1:3]
    assert seen["paged"] == every, "pages of two, each after the last"
    assert seen["after"] == [event for event in every if event["seq"] > 3]


async def test_the_async_client_reads_every_event_page_by_page(
    server: RunningServer, keys: dict[str, str]
) -> None:
    job_id = await asyncio.to_thread(claimed_with_eight_events, server, keys)
    async with AsyncClient(server.url, keys["admin"]) as client:
        every = await client.list_events(job_id)
        paged = [event async for event in client.iter_events(job_id, limit=2)]
        exact = [event async for event in client.iter_events(job_id, limit=len(every))]
    assert len(every) == 8
    assert paged == every
    assert exact == every, "a full last page is followed by an empty one"
