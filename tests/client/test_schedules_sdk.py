"""The SDK's schedules calls, sync and async, against a running server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor.client import AsyncClient, Client, ConflictError, ScheduleRuns, ValidationError
from tests.support.server import RunningServer


def sync_calls(url: str, key: str) -> dict[str, object]:
    with Client(url, key) as client:
        created = client.create_schedule(
            "sync-report",
            "0 9 1 1 *",  # fires on no day the test runs: its runs are counted
            "report.build",
            {"kind": "quarterly"},
            timezone="Asia/Tokyo",
            overlap="skip",
            catch_up="latest",
            priority=2,
            timeout_seconds=60,
        )
        with pytest.raises(ConflictError):
            client.create_schedule("sync-report", "@daily", "report.build")
        with pytest.raises(ValidationError) as refused:
            client.create_schedule("broken", "every day", "report.build")
        assert "cron" in str(refused.value)
        paused = client.pause_schedule("sync-report")
        resumed = client.resume_schedule(created["id"])
        changed = client.update_schedule("sync-report", job={"payload": {"kind": "yearly"}})
        job = client.trigger_schedule("sync-report", idempotency_key="once")
        again = client.trigger_schedule("sync-report", idempotency_key="once")
        runs = client.schedule_runs("sync-report")
        listed = client.list_schedules()
        client.delete_schedule("sync-report")
        remaining = client.list_schedules()
    return {
        "created": created,
        "paused": paused,
        "resumed": resumed,
        "changed": changed,
        "job": job,
        "again": again,
        "runs": runs,
        "listed": listed,
        "remaining": remaining,
    }


async def test_the_sync_sdk_manages_schedules(server: RunningServer, keys: dict[str, str]) -> None:
    seen = await asyncio.to_thread(sync_calls, server.url, keys["client"])
    created = seen["created"]
    assert isinstance(created, dict)
    assert (created["timezone"], created["overlap"], created["catch_up"]) == (
        "Asia/Tokyo",
        "skip",
        "latest",
    )
    assert created["job"]["priority"] == 2
    assert created["job"]["timeout_seconds"] == 60
    assert seen["paused"]["paused"] is True  # type: ignore[index]
    assert seen["resumed"]["next_run_at"] is not None  # type: ignore[index]
    assert seen["changed"]["job"]["payload"] == {"kind": "yearly"}  # type: ignore[index]
    job, again = seen["job"], seen["again"]
    assert isinstance(job, dict)
    assert isinstance(again, dict)
    assert job["id"] == again["id"]
    assert job["payload"] == {"kind": "yearly"}
    assert [run["job_id"] for run in seen["runs"]] == [job["id"]]  # type: ignore[attr-defined]
    assert [s["name"] for s in seen["listed"]] == ["sync-report"]  # type: ignore[attr-defined]
    assert seen["remaining"] == []


async def test_the_async_sdk_manages_schedules(server: RunningServer, keys: dict[str, str]) -> None:
    async with AsyncClient(server.url, keys["admin"]) as client:
        created = await client.create_schedule("async-report", "@hourly", "report.build")
        assert created["upcoming"][0] == created["next_run_at"]
        assert (await client.get_schedule("async-report"))["id"] == created["id"]
        assert (await client.pause_schedule("async-report"))["next_run_at"] is None
        assert (await client.resume_schedule("async-report"))["paused"] is False
        changed = await client.update_schedule(created["id"], cron="@daily", timezone="UTC")
        assert changed["next_run_at"].endswith("T00:00:00+00:00")
        job = await client.trigger_schedule("async-report")
        assert job["type"] == "report.build"
        [run] = await client.schedule_runs("async-report")
        assert (run["outcome"], run["job_id"]) == ("triggered", job["id"])
        assert [s["name"] for s in await client.list_schedules()] == ["async-report"]
        with pytest.raises(ValidationError):
            await client.update_schedule("async-report", timezone="Nowhere/Town")
        await client.delete_schedule("async-report")
        assert await client.list_schedules() == []


NAMES = ["echo", "alpha", "delta", "bravo", "charlie"]


def sync_pages(url: str, key: str) -> tuple[list[str], list[str]]:
    with Client(url, key) as client:
        for name in NAMES:
            client.create_schedule(name, "@daily", "report.build", paused=True)
        iterated = [schedule["name"] for schedule in client.iter_schedules(limit=2)]
        listed = [schedule["name"] for schedule in client.list_schedules(limit=2)]
    return iterated, listed


async def test_the_sync_sdk_reads_every_schedule_page_by_page(
    server: RunningServer, keys: dict[str, str]
) -> None:
    iterated, listed = await asyncio.to_thread(sync_pages, server.url, keys["client"])
    assert iterated == listed == sorted(NAMES)


async def test_the_async_sdk_reads_every_schedule_page_by_page(
    server: RunningServer, keys: dict[str, str]
) -> None:
    async with AsyncClient(server.url, keys["client"]) as client:
        for name in NAMES:
            await client.create_schedule(name, "@daily", "report.build", paused=True)
        iterated = [schedule["name"] async for schedule in client.iter_schedules(limit=2)]
        listed = [schedule["name"] for schedule in await client.list_schedules(limit=2)]
        assert iterated == listed == sorted(NAMES)
        assert [s["name"] for s in await client.list_schedules()] == sorted(NAMES)


def sync_run_pages(url: str, key: str) -> dict[str, Any]:
    with Client(url, key) as client:
        client.create_schedule("runs", "@daily", "report.build", paused=True)
        made = [client.trigger_schedule("runs")["id"] for _ in range(7)]
        first = client.schedule_runs("runs", 3)
        client.trigger_schedule("runs")  # recorded between pages: shifts nothing
        second = client.schedule_runs("runs", 3, cursor=first.next_cursor)
        third = client.schedule_runs("runs", 3, cursor=second.next_cursor)
        everything = [run["job_id"] for run in client.iter_schedule_runs("runs", limit=3)]
        with pytest.raises(ValidationError) as refused:
            client.schedule_runs("runs", cursor="bm90LWEtY3Vyc29y")
    return {
        "made": made,
        "pages": [first, second, third],
        "everything": everything,
        "refused": refused.value,
    }


async def test_the_sync_sdk_pages_a_schedules_runs_by_cursor(
    server: RunningServer, keys: dict[str, str]
) -> None:
    seen = await asyncio.to_thread(sync_run_pages, server.url, keys["client"])
    newest_first = seen["made"][::-1]
    first, second, third = seen["pages"]
    assert isinstance(first, ScheduleRuns)
    assert [[run["job_id"] for run in page] for page in seen["pages"]] == [
        newest_first[:3],
        newest_first[3:6],
        newest_first[6:],
    ]
    assert first.next_cursor is not None
    assert second.next_cursor is not None
    assert third.next_cursor is None
    assert first.schedule_id == third.schedule_id
    assert len(seen["everything"]) == 8
    assert seen["everything"][1:] == newest_first
    assert seen["refused"].fields == ["cursor"]


async def test_the_async_sdk_pages_a_schedules_runs_by_cursor(
    server: RunningServer, keys: dict[str, str]
) -> None:
    async with AsyncClient(server.url, keys["client"]) as client:
        await client.create_schedule("runs", "@daily", "report.build", paused=True)
        made = [(await client.trigger_schedule("runs"))["id"] for _ in range(7)]
        newest_first = made[::-1]
        first = await client.schedule_runs("runs", 3)
        await client.trigger_schedule("runs")
        second = await client.schedule_runs("runs", 3, cursor=first.next_cursor)
        third = await client.schedule_runs("runs", 3, cursor=second.next_cursor)
        assert [[run["job_id"] for run in page] for page in (first, second, third)] == [
            newest_first[:3],
            newest_first[3:6],
            newest_first[6:],
        ]
        assert third.next_cursor is None
        everything = [run["job_id"] async for run in client.iter_schedule_runs("runs", limit=3)]
        assert everything[1:] == newest_first
        assert len(everything) == 8
        with pytest.raises(ValidationError) as refused:
            await client.schedule_runs("runs", cursor="bm90LWEtY3Vyc29y")
        assert refused.value.fields == ["cursor"]
