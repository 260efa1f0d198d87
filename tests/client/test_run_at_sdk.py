"""A job for later through the SDK, sync and async, against a real server: `run_at` as an
aware datetime (or ISO 8601 text), and a concurrency key in a type limit's name refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from conveyor.client import AsyncClient, Client, ValidationError
from tests.support.server import RunningServer

LATER = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


def sync_session(server: RunningServer, keys: dict[str, str]) -> dict[str, Any]:
    with Client(server.url, keys["admin"]) as client:
        made = client.create_job("t", run_at=LATER)
        with pytest.raises(ValueError, match="no time zone"):
            client.create_job("t", run_at=LATER.replace(tzinfo=None))
        with pytest.raises(ValidationError) as refused:
            client.create_job("t", concurrency_key="type:t")
        return {"made": made, "refused": refused.value.fields}


async def test_the_blocking_client(server: RunningServer, keys: dict[str, str]) -> None:
    seen = await asyncio.to_thread(sync_session, server, keys)
    assert datetime.fromisoformat(seen["made"]["run_at"]) == LATER
    assert seen["made"]["status"] == "QUEUED"
    assert "concurrency_key" in seen["refused"]


async def test_the_async_client(server: RunningServer, keys: dict[str, str]) -> None:
    async with AsyncClient(server.url, keys["admin"]) as client:
        zoned = LATER.astimezone(timezone(timedelta(hours=2)))
        made = await client.create_job("t", run_at=zoned)
        assert datetime.fromisoformat(made["run_at"]) == LATER
        text = await client.create_job("t", run_at="2031-01-02T03:04:05Z")
        assert datetime.fromisoformat(text["run_at"]) == LATER
