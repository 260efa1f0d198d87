"""A create's answer says whether the call made the job or its idempotency key had made it
before (the server's 201 or 200), through the SDK, sync and async, against a real server:
`create_job`, `create_jobs` and `trigger_schedule`."""

from __future__ import annotations

import asyncio

from conveyor.client import AsyncClient, Client, CreatedJob
from conveyor.client.http import job_body
from tests.support.server import RunningServer


def sync_session(url: str, key: str) -> list[CreatedJob]:
    with Client(url, key) as client:
        client.create_schedule("sync-made", "0 9 1 1 *", "report.build")
        return [
            client.create_job("t", idempotency_key="dup"),
            client.create_job("t", idempotency_key="dup"),
            client.create_job("t"),
            *client.create_jobs([job_body("t", idempotency_key="dup"), job_body("t")]),
            client.trigger_schedule("sync-made", idempotency_key="k1"),
            client.trigger_schedule("sync-made", idempotency_key="k1"),
        ]


async def test_the_blocking_client_says_which_jobs_it_made(
    server: RunningServer, keys: dict[str, str]
) -> None:
    first, again, other, batch_again, batch_new, trigger, trigger_again = await asyncio.to_thread(
        sync_session, server.url, keys["admin"]
    )
    assert [job.created for job in (first, again, other)] == [True, False, True]
    assert again["id"] == first["id"]
    assert again == first, "the job as the API answers it, a dict like any other answer"
    assert (batch_again.created, batch_again["id"]) == (False, first["id"])
    assert batch_new.created
    assert (trigger.created, trigger_again.created) == (True, False)
    assert trigger_again["id"] == trigger["id"]


async def test_the_async_client_says_which_jobs_it_made(
    server: RunningServer, keys: dict[str, str]
) -> None:
    async with AsyncClient(server.url, keys["admin"]) as client:
        first = await client.create_job("t", idempotency_key="dup")
        again = await client.create_job("t", idempotency_key="dup")
        assert (first.created, again.created, again["id"]) == (True, False, first["id"])
        batch = await client.create_jobs([job_body("t", idempotency_key="dup"), job_body("t")])
        assert [job.created for job in batch] == [False, True]
        await client.create_schedule("async-made", "0 9 1 1 *", "report.build")
        trigger = await client.trigger_schedule("async-made", idempotency_key="k1")
        trigger_again = await client.trigger_schedule("async-made", idempotency_key="k1")
        assert (trigger.created, trigger_again.created) == (True, False)
        assert trigger_again["id"] == trigger["id"]
