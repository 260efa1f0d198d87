"""The worker routes over real HTTP: claims (and their long-poll), leases, reports."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest

from conveyor.domain.jobs import DEFAULT_TIMEOUT_GRACE_SECONDS
from tests.support.server import RunningServer


@pytest.fixture
async def worker(server: RunningServer, keys: dict[str, str]) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/acme",
        headers={"Authorization": f"Bearer {keys['worker']}", "Conveyor-Worker-Id": "w-1"},
        timeout=30,
    )
    yield client  # type: ignore[misc]
    await client.aclose()


async def claim_one(worker: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await worker.post("/claims", json={"worker_id": "w-1", **body})
    assert response.status_code == 200, response.text
    [job] = response.json()["data"]
    return dict(job)


async def test_claim_long_polls_until_a_job_arrives(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    empty = await worker.post("/claims", json={"worker_id": "w-1", "wait_seconds": 0.3})
    assert empty.json() == {"data": []}
    assert time.monotonic() - started >= 0.3, "an empty claim waits wait_seconds"

    waiting = asyncio.create_task(
        worker.post("/claims", json={"worker_id": "w-1", "wait_seconds": 10, "types": ["t"]})
    )
    job = (await client.post("/jobs", json={"type": "t"})).json()
    response = await waiting
    # That the create wakes the claim at once, rather than at its next look, is
    # tests/service/test_guarantees.py's part (with looks an hour apart).
    assert [j["id"] for j in response.json()["data"]] == [job["id"]]


async def test_a_claim_returns_a_lease_and_reports_need_it(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    await client.post("/jobs", json={"type": "t"})
    job = await claim_one(worker, lease_seconds=60)
    lease = job["lease_id"]
    assert job["status"] == "RUNNING"
    assert job["worker_id"] == "w-1"

    beat = await worker.post(f"/jobs/{job['id']}/heartbeat", json={"lease_id": lease})
    assert beat.status_code == 200
    held = (job["workspace_id"], job["workspace"])
    assert (beat.json()["workspace_id"], beat.json()["workspace"]) == held
    assert job["workspace"], "a claimed job names its workspace"
    progress = await worker.patch(
        f"/jobs/{job['id']}/progress",
        json={"progress_percent": 40, "message": "warming up", "lease_id": lease},
    )
    assert progress.json()["progress_percent"] == 40
    backwards = await worker.patch(
        f"/jobs/{job['id']}/progress", json={"progress_percent": 10, "lease_id": lease}
    )
    assert backwards.status_code == 409
    assert backwards.json()["type"] == "/problems/progress-regressed"
    no_lease = await worker.patch(f"/jobs/{job['id']}/progress", json={"progress_percent": 50})
    assert no_lease.status_code == 422

    step = await worker.post(
        f"/jobs/{job['id']}/steps",
        json={"name": "plan", "type": "AI_ACTION", "phase": "SETUP", "lease_id": lease},
    )
    assert step.status_code == 201
    assert step.json()["ordinal"] == 1
    updated = await worker.patch(
        f"/jobs/{job['id']}/steps/{step.json()['id']}",
        json={
            "lease_id": lease,
            "status": "COMPLETED",
            "output": "thinking…",
            "tokens_input": 10,
            "tokens_output": 3,
        },
    )
    assert updated.json()["status"] == "COMPLETED"
    assert updated.json()["duration_ms"] >= 0
    event = await worker.post(
        f"/jobs/{job['id']}/events",
        json={"type": "ai.tool_called", "payload": {"tool": "grep"}, "lease_id": lease},
    )
    assert event.status_code == 201
    forged = await worker.post(
        f"/jobs/{job['id']}/events", json={"type": "job.completed", "lease_id": lease}
    )
    assert forged.status_code == 422

    done = await worker.post(
        f"/jobs/{job['id']}/complete", json={"lease_id": lease, "result": {"ok": True}}
    )
    assert done.json()["status"] == "COMPLETED"
    again = await worker.post(
        f"/jobs/{job['id']}/complete", json={"lease_id": lease, "result": {"ok": True}}
    )
    assert again.status_code == 200, "the same completion again is a no-op"
    assert again.json()["version"] == done.json()["version"]
    different = await worker.post(
        f"/jobs/{job['id']}/complete", json={"lease_id": lease, "result": {"ok": False}}
    )
    assert different.status_code == 409
    assert different.json()["type"] == "/problems/result-conflict"

    detail = (await client.get(f"/jobs/{job['id']}")).json()
    assert [e["type"] for e in detail["events"]] == [
        "job.created",
        "job.queued",
        "job.started",
        "job.progress",
        "step.started",
        "step.output",
        "step.completed",
        "ai.tool_called",
        "job.completed",
    ]
    assert [e["seq"] for e in detail["events"]] == list(range(1, 10))
    assert detail["events"][3]["actor"].startswith("worker:w-1/key:")
    assert detail["steps"][0]["tokens_input"] == 10


async def test_a_cancelled_job_refuses_its_worker(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    await client.post("/jobs", json={"type": "t"})
    job = await claim_one(worker)
    await client.post(f"/jobs/{job['id']}/cancel")
    beat = await worker.post(f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"]})
    assert beat.status_code == 409
    problem = beat.json()
    assert problem["type"] == "/problems/lease-lost"
    assert "cancelled" in problem["reason"]
    late = await worker.post(
        f"/jobs/{job['id']}/complete", json={"lease_id": job["lease_id"], "result": 1}
    )
    assert late.status_code == 409


async def test_batch_completion_reports_each_outcome(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    await client.post("/jobs/batch", json={"jobs": [{"type": "t"}] * 3})
    claimed = (await worker.post("/claims", json={"worker_id": "w-1", "limit": 3})).json()["data"]
    assert len(claimed) == 3
    completions = [
        {"job_id": job["id"], "lease_id": job["lease_id"], "result": {"n": index}}
        for index, job in enumerate(claimed)
    ]
    completions[2]["lease_id"] = str(uuid4())
    completions.append({"job_id": str(uuid4()), "lease_id": str(uuid4())})
    response = await worker.post("/completions", json={"completions": completions})
    outcomes = response.json()["data"]
    assert [o["status"] for o in outcomes] == ["completed", "completed", "error", "error"]
    assert outcomes[2]["error"]["type"] == "/problems/lease-lost"
    assert outcomes[3]["error"]["status"] == 404
    assert outcomes[0]["job"]["result"] == {"n": 0}


async def test_fail_and_status_routes(client: httpx.AsyncClient, worker: httpx.AsyncClient) -> None:
    await client.post("/jobs", json={"type": "t", "max_attempts": 2, "retry_backoff_seconds": 0})
    job = await claim_one(worker)
    retried = await worker.post(
        f"/jobs/{job['id']}/fail",
        json={"lease_id": job["lease_id"], "error": "timeout", "retryable": True},
    )
    assert (retried.json()["status"], retried.json()["attempt"]) == ("QUEUED", 2)
    again = await claim_one(worker)
    failed = await worker.patch(
        f"/jobs/{job['id']}/status",
        json={"status": "FAILED", "lease_id": again["lease_id"], "error": "gave up"},
    )
    assert (failed.json()["status"], failed.json()["error"]) == ("FAILED", "gave up")

    held = (await client.post("/jobs", json={"type": "t", "hold": True})).json()
    assert held["status"] == "PENDING"
    stale = await client.patch(
        f"/jobs/{held['id']}/status", json={"status": "QUEUED", "expected_version": 7}
    )
    assert stale.status_code == 409
    assert stale.json()["type"] == "/problems/concurrent-update"
    assert stale.json()["current_version"] == 1
    released = await client.patch(
        f"/jobs/{held['id']}/status", json={"status": "QUEUED", "expected_version": 1}
    )
    assert released.json()["status"] == "QUEUED"
    started = await worker.patch(
        f"/jobs/{held['id']}/status", json={"status": "RUNNING", "worker_id": "w-2"}
    )
    assert started.json()["status"] == "RUNNING"
    assert started.json()["lease_id"]
    assert started.json()["workspace"] == job["workspace"], "a start names its workspace"
    requeue = await worker.patch(f"/jobs/{held['id']}/status", json={"status": "QUEUED"})
    assert requeue.status_code == 403, "a worker key may not queue jobs"
    admin_requeue = await client.patch(f"/jobs/{held['id']}/status", json={"status": "QUEUED"})
    assert admin_requeue.status_code == 409, "RUNNING → QUEUED is only for Conveyor itself"


def seconds_left(job: dict[str, Any]) -> float:
    """How long the job's lease runs from now (the server and the test share a clock)."""
    expires = datetime.fromisoformat(job["lease_expires_at"])
    return (expires - datetime.now(UTC)).total_seconds()


