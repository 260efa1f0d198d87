"""Retention, bulk actions and deep lists over real HTTP: settings, 404 after pruning, a
workspace stream resumed behind pruned events (410), bulk cancel and retry, list filters
and cursors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from conveyor.domain.lifetime import Retention
from conveyor.service.pruning import Pruner
from conveyor.store.urls import DatabaseURL
from tests.api.test_streams import sse_events
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server
from tests.worker.conftest import eventually

GONE = "/problems/stream-position-gone"


AT_ONCE = Retention(0, 0, 0)


async def prune(server: RunningServer) -> int:
    """A pass of a pruner on the server's store, now, keeping nothing finished."""
    return (await Pruner(server.runtime.store, AT_ONCE).run_once()).jobs


async def job_with_events(client: httpx.AsyncClient, *, cancel: bool) -> tuple[str, list[int]]:
    job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    if cancel:
        await client.post(f"/jobs/{job_id}/cancel")
    events = (await client.get(f"/jobs/{job_id}/events")).json()["data"]
    return job_id, [event["id"] for event in events]


# -- settings ----------------------------------------------------------------------------------


async def test_settings_show_each_value_and_where_it_comes_from(client: httpx.AsyncClient) -> None:
    answer = (await client.get("/settings")).json()
    assert answer == {
        "retention": {"completed_days": 14, "failed_days": 30, "cancelled_days": 14},
        "weight": 1,
        "source": {
            "retention": {
                "completed_days": "instance",
                "failed_days": "instance",
                "cancelled_days": "instance",
            },
            "weight": "workspace",
        },
        "instance_defaults": {
            "retention": {"completed_days": 14, "failed_days": 30, "cancelled_days": 14}
        },
    }
    changed = await client.patch("/settings", json={"retention": {"failed_days": None}})
    assert changed.status_code == 200, changed.text
    again = await client.patch("/settings", json={"retention": {"completed_days": 2}})
    body = again.json()
    assert body["retention"] == {"completed_days": 2, "failed_days": None, "cancelled_days": 14}
    assert body["source"]["retention"] == {
        "completed_days": "workspace",
        "failed_days": "workspace",
        "cancelled_days": "instance",
    }
    back = await client.patch("/settings", json={"retention": {"completed_days": "default"}})
    assert back.json()["retention"]["completed_days"] == 14
    assert back.json()["source"]["retention"]["completed_days"] == "instance"
    assert (await client.patch("/settings", json={})).json() == back.json()


@pytest.mark.parametrize(
    "body",
    [
        {"retention": {"completed_days": -1}},
        {"retention": {"completed_days": 1.5}},
        {"retention": {"completed_days": "forever"}},
        {"retention": {"kept_days": 3}},
        {"colour": "blue"},
        {"weight": 0, "retention": {"failed_days": 60}},
    ],
)
async def test_a_bad_settings_change_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    before = (await client.get("/settings")).json()
    refused = await client.patch("/settings", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get("/settings")).json() == before


@pytest.mark.parametrize("days", ["x", -1, 1.5, 36501, True, "5", [30], {"days": 3}])
async def test_a_retention_value_refused_is_one_error_saying_what_it_takes(
    client: httpx.AsyncClient, days: object
) -> None:
    refused = await client.patch("/settings", json={"retention": {"failed_days": days}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "field": "retention.failed_days",
            "message": "must be a whole number of days from 0 to 36500, null (keep forever) "
            'or "default" (the instance\'s default)',
        }
    ]


# -- pruned jobs answer 404 ----------------------------------------------------------------------


