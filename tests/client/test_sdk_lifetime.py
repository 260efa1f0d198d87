"""The SDK's list filters and cursors, bulk actions and workspace settings, sync and async,
against a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.client import AsyncClient, Client, ForbiddenError, ValidationError
from tests.support.server import RunningServer


def sync_session(server: RunningServer, key: str) -> dict[str, Any]:
    """Everything the blocking client does here, in one thread."""
    seen: dict[str, Any] = {}
    with Client(server.url, key) as client:
        for index in range(5):
            client.create_job("mail.send", {"i": index}, concurrency_key=f"k{index % 2}")
        client.create_job("sms.send")
        seen["by_key"] = client.list_jobs(concurrency_key="k0")["meta"]["total"]
        seen["by_prefix"] = client.list_jobs(type_prefix="mail")["meta"]["total"]
        seen["later"] = client.list_jobs(created_after=datetime.now(UTC) + timedelta(days=1))
        seen["every"] = [job["id"] for job in client.iter_jobs(limit=2)]
        seen["pages"] = [job["id"] for job in client.list_jobs(limit=200)["data"]]
        seen["dry"] = client.bulk_cancel(type_prefix="mail", dry_run=True)
        seen["cancelled"] = client.bulk_cancel(type_prefix="mail", reason="stop")
        seen["retried"] = client.bulk_retry(status="CANCELLED")
        seen["settings"] = client.update_settings(retention={"completed_days": 1})
        seen["read"] = client.get_settings()
        with pytest.raises(ValidationError):
            client.bulk_cancel()
    return seen


async def test_the_blocking_client(server: RunningServer, keys: dict[str, str]) -> None:
    seen = await asyncio.to_thread(sync_session, server, keys["admin"])
    assert (seen["by_key"], seen["by_prefix"]) == (3, 5)
    assert seen["later"]["data"] == []
    assert seen["every"] == seen["pages"], "iter_jobs walks every page by cursor, in order"
    assert (seen["dry"]["remaining"], seen["dry"]["changed"]) == (5, 0)
    assert (seen["cancelled"]["matched"], seen["cancelled"]["changed"]) == (5, 5)
    assert seen["cancelled"]["requests"] == 1
    assert (seen["retried"]["matched"], seen["retried"]["changed"]) == (5, 5)
    assert seen["settings"]["retention"]["completed_days"] == 1
    assert seen["read"] == seen["settings"]


async def test_the_async_client(server: RunningServer, keys: dict[str, str]) -> None:
    async with AsyncClient(server.url, keys["admin"]) as client:
        for index in range(4):
            await client.create_job("t", {"i": index}, concurrency_key="same")
        listed = await client.list_jobs(concurrency_key="same", limit=3)
        assert listed["meta"]["total"] == 4
        rest = await client.list_jobs(concurrency_key="same", cursor=listed["meta"]["next_cursor"])
        assert len(listed["data"]) + len(rest["data"]) == 4
        assert [job async for job in client.iter_jobs(limit=3)] == listed["data"] + rest["data"]
        cancelled = await client.bulk_cancel(everything=True)
        assert (cancelled["matched"], cancelled["changed"]) == (4, 4)
        retried = await client.bulk_retry(job_type="t", until_done=False)
        assert retried["changed"] == 4
        changed = await client.update_settings(retention={"failed_days": None})
        assert changed["retention"]["failed_days"] is None
        assert changed["source"]["retention"]["failed_days"] == "workspace"
        assert (await client.get_settings()) == changed
    async with AsyncClient(server.url, keys["client"]) as client:
        with pytest.raises(ForbiddenError):
            await client.get_settings()
