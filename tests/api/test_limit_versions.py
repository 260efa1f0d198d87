"""A limit's version: each PUT counts one, and a PUT naming `expected_version` changes the
limit only if it is still at that version, so two operators never undo each other's
change (one pausing a limit while another raises its cap from what they read before)."""

from __future__ import annotations

import asyncio

import httpx

PROBLEM = "application/problem+json"


async def test_each_put_counts_a_version_and_counts_do_not(client: httpx.AsyncClient) -> None:
    made = await client.put("/limits/openai", json={"max_running": 2})
    assert made.status_code == 200, made.text
    assert made.json()["version"] == 1
    await client.post("/jobs", json={"type": "t", "concurrency_key": "openai"})
    assert (await client.get("/limits/openai")).json()["version"] == 1, "a job is no change"
    changed = await client.put("/limits/openai", json={"max_running": 3, "expected_version": 1})
    assert (changed.status_code, changed.json()["version"]) == (200, 2)
    [listed] = (await client.get("/limits")).json()["data"]
    assert (listed["version"], listed["max_running"]) == (2, 3)


async def test_a_put_at_a_stale_version_is_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    read = (await client.put("/limits/openai", json={"max_running": 8})).json()
    paused = await client.put(
        "/limits/openai",
        json={"max_running": 8, "paused": True, "expected_version": read["version"]},
    )
    assert paused.status_code == 200, paused.text
    stale = await client.put(
        "/limits/openai", json={"max_running": 10, "expected_version": read["version"]}
    )
    assert stale.status_code == 409, stale.text
    assert stale.headers["content-type"] == PROBLEM
    problem = stale.json()
    assert problem["type"] == "/problems/concurrent-update"
    assert (problem["limit"], problem["current_version"]) == ("openai", 2)
    now = (await client.get("/limits/openai")).json()
    assert (now["max_running"], now["paused"], now["version"]) == (8, True, 2), "not undone"


async def test_a_put_at_a_version_of_a_limit_deleted_since_is_404_or_409_if_made_again(
    client: httpx.AsyncClient,
) -> None:
    read = (await client.put("/limits/openai", json={"max_running": 8})).json()
    assert (await client.delete("/limits/openai")).status_code == 204
    late = await client.put(
        "/limits/openai", json={"max_running": 9, "expected_version": read["version"]}
    )
    assert late.status_code == 404, late.text
    assert (await client.get("/limits")).json()["data"] == []
    again = await client.put("/limits/openai", json={"max_running": 9})
    assert again.status_code == 200, again.text
    assert again.json()["version"] > read["version"], "made again: a version never given"
    stale = await client.put(
        "/limits/openai", json={"max_running": 1, "expected_version": read["version"]}
    )
    assert stale.status_code == 409, "read before the delete: refused, not taken as the new"
    assert (await client.get("/limits/openai")).json()["max_running"] == 9


async def test_of_puts_racing_from_one_version_exactly_one_wins(
    client: httpx.AsyncClient,
) -> None:
    read = (await client.put("/limits/openai", json={"max_running": 1})).json()
    answers = await asyncio.gather(
        *(
            client.put(
                "/limits/openai",
                json={"max_running": n, "expected_version": read["version"]},
            )
            for n in range(2, 10)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [409] * 7, [a.text for a in answers]
    [won] = [answer.json() for answer in answers if answer.status_code == 200]
    now = (await client.get("/limits/openai")).json()
    assert (now["version"], now["max_running"]) == (2, won["max_running"])


async def test_version_0_creates_only_a_limit_there_is_none_of(
    client: httpx.AsyncClient,
) -> None:
    """Two operators creating one limit at once (one paused, one capped): the second is
    told it exists, not left to replace it."""
    first = await client.put("/limits/openai", json={"paused": True, "expected_version": 0})
    assert (first.status_code, first.json()["version"]) == (200, 1), first.text
    second = await client.put("/limits/openai", json={"max_running": 8, "expected_version": 0})
    assert second.status_code == 409, second.text
    assert second.json()["current_version"] == 1
    assert "expected no limit" in second.json()["detail"]
    now = (await client.get("/limits/openai")).json()
    assert (now["paused"], now["max_running"], now["version"]) == (True, None, 1)


async def test_expected_version_must_be_a_whole_number_from_zero(
    client: httpx.AsyncClient,
) -> None:
    for bad in (-1, "1", 1.5, True):
        refused = await client.put(
            "/limits/openai", json={"max_running": 1, "expected_version": bad}
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == ["expected_version"]
    assert (await client.get("/limits")).json()["data"] == []
