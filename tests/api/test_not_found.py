"""A 404 says what it did not find: `resource` (a code), beside the `detail` for people,
so a client tells a limit deleted meanwhile from a workspace that never existed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conveyor.client import Client, NotFoundError
from conveyor.domain.errors import Resource
from tests.support.server import RunningServer

MISSING = "0190c0de-0000-7000-8000-000000000000"
"""An id nothing has (fixed: parallel workers must collect the same test ids)."""


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        (f"/jobs/{MISSING}", "job"),
        ("/limits/openai", "limit"),
        (f"/schedules/{MISSING}", "schedule"),
    ],
)
async def test_a_404_names_the_resource(
    client: httpx.AsyncClient, path: str, resource: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 404, answer.text
    problem = answer.json()
    assert (problem["type"], problem["resource"]) == ("/problems/not-found", resource)


async def test_a_workspace_that_does_not_exist_is_named_as_one(
    server: RunningServer, keys: dict[str, str]
) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {keys['instance_admin']}"}
    ) as http:
        answer = await http.get("/v1/workspaces/nowhere/limits/openai")
    assert answer.status_code == 404, answer.text
    assert answer.json()["resource"] == "workspace"


async def test_the_client_reads_the_resource(server: RunningServer, keys: dict[str, str]) -> None:
    def read(workspace: str) -> NotFoundError:
        with (
            Client(server.url, keys["instance_admin"], workspace=workspace) as client,
            pytest.raises(NotFoundError) as raised,
        ):
            client.get_limit("openai")
        return raised.value

    assert (await asyncio.to_thread(read, "acme")).resource is Resource.LIMIT
    assert (await asyncio.to_thread(read, "nowhere")).resource is Resource.WORKSPACE