async def test_a_pruned_job_answers_404_like_a_missing_one(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    job_id, _ = await job_with_events(client, cancel=True)
    assert await prune(server) == 1
    missing = "01938f6e-0000-7000-8000-000000000001"
    for path in ("", "/events", "/steps", "/events/stream"):
        pruned = await client.get(f"/jobs/{job_id}{path}")
        never = await client.get(f"/jobs/{missing}{path}")
        assert pruned.status_code == never.status_code == 404, path
        assert pruned.json()["type"] == never.json()["type"] == "/problems/not-found"
    assert (await client.post(f"/jobs/{job_id}/retry")).status_code == 404


# -- a workspace stream resumed behind pruned events --------------------------------------------


async def test_resuming_a_workspace_stream_behind_pruned_events_is_410(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    old_job, old_events = await job_with_events(client, cancel=True)
    kept_job, kept_events = await job_with_events(client, cancel=False)  # unfinished: kept
    later_job, later_events = await job_with_events(client, cancel=True)
    await prune(server)
    assert (await client.get(f"/jobs/{kept_job}")).status_code == 200

    for asked in (
        {"headers": {"Last-Event-ID": str(old_events[0])}},  # the event itself was pruned
        {"params": {"after_id": str(old_events[-1])}},
        {"headers": {"Last-Event-ID": str(kept_events[-1])}},  # kept, but pruned ones followed
    ):
        gone = await client.get("/events/stream", **asked)
        assert gone.status_code == 410, (asked, gone.text)
        assert gone.headers["content-type"] == "application/problem+json"
        problem = gone.json()
        assert problem["type"] == GONE
        assert "afresh" in problem["detail"]

    never = await client.get("/events/stream", headers={"Last-Event-ID": "999999999"})
    assert never.status_code == 422, "an id above everything pruned never existed"

    # Past everything pruned, the resume is exact again.
    newest_job, newest_events = await job_with_events(client, cancel=False)
    resumed = []
    async for event in sse_events(
        client, "/events/stream", {"Last-Event-ID": str(later_events[-1])}
    ):
        resumed.append((event.json()["job_id"], event.event))
        if len(resumed) == len(newest_events):
            break
    assert resumed == [(newest_job, "job.created"), (newest_job, "job.queued")]
    assert (old_job, later_job) != (None, None)


async def test_the_python_client_says_the_stream_must_start_afresh(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    from conveyor.client import Client, StreamPositionGoneError

    _, events = await job_with_events(client, cancel=True)
    await prune(server)

    def resume() -> None:
        with Client(server.url, keys["admin"]) as sdk:
            # The job's later events were pruned too: the stream cannot go on from its first.
            for _ in sdk.stream_workspace_events(after_id=events[0]):
                pass

    with pytest.raises(StreamPositionGoneError) as gone:
        await asyncio.to_thread(resume)
    assert gone.value.status == 410
    assert gone.value.event_id == events[0]


# -- bulk actions --------------------------------------------------------------------------------


async def test_bulk_cancel_and_retry_over_http(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    mail = [(await client.post("/jobs", json={"type": "mail.send"})).json()["id"] for _ in range(4)]
    sms = (await client.post("/jobs", json={"type": "sms.send"})).json()["id"]
    refused = await client.post("/jobs/bulk/cancel", json={})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "all"
    unknown = await client.post("/jobs/bulk/cancel", json={"typo": 1, "all": True})
    assert unknown.status_code == 422

    dry = (
        await client.post("/jobs/bulk/cancel", json={"type_prefix": "mail", "dry_run": True})
    ).json()
    assert (dry["remaining"], dry["changed"], dry["dry_run"]) == (4, 0, True)
    cancelled = await client.post(
        "/jobs/bulk/cancel", json={"type_prefix": "mail", "reason": "campaign stopped"}
    )
    assert cancelled.status_code == 200, cancelled.text
    answer = cancelled.json()
    assert {k: answer[k] for k in ("matched", "changed", "remaining", "limit_reached")} == {
        "matched": 4,
        "changed": 4,
        "remaining": 0,
        "limit_reached": False,
    }
    assert answer["limit"] == 1000
    for job_id in mail:
        job = (await client.get(f"/jobs/{job_id}")).json()
        assert job["status"] == "CANCELLED"
        [event] = [e for e in job["events"] if e["type"] == "job.cancelled"]
        assert event["payload"]["reason"] == "campaign stopped"
    assert (await client.get(f"/jobs/{sms}")).json()["status"] == "QUEUED"

    client_key = {"Authorization": f"Bearer {keys['client']}"}
    retried = await client.post(
        "/jobs/bulk/retry", json={"status": ["CANCELLED"]}, headers=client_key
    )
    assert retried.status_code == 200, retried.text
    assert (retried.json()["matched"], retried.json()["changed"]) == (4, 4)
    again = (await client.post("/jobs/bulk/retry", json={"all": True})).json()
    assert (again["matched"], again["changed"]) == (0, 0)
    new_jobs = (
        await client.get("/jobs", params={"type_prefix": "mail", "status": "QUEUED"})
    ).json()
    assert sorted(job["retry_of"] for job in new_jobs["data"]) == sorted(mail)


# -- lists ---------------------------------------------------------------------------------------


async def test_list_by_cursor_and_the_new_filters_over_http(client: httpx.AsyncClient) -> None:
    ids = [
        (await client.post("/jobs", json={"type": "t", "concurrency_key": f"c{i % 2}"})).json()[
            "id"
        ]
        for i in range(5)
    ]
    first = (await client.get("/jobs", params={"limit": 2})).json()
    assert first["meta"]["page"] == 1
    seen = [job["id"] for job in first["data"]]
    cursor = first["meta"]["next_cursor"]
    while cursor:
        page = (await client.get("/jobs", params={"limit": 2, "cursor": cursor})).json()
        assert page["meta"]["page"] is None
        seen += [job["id"] for job in page["data"]]
        cursor = page["meta"]["next_cursor"]
    assert seen == list(reversed(ids))

    keyed = (await client.get("/jobs", params={"concurrency_key": "c0"})).json()
    assert {job["id"] for job in keyed["data"]} == {ids[0], ids[2], ids[4]}
    later = (await client.get("/jobs", params={"created_after": "2999-01-01T00:00:00Z"})).json()
    assert later["data"] == []

    for params in (
        {"cursor": "bm90IGEgY3Vyc29y"},
        {"cursor": first["meta"]["next_cursor"], "page": "2"},
        {"created_after": "2026-01-01T00:00:00"},  # no zone
        {"error_contains": "x" * 201},
        {"worker_id": "has space"},
    ):
        refused = await client.get("/jobs", params=params)
        assert refused.status_code == 422, (params, refused.text)


# -- the server's own pruner ---------------------------------------------------------------------


async def test_every_server_prunes_counts_it_and_logs_a_line(
    database_url: DatabaseURL, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor.pruner")
    settings = settings_for(database_url, retention_cancelled_days=0, prune_interval_seconds=0.1)
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {keys['admin']}"},
        ) as http,
    ):
        cancelled = (await http.post("/jobs", json={"type": "t"})).json()["id"]
        kept = (await http.post("/jobs", json={"type": "t"})).json()["id"]
        assert (await http.post(f"/jobs/{cancelled}/cancel")).status_code == 200

        async def gone() -> bool:
            return (await http.get(f"/jobs/{cancelled}")).status_code == 404

        await eventually(gone, what="the pruner to delete the cancelled job")
        assert (await http.get(f"/jobs/{kept}")).status_code == 200
        metrics = (await http.get(f"{server.url}/metrics")).text
    assert 'conveyor_jobs_pruned_total{status="CANCELLED",workspace="acme"} 1.0' in metrics
    lines = [record.getMessage() for record in caplog.records if record.name == "conveyor.pruner"]
    assert any("deleted 1 jobs and 3 events" in line for line in lines), lines
    assert any("nothing to delete" in line for line in lines), "a line for every pass"
