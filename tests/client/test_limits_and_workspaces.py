"""The SDK's limits and workspaces, sync and async, against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor.client import AsyncClient, Client, ConflictError, NotFoundError, WorkspaceRequired
from conveyor.client.errors import ForbiddenError
from tests.support.server import RunningServer

# Names a limit may have that a URL must carry with care (dots alone: URL normalisation
# would drop them).
AWKWARD_NAMES = ("type:email.send", "customer/42", "a b?c#d%e", "ü-kunde", ".", "..", "...")


def sync_round(url: str, keys: dict[str, str]) -> dict[str, Any]:
    """Everything the blocking client does with limits; what it saw, to check."""
    seen: dict[str, Any] = {}
    with Client(url, keys["admin"]) as client:
        seen["created"] = client.put_limit("openai", max_running=2, rate=(10, 60))
        seen["got"] = client.get_limit("openai")
        seen["changed"] = client.put_limit(
            "openai", rate={"count": 5, "per_seconds": 1.5}, paused=True, expected_version=1
        )
        with pytest.raises(ConflictError) as stale:  # read at 1; changed since
            client.put_limit("openai", max_running=9, expected_version=1)
        seen["stale"] = stale.value.current_version
        for name in AWKWARD_NAMES:
            client.put_limit(name, max_running=1)
            seen[name] = client.get_limit(name)["name"]
        seen["listed"] = [limit["name"] for limit in client.list_limits()]
        for name in AWKWARD_NAMES:
            client.delete_limit(name)
        client.delete_limit("openai")
        with pytest.raises(NotFoundError):
            client.get_limit("openai")
        with pytest.raises(NotFoundError):
            client.delete_limit("openai")
        seen["workspaces"] = client.workspaces()
    with Client(url, keys["client"]) as client, pytest.raises(ForbiddenError):
        client.put_limit("openai", max_running=1)
    with Client(url, keys["instance_admin"]) as client:
        with pytest.raises(WorkspaceRequired):
            client.list_limits()
        seen["instance_workspaces"] = client.workspaces()
    with Client(url, keys["instance_admin"], workspace="other") as client:
        seen["in_other"] = client.put_limit("gpu", max_running=3)
    return seen


async def test_the_blocking_client_manages_limits(
    server: RunningServer, keys: dict[str, str]
) -> None:
    seen = await asyncio.to_thread(sync_round, server.url, keys)
    created = seen["created"]
    assert (created["name"], created["max_running"], created["paused"]) == ("openai", 2, False)
    assert created["rate"] == {"count": 10, "per_seconds": 60.0}
    assert (created["running"], created["queued"], created["waiting_because"]) == (0, 0, None)
    assert seen["got"]["rate"] == created["rate"]
    changed = seen["changed"]
    assert (created["version"], changed["version"], seen["stale"]) == (1, 2, 2)
    assert changed["max_running"] is None, "a put is the whole limit: left out is no cap"
    assert changed["rate"] == {"count": 5, "per_seconds": 1.5}
    assert (changed["paused"], changed["waiting_because"]) == (True, "paused")
    for name in AWKWARD_NAMES:
        assert seen[name] == name
    assert sorted(seen["listed"]) == sorted([*AWKWARD_NAMES, "openai"])
    assert [w["slug"] for w in seen["workspaces"]] == ["acme"], "a workspace key: its own"
    assert sorted(w["slug"] for w in seen["instance_workspaces"]) == ["acme", "other"]
    assert seen["in_other"]["max_running"] == 3


async def test_the_async_client_manages_limits(server: RunningServer, keys: dict[str, str]) -> None:
    async with AsyncClient(server.url, keys["admin"]) as client:
        created = await client.put_limit("openai", max_running=2, rate=(10, 60))
        assert created["rate"] == {"count": 10, "per_seconds": 60.0}
        assert (await client.get_limit("openai"))["max_running"] == 2
        paused = await client.put_limit("openai", max_running=0, paused=True, expected_version=1)
        assert (paused["max_running"], paused["rate"], paused["paused"]) == (0, None, True)
        with pytest.raises(ConflictError) as stale:  # read at 1; changed since
            await client.put_limit("openai", max_running=9, expected_version=1)
        assert stale.value.current_version == 2
        await client.delete_limit("openai")
        with pytest.raises(NotFoundError):  # deleted since it was read
            await client.put_limit("openai", max_running=9, expected_version=2)
        await client.put_limit("openai", max_running=0, paused=True)
        for name in AWKWARD_NAMES:
            made = await client.put_limit(name, rate={"count": 1, "per_seconds": 60})
            assert made["name"] == name
            assert (await client.get_limit(name))["rate"] == {"count": 1, "per_seconds": 60.0}
        listed = [limit["name"] for limit in await client.list_limits()]
        assert sorted(listed) == sorted([*AWKWARD_NAMES, "openai"])
        for name in AWKWARD_NAMES:
            await client.delete_limit(name)
        assert [limit["name"] for limit in await client.list_limits()] == ["openai"]
        await client.delete_limit("openai")
        with pytest.raises(NotFoundError):
            await client.get_limit("openai")
        assert [w["slug"] for w in await client.workspaces()] == ["acme"]
    async with AsyncClient(server.url, keys["instance_admin"]) as client:
        with pytest.raises(WorkspaceRequired):
            await client.list_limits()
        assert sorted(w["slug"] for w in await client.workspaces()) == ["acme", "other"]
    async with AsyncClient(server.url, keys["instance_admin"], workspace="other") as client:
        assert (await client.put_limit("gpu", max_running=3))["max_running"] == 3
        assert [limit["name"] for limit in await client.list_limits()] == ["gpu"]
    async with AsyncClient(server.url, keys["instance_worker"]) as client:
        with pytest.raises(ForbiddenError):
            await client.workspaces()