async def test_a_heartbeat_that_names_no_length_renews_the_lease_for_as_long_as_asked(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    """design.md: a heartbeat `{"lease_id"}` extends the lease. It renews it for as long as
    the claim (or the start by status) asked, never for a shorter default; one that names
    a length gets that length."""
    await client.post("/jobs", json={"type": "t"})
    job = await claim_one(worker, lease_seconds=300)
    assert 290 < seconds_left(job) <= 300

    beat = await worker.post(f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"]})
    assert beat.status_code == 200, beat.text
    assert 290 < seconds_left(beat.json()) <= 300, "renewed for the claim's 300 s"

    named = await worker.post(
        f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"], "lease_seconds": 45}
    )
    assert 35 < seconds_left(named.json()) <= 45, "a heartbeat naming a length gets it"
    again = await worker.post(f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"]})
    assert 290 < seconds_left(again.json()) <= 300, "the claim's length, not the last beat's"

    held = (await client.post("/jobs", json={"type": "u"})).json()
    started = await worker.patch(
        f"/jobs/{held['id']}/status",
        json={"status": "RUNNING", "worker_id": "w-1", "lease_seconds": 200},
    )
    assert started.status_code == 200, started.text
    beat = await worker.post(
        f"/jobs/{held['id']}/heartbeat", json={"lease_id": started.json()["lease_id"]}
    )
    assert 190 < seconds_left(beat.json()) <= 200, "renewed for the start's 200 s"


async def test_a_heartbeat_that_names_no_length_still_stops_at_the_deadline(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    """The claim's length never carries a lease past the attempt's timeout deadline."""
    await client.post("/jobs", json={"type": "t", "timeout_seconds": 20})
    job = await claim_one(worker, lease_seconds=300)
    beat = await worker.post(f"/jobs/{job['id']}/heartbeat", json={"lease_id": job["lease_id"]})
    assert 15 < seconds_left(beat.json()) <= 20 + DEFAULT_TIMEOUT_GRACE_SECONDS


async def test_roles_are_enforced(server: RunningServer, keys: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme") as http:
        as_client = {"Authorization": f"Bearer {keys['client']}"}
        as_worker = {"Authorization": f"Bearer {keys['worker']}"}
        assert (
            await http.post("/claims", json={"worker_id": "x"}, headers=as_client)
        ).status_code == 403
        assert (await http.post("/jobs", json={"type": "t"}, headers=as_worker)).status_code == 403
        assert (await http.post("/jobs", json={"type": "t"}, headers=as_client)).status_code == 201
        assert (await http.get("/jobs", headers=as_worker)).status_code == 200


async def test_a_failure_keeps_its_detail_and_a_success_clears_it(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """Failure triage: beside the one-line error, the worker's traceback, its end kept."""
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    await client.post("/jobs", json={"type": "t", "max_attempts": 2, "retry_backoff_seconds": 0})
    [job] = (
        await client.post("/claims", json={"worker_id": "w", "limit": 1}, headers=worker)
    ).json()["data"]
    traceback = "Traceback (most recent call last):\n" + "  frame\n" * 20_000 + "KeyError: 'to'"
    failed = await client.post(
        f"/jobs/{job['id']}/fail",
        json={
            "lease_id": job["lease_id"],
            "error": "KeyError: 'to'",
            "error_detail": traceback,
            "retryable": True,
        },
        headers=worker,
    )
    assert failed.status_code == 200, failed.text
    body = failed.json()
    assert (body["status"], body["error"]) == ("QUEUED", "KeyError: 'to'")
    assert body["error_detail"].endswith("KeyError: 'to'"), "the end of a traceback is kept"
    assert len(body["error_detail"]) == 64 * 1024
    assert (await client.get(f"/jobs/{job['id']}")).json()["error_detail"] == body["error_detail"]

    [again] = (
        await client.post("/claims", json={"worker_id": "w", "limit": 1}, headers=worker)
    ).json()["data"]
    done = await client.post(
        f"/jobs/{again['id']}/complete", json={"lease_id": again["lease_id"]}, headers=worker
    )
    assert (done.json()["error"], done.json()["error_detail"]) == (None, None)


async def test_a_workspace_worker_starts_a_queued_job_by_id(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    """`PATCH …/status` to RUNNING (permission `start`): a workspace worker key may, and
    gets the job with its lease; an instance worker key may not (the matrix's)."""
    job = (await client.post("/jobs", json={"type": "t"})).json()
    started = await worker.patch(
        f"/jobs/{job['id']}/status", json={"status": "RUNNING", "worker_id": "w"}
    )
    assert started.status_code == 200, started.text
    assert (started.json()["status"], started.json()["lease_id"] is not None) == ("RUNNING", True)


async def test_running_by_name_is_refused_where_a_limit_governs(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    """A limit's count holds only if its jobs start through a claim: PATCH …/status to
    RUNNING is a 409 naming the limits (and moves nothing)."""
    assert (await client.put("/limits/type:t", json={"max_running": 1})).status_code == 200
    job = (await client.post("/jobs", json={"type": "t"})).json()
    refused = await worker.patch(
        f"/jobs/{job['id']}/status", json={"status": "RUNNING", "worker_id": "w"}
    )
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/starts-only-by-claim"
    assert refused.json()["limits"] == ["type:t"]
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "QUEUED"
    assert (await claim_one(worker))["id"] == job["id"], "a claim still starts it"


async def test_a_limit_name_no_job_could_have_is_a_422_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    for name in ("type:", "type:A", "type:BAD%20TYPE", "type:" + "t" * 101, "x%0Ay", "%09"):
        refused = await client.put(f"/limits/{name}", json={"max_running": 1})
        assert refused.status_code == 422, (name, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "name"
    assert (await client.get("/limits")).json()["data"] == [], "nothing was stored"


async def test_a_concurrency_key_in_a_type_limits_name_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post("/jobs", json={"type": "t", "concurrency_key": "type:t"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "field": "concurrency_key",
            "message": "must not begin with 'type:': that prefix names the limit of a job "
            "type (type:<job type>)",
        }
    ], "a sentence a caller can read (it once ended on a stray apostrophe)"
    assert (await client.get("/jobs")).json()["data"] == [], "nothing was created"


async def test_a_concurrency_key_is_a_name_a_limit_may_have(client: httpx.AsyncClient) -> None:
    """A key with a control character was stored (201) though no limit could be made for
    it (`PUT limits/x%0Ay` is a 422): now the one rule of limit names refuses it, on a job,
    in a batch and in a schedule's job, naming the field."""
    refused = await client.put("/limits/x%0Ay", json={"max_running": 1})
    assert refused.status_code == 422
    message = refused.json()["errors"][0]["message"]
    for key in ("x\ny", "\x1b[31mRED\x1b[0m", "tab\there", "del\x7f", "c1\x9b", "z\u202ez"):
        answer = await client.post("/jobs", json={"type": "t", "concurrency_key": key})
        assert answer.status_code == 422, (key, answer.text)
        assert answer.json()["errors"] == [{"field": "concurrency_key", "message": message}]
        answer = await client.post(
            "/jobs/batch", json={"jobs": [{"type": "t"}, {"type": "t", "concurrency_key": key}]}
        )
        assert answer.status_code == 422, (key, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == ["jobs.1.concurrency_key"]
        answer = await client.post(
            "/schedules",
            json={"name": "s", "cron": "@daily", "job": {"type": "t", "concurrency_key": key}},
        )
        assert answer.status_code == 422, (key, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == ["job.concurrency_key"]
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0
    assert (await client.get("/schedules")).json()["data"] == []

    made = await client.post(
        "/schedules",
        json={"name": "s", "cron": "@daily", "job": {"type": "t", "concurrency_key": "a/b c"}},
    )
    assert made.status_code == 201, made.text
    changed = await client.patch("/schedules/s", json={"job": {"concurrency_key": "x\ny"}})
    assert changed.status_code == 422, changed.text
    assert [e["field"] for e in changed.json()["errors"]] == ["job.concurrency_key"]

    # Any name a limit may have is a key: it governs the key's jobs.
    key = "customer/42 ü"
    assert (await client.put(f"/limits/{quote(key, safe='')}", json={"paused": True})).is_success
    job = await client.post("/jobs", json={"type": "t", "concurrency_key": key})
    assert job.status_code == 201, job.text
    shown = (await client.get(f"/jobs/{job.json()['id']}")).json()
    assert [limit["name"] for limit in shown["waiting_for"]] == [key]
