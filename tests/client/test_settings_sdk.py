"""A workspace's weight through the SDK, sync and async, against a real server: read with
the settings, changed by an instance admin key (alone or with retention), refused to the
workspace's own admin (ForbiddenError naming the permission) and out of bounds
(ValidationError on `weight`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor.client import AsyncClient, Client, ForbiddenError, ValidationError
from conveyor.domain.workspaces import Permission
from tests.support.server import RunningServer


def sync_session(server: RunningServer, keys: dict[str, str]) -> dict[str, Any]:
    """Everything the blocking client does here, in one thread."""
    seen: dict[str, Any] = {}
    with Client(server.url, keys["instance_admin"], workspace="acme") as instance_admin:
        seen["first"] = instance_admin.get_settings()
        seen["weight"] = instance_admin.update_settings(weight=4)
        seen["both"] = instance_admin.update_settings(weight=2, retention={"failed_days": 5})
        with pytest.raises(ValidationError) as refused:
            instance_admin.update_settings(weight=0)
        seen["out_of_bounds"] = refused.value.fields
    with Client(server.url, keys["admin"]) as admin:
        with pytest.raises(ForbiddenError) as forbidden:
            admin.update_settings(weight=9, retention={"failed_days": 1})
        seen["forbidden"] = forbidden.value.permission
        seen["retention_only"] = admin.update_settings(retention={"completed_days": 1})
        seen["read"] = admin.get_settings()
    return seen


async def test_the_blocking_client(server: RunningServer, keys: dict[str, str]) -> None:
    seen = await asyncio.to_thread(sync_session, server, keys)
    assert (seen["first"]["weight"], seen["first"]["source"]["weight"]) == (1, "workspace")
    assert seen["weight"]["weight"] == 4
    assert (seen["both"]["weight"], seen["both"]["retention"]["failed_days"]) == (2, 5)
    assert seen["out_of_bounds"] == ["weight"]
    assert seen["forbidden"] == Permission.SET_WEIGHT
    assert seen["retention_only"]["weight"] == 2, "a change that does not name it keeps it"
    assert seen["retention_only"]["retention"]["failed_days"] == 5, "the refused change: none"
    assert seen["read"] == seen["retention_only"]


async def test_the_async_client(server: RunningServer, keys: dict[str, str]) -> None:
    async with AsyncClient(server.url, keys["instance_admin"], workspace="acme") as client:
        assert (await client.get_settings())["weight"] == 1
        changed = await client.update_settings(weight=6)
        assert changed["weight"] == 6
        both = await client.update_settings(weight=3, retention={"cancelled_days": None})
        assert (both["weight"], both["retention"]["cancelled_days"]) == (3, None)
        with pytest.raises(ValidationError) as refused:
            await client.update_settings(weight=1001, retention={"cancelled_days": 2})
        assert refused.value.fields == ["weight"]
        assert (await client.get_settings()) == both
    async with AsyncClient(server.url, keys["admin"]) as client:
        with pytest.raises(ForbiddenError) as forbidden:
            await client.update_settings(weight=9)
        assert forbidden.value.permission == Permission.SET_WEIGHT
        assert (await client.get_settings())["weight"] == 3
