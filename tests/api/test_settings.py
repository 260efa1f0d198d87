"""A workspace's weight among its settings, over real HTTP on both databases: read with
them, changed with them, by an instance admin key only (403 for the workspace's own admin,
with nothing changed, even the retention sent with it), 422 out of bounds, and in effect at
the next claim."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from conveyor.domain.capacity import WEIGHT_MAX, WEIGHT_MIN
from tests.support.server import RunningServer

PROBLEM = "application/problem+json"


@pytest.fixture
async def instance_admin(
    server: RunningServer, keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for workspace `acme` with an instance admin key."""
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/acme",
        headers={"Authorization": f"Bearer {keys['instance_admin']}"},
        timeout=30,
    ) as http:
        yield http


async def settings_of(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/settings")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_the_settings_answer_the_weight_as_the_workspaces_own(
    client: httpx.AsyncClient, instance_admin: httpx.AsyncClient
) -> None:
    answer = await settings_of(client)
    assert answer["weight"] == 1, "every workspace starts at weight 1"
    assert answer["source"]["weight"] == "workspace", "never inherited"
    assert "weight" not in answer["instance_defaults"]

    changed = await instance_admin.patch("/settings", json={"weight": 7})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["weight"], changed.json()["source"]["weight"]) == (7, "workspace")
    assert await settings_of(client) == changed.json(), "the workspace's admin reads it"


async def test_weight_and_retention_change_together_or_each_alone(
    client: httpx.AsyncClient, instance_admin: httpx.AsyncClient
) -> None:
    both = await instance_admin.patch(
        "/settings", json={"weight": 3, "retention": {"failed_days": 60}}
    )
    assert both.status_code == 200, both.text
    assert (both.json()["weight"], both.json()["retention"]["failed_days"]) == (3, 60)

    retention_only = await client.patch("/settings", json={"retention": {"completed_days": 2}})
    assert retention_only.status_code == 200, "a workspace admin still changes retention"
    assert retention_only.json()["weight"] == 3, "a change that does not name it keeps it"
    unchanged = await client.patch("/settings", json={"weight": None})
    assert unchanged.status_code == 200, "null leaves it as it is, as in any partial change"
    assert unchanged.json() == retention_only.json()

    weight_only = await instance_admin.patch("/settings", json={"weight": WEIGHT_MAX})
    body = weight_only.json()
    assert body["weight"] == WEIGHT_MAX
    assert body["retention"] == {"completed_days": 2, "failed_days": 60, "cancelled_days": 14}
    bottom = await instance_admin.patch("/settings", json={"weight": WEIGHT_MIN})
    assert bottom.json()["weight"] == WEIGHT_MIN


@pytest.mark.parametrize(
    "body",
    [{"weight": 5}, {"weight": 5, "retention": {"failed_days": 60}}],
    ids=["weight", "weight-and-retention"],
)
async def test_a_workspace_admin_may_not_change_the_weight_and_nothing_changes(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    before = await settings_of(client)
    refused = await client.patch("/settings", json=body)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["permission"] == "set_weight"
    assert "weight" in problem["detail"]
    assert "instance admin" in problem["detail"]
    assert await settings_of(client) == before, "not the weight, not the retention with it"


async def test_other_keys_may_not_change_it_either(
    server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    before = await settings_of(client)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for key, where, status in (
            ("client", "acme", 403),
            ("worker", "acme", 403),
            ("instance_worker", "acme", 403),
            ("other", "other", 403),  # an admin of another workspace, in its own
            ("other", "acme", 404),  # … and in this one
        ):
            refused = await http.patch(
                f"/v1/workspaces/{where}/settings",
                json={"weight": 9},
                headers={"Authorization": f"Bearer {keys[key]}"},
            )
            assert refused.status_code == status, (key, where, refused.text)
    assert await settings_of(client) == before


@pytest.mark.parametrize("weight", [0, WEIGHT_MAX + 1, -1, 2.5, "3", True, [2]])
async def test_a_weight_out_of_bounds_is_422_naming_it_and_changes_nothing(
    client: httpx.AsyncClient, instance_admin: httpx.AsyncClient, weight: object
) -> None:
    before = await settings_of(client)
    refused = await instance_admin.patch(
        "/settings", json={"weight": weight, "retention": {"failed_days": 60}}
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert [error["field"] for error in refused.json()["errors"]] == ["weight"]
    assert await settings_of(client) == before
    # The control: the same request within the bounds goes through.
    for bound in (WEIGHT_MIN, WEIGHT_MAX):
        accepted = await instance_admin.patch("/settings", json={"weight": bound})
        assert accepted.status_code == 200, accepted.text


async def test_the_weight_set_over_http_is_the_one_claims_share_by(
    server: RunningServer,
    keys: dict[str, str],
    client: httpx.AsyncClient,
    instance_admin: httpx.AsyncClient,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for workspace, key in (("acme", "admin"), ("other", "other")):
            created = await http.post(
                f"/v1/workspaces/{workspace}/jobs/batch",
                json={"jobs": [{"type": "t"}] * 100},
                headers={"Authorization": f"Bearer {keys[key]}"},
            )
            assert created.status_code == 201, created.text
        assert (await instance_admin.patch("/settings", json={"weight": 3})).status_code == 200
        claimed = await http.post(
            "/v1/claims",
            json={"worker_id": "w", "limit": 40},
            headers={"Authorization": f"Bearer {keys['instance_worker']}"},
        )
        assert claimed.status_code == 200, claimed.text
    taken = Counter(job["workspace"] for job in claimed.json()["data"])
    assert (taken["acme"], taken["other"]) == (30, 10)


async def test_the_schema_documents_the_weight_and_its_bounds(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]
    for model in ("SettingsIn", "SettingsOut"):
        weight = schemas[model]["properties"]["weight"]
        [number] = [kind for kind in weight.get("anyOf", [weight]) if kind["type"] == "integer"]
        assert (number["minimum"], number["maximum"]) == (WEIGHT_MIN, WEIGHT_MAX), model
    assert "weight" in schemas["SettingsOut"]["required"]
    assert schemas["SourceOut"]["properties"]["weight"]["const"] == "workspace"
