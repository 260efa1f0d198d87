"""The client API over real HTTP: create, list, get, cancel, retry, and its errors."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import httpx
import pytest

PROBLEM = "application/problem+json"


async def create(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/jobs", json={"type": "email.send", **body})
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_create_returns_the_queued_job_with_its_first_events(
    client: httpx.AsyncClient,
) -> None:
    job = await create(client, payload={"to": "ada@example.com"}, priority=3, agent_task_id="t-1")
    assert job["status"] == "QUEUED"
    assert job["priority"] == 3
    assert job["payload"] == {"to": "ada@example.com"}
    assert job["version"] == 1
    assert "lease_id" not in job
    detail = (await client.get(f"/jobs/{job['id']}")).json()
    assert [e["type"] for e in detail["events"]] == ["job.created", "job.queued"]
    assert [e["seq"] for e in detail["events"]] == [1, 2]
    assert detail["steps"] == []


async def test_same_idempotency_key_returns_the_existing_job(client: httpx.AsyncClient) -> None:
    first = await client.post("/jobs", json={"type": "a", "idempotency_key": "order-42"})
    again = await client.post("/jobs", json={"type": "a", "idempotency_key": "order-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    listed = (await client.get("/jobs")).json()
    assert listed["meta"]["total"] == 1


async def test_concurrent_creates_with_one_idempotency_key_make_one_job(
    client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(client.post("/jobs", json={"type": "a", "idempotency_key": "k"}) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert len({r.json()["id"] for r in responses}) == 1


async def test_a_batch_giving_one_key_to_two_different_requests_is_refused_whole(
    client: httpx.AsyncClient,
) -> None:
    """As a key already held by a job: 409, never one job answered for both."""
    for jobs, places in (
        (
            [
                {"type": "bt.g", "idempotency_key": "bk4", "payload": {"a": 1}},
                {"type": "bt.h", "idempotency_key": "bk4", "payload": {"a": 2}},
            ],
            ("jobs.0", "jobs.1"),
        ),
        (  # another type alone, then another payload alone (`true` is not `1`)
            [
                {"type": "bt.g", "idempotency_key": "bk4"},
                {"type": "bt.h", "idempotency_key": "bk4"},
            ],
            ("jobs.0", "jobs.1"),
        ),
        (
            [
                {"type": "bt.g", "idempotency_key": "bk4", "payload": {"x": True}},
                {"type": "bt.g"},
                {"type": "bt.g", "idempotency_key": "other"},
                {"type": "bt.g", "idempotency_key": "bk4", "payload": {"x": 1}},
            ],
            ("jobs.0", "jobs.3"),
        ),
    ):
        refused = await client.post("/jobs/batch", json={"jobs": jobs})
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == PROBLEM
        problem = refused.json()
        assert problem["type"] == "/problems/idempotency-conflict"
        assert "'bk4'" in problem["detail"], problem
        assert all(place in problem["detail"] for place in places), problem
        assert "job_id" not in problem, "no job holds the key: nothing was stored"
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0, "a refused batch wrote"


async def test_a_batch_repeating_a_key_with_the_same_request_makes_one_job(
    client: httpx.AsyncClient,
) -> None:
    """The second is that job, not created: as a single create repeated (the same type and
    payload; the rest is the first's)."""
    same = {"type": "bt.g", "idempotency_key": "bk5", "payload": {"a": 1}}
    made = await client.post(
        "/jobs/batch", json={"jobs": [same, {"type": "bt.h"}, {**same, "priority": 1}]}
    )
    assert made.status_code == 201, made.text
    first, other, again = made.json()["data"]
    assert made.json()["created"] == [True, True, False]
    assert again == first
    assert (first["priority"], other["type"]) == (5, "bt.h")
    assert (await client.get("/jobs")).json()["meta"]["total"] == 2


@pytest.mark.parametrize(
    ("key", "owner"),
    [("schedule:x", "scheduler's"), ("schedule:", "scheduler's"), ("retry:x", "retries'")],
)
async def test_a_key_in_the_servers_own_namespace_is_refused_wherever_a_client_gives_one(
    client: httpx.AsyncClient, key: str, owner: str
) -> None:
    """The server makes a schedule's jobs under `schedule:…` and a retry under `retry:<old
    id>`, and takes a job it finds under such a key for its own: a client's may not be."""
    failed = await create(client)
    await client.post(f"/jobs/{failed['id']}/cancel")

    def refused_naming(response: httpx.Response, field: str) -> None:
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        [error] = problem["errors"]
        assert error["field"] == field, problem
        prefix = key.split(":")[0] + ":"
        assert error["message"].startswith(f"must not begin with '{prefix}'"), error
        assert f"that prefix is the {owner}" in error["message"], error

    refused_naming(
        await client.post("/jobs", json={"type": "t", "idempotency_key": key}), "idempotency_key"
    )
    refused_naming(
        await client.post(
            "/jobs/batch", json={"jobs": [{"type": "t"}, {"type": "t", "idempotency_key": key}]}
        ),
        "jobs.1.idempotency_key",
    )
    refused_naming(
        await client.post(f"/jobs/{failed['id']}/retry", json={"idempotency_key": key}),
        "idempotency_key",
    )
    assert (await client.get("/jobs")).json()["meta"]["total"] == 1, "a refused key wrote"


async def test_a_key_that_only_resembles_the_servers_is_a_clients_like_any_other(
    client: httpx.AsyncClient,
) -> None:
    for key in ("my-schedule:1", "Schedule:1", "schedule", "retry", " retry:1"):
        made = await client.post("/jobs", json={"type": "t", "idempotency_key": key})
        assert made.status_code == 201, (key, made.text)
        assert made.json()["idempotency_key"] == key


async def test_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    for index in range(7):
        await create(client, type="report" if index % 2 else "email", agent_task_id=f"t{index % 3}")
    first_job = (await client.get("/jobs", params={"limit": 1})).json()["data"][0]
    await client.post(f"/jobs/{first_job['id']}/cancel")

    page = (await client.get("/jobs", params={"limit": 3, "page": 2})).json()
    meta = page["meta"]
    assert {key: meta[key] for key in ("total", "page", "limit", "total_pages")} == {
        "total": 7,
        "page": 2,
        "limit": 3,
        "total_pages": 3,
    }
    assert meta["total_is_estimate"] is False
    assert meta["next_cursor"], "a full page says where the next one starts"
    assert len(page["data"]) == 3
    last = (await client.get("/jobs", params={"limit": 7})).json()["meta"]
    assert last["next_cursor"] is None, "full, and nothing follows: no page after it"
    everything = (await client.get("/jobs", params={"limit": 200})).json()["data"]
    created_at = [job["created_at"] for job in everything]
    assert created_at == sorted(created_at, reverse=True), "newest first"

    reports = (await client.get("/jobs", params={"type": "report"})).json()
    assert reports["meta"]["total"] == 3
    assert {job["type"] for job in reports["data"]} == {"report"}
    by_task = (await client.get("/jobs", params={"agent_task_id": "t0"})).json()
    assert by_task["meta"]["total"] == 3
    statuses = (await client.get("/jobs?status=CANCELLED&status=QUEUED")).json()
    assert statuses["meta"]["total"] == 7
    cancelled = (await client.get("/jobs", params={"status": "CANCELLED"})).json()
    assert [job["id"] for job in cancelled["data"]] == [first_job["id"]]
    by_tail = (await client.get("/jobs", params={"q": first_job["id"][-8:]})).json()
    assert [job["id"] for job in by_tail["data"]] == [first_job["id"]]
    whole = (await client.get("/jobs", params={"q": first_job["id"]})).json()
    assert [job["id"] for job in whole["data"]] == [first_job["id"]]


async def test_list_search_forgives_a_type_prefix_and_an_id_without_dashes(
    client: httpx.AsyncClient,
) -> None:
    for job_type in ("demo.fail", "demo.echo", "demolition", "de_mo", "dexmo", "other"):
        await create(client, type=job_type)
    demo = (await client.get("/jobs", params={"type_prefix": "demo"})).json()
    assert sorted(job["type"] for job in demo["data"]) == ["demo.echo", "demo.fail", "demolition"]
    assert demo["meta"]["total"] == 3
    dotted = (await client.get("/jobs", params={"type_prefix": "demo."})).json()
    assert sorted(job["type"] for job in dotted["data"]) == ["demo.echo", "demo.fail"]
    # `_` is a job type's own character here, not a wildcard matching `x`.
    underscore = (await client.get("/jobs", params={"type_prefix": "de_"})).json()
    assert [job["type"] for job in underscore["data"]] == ["de_mo"]
    exact = (await client.get("/jobs", params={"type": "demo"})).json()
    assert exact["meta"]["total"] == 0, "type stays an exact match"

    [job] = (await client.get("/jobs", params={"type": "other"})).json()["data"]
    digits = str(job["id"]).replace("-", "")
    for q in (digits, digits[-16:], str(job["id"]).upper()):
        found = (await client.get("/jobs", params={"q": q})).json()["data"]
        assert [found_job["id"] for found_job in found] == [job["id"]], q


async def test_cancel_then_cancel_again_is_a_conflict_with_the_version(
    client: httpx.AsyncClient,
) -> None:
    job = await create(client)
    cancelled = await client.post(f"/jobs/{job['id']}/cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    again = await client.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    problem = again.json()
    assert problem["type"] == "/problems/invalid-transition"
    assert problem["current_version"] == 2
    assert (problem["from_status"], problem["to_status"]) == ("CANCELLED", "CANCELLED")


async def test_retry_makes_a_new_job_from_the_original_payload(client: httpx.AsyncClient) -> None:
    job = await create(client, payload={"n": 1}, priority=2, max_attempts=3)
    not_yet = await client.post(f"/jobs/{job['id']}/retry")
    assert not_yet.status_code == 409
    await client.post(f"/jobs/{job['id']}/cancel")
    retried = await client.post(f"/jobs/{job['id']}/retry")
    assert retried.status_code == 201
    new = retried.json()
    assert new["id"] != job["id"]
    assert new["retry_of"] == job["id"]
    assert (new["type"], new["priority"], new["payload"], new["max_attempts"]) == (
        job["type"],
        2,
        {"n": 1},
        3,
    )
    assert new["status"] == "QUEUED"


async def test_unknown_job_is_404_problem(client: httpx.AsyncClient) -> None:
    for path in (f"/jobs/{uuid4()}", f"/jobs/{uuid4()}/steps", f"/jobs/{uuid4()}/events"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 404
    assert (await client.post(f"/jobs/{uuid4()}/cancel")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "Bad Type!"}, "type"),
        ({"type": "x" * 101}, "type"),
        ({"type": "ok", "priority": 0}, "priority"),
        ({"type": "ok", "priority": 11}, "priority"),
        ({"type": "ok", "max_attempts": 0}, "max_attempts"),
        ({"type": "ok", "run_at": "2026-01-01T00:00:00"}, "run_at"),
        ({"type": "ok", "run_at": "9999-12-31T23:59:59-14:00"}, "run_at"),  # year 10000 in UTC
        ({"type": "ok", "run_at": "0001-01-01T00:00:00+14:00"}, "run_at"),  # year 0 in UTC
        ({"type": "ok", "surprise": 1}, "surprise"),
        ({"priority": 1}, "type"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert field in [error["field"] for error in problem["errors"]]
    assert field in problem["detail"]
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0, "nothing was written"


async def test_a_due_time_at_the_edge_of_the_range_is_kept_and_read_back(
    client: httpx.AsyncClient,
) -> None:
    """A due time whose UTC Python cannot read back was stored, and then every list of the
    workspace, the job's own page and the lease reaper failed on it. The range refused
    (`run_at` outside it is 422, above) keeps a margin: these are stored and read again,
    on both databases (SQLite keeps seconds as a REAL, which rounds the last microsecond
    of a day up)."""
    for run_at, day in (
        ("9999-12-29T23:59:59.999999Z", "9999-12-"),
        ("0001-01-02T00:00:00Z", "0001-01-02"),
    ):
        made = await client.post("/jobs", json={"type": "ok", "run_at": run_at})
        assert made.status_code == 201, made.text
        read = await client.get(f"/jobs/{made.json()['id']}")
        assert read.status_code == 200, read.text
        assert read.json()["run_at"].startswith(day), "to the day (SQLite keeps ~30 µs there)"
    listed = await client.get("/jobs")
    assert (listed.status_code, listed.json()["meta"]["total"]) == (200, 2), listed.text
    batch = await client.post(
        "/jobs/batch", json={"jobs": [{"type": "ok"}, {"type": "ok", "run_at": "+10000-01-01"}]}
    )
    assert batch.status_code == 422, batch.text
    far = {"type": "ok", "run_at": "9999-12-31T23:59:59-12:00"}
    batch = await client.post("/jobs/batch", json={"jobs": [{"type": "ok"}, far]})
    assert batch.status_code == 422, batch.text
    assert batch.json()["errors"][0]["field"] == "jobs.1.run_at"
    for name in ("created_after", "created_before"):
        refused = await client.get("/jobs", params={name: "0001-01-01T00:00:00+14:00"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == name
    assert (await client.get("/jobs")).json()["meta"]["total"] == 2, "no batch job written"


async def test_malformed_json_and_bad_ids_are_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body", error
    assert error["message"].startswith("is not valid JSON at character 1"), error
    assert (await client.get("/jobs/not-a-uuid")).status_code == 422
    assert (await client.get("/jobs", params={"limit": 201})).status_code == 422
    assert (await client.get("/jobs", params={"status": "DONE"})).status_code == 422


async def test_a_query_parameter_the_list_does_not_take_is_422_naming_it(
    client: httpx.AsyncClient,
) -> None:
    """A filter the server does not know (flows are not built yet) would otherwise be
    ignored, and the list would answer every job as if each matched it."""
    await create(client)
    flow = "00000000-0000-0000-0000-000000000000"
    refused = await client.get("/jobs", params={"flow_id": flow, "limit": 1})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    [error] = refused.json()["errors"]
    assert error["field"] == "flow_id"
    assert error["message"].startswith("unknown query parameter; this route takes ")
    assert "agent_task_id" in error["message"], "it says what the route takes"
    two = await client.get("/jobs", params={"statuses": "FAILED", "flow_id": flow})
    assert [e["field"] for e in two.json()["errors"]] == ["statuses", "flow_id"]
    known = await client.get("/jobs", params={"status": ["QUEUED", "FAILED"], "limit": 1})
    assert known.status_code == 200, known.text


async def test_batch_create_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    bad = await client.post("/jobs/batch", json={"jobs": [{"type": "ok"}, {"type": "BAD"}]})
    assert bad.status_code == 422
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0
    # A field the domain refuses is named by its place in the batch, as the schema's are.
    for job, field in (
        ({"type": "a", "concurrency_key": "type:a"}, "jobs.1.concurrency_key"),
        ({"type": "a", "concurrency_key": "x" * 201}, "jobs.1.concurrency_key"),
    ):
        refused = await client.post("/jobs/batch", json={"jobs": [{"type": "ok"}, job]})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field, refused.json()
        alone = await client.post("/jobs/batch", json={"jobs": [job]})
        assert alone.json()["errors"][0]["field"] == field.replace(".1.", ".0."), alone.json()
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0
    good = await client.post("/jobs/batch", json={"jobs": [{"type": "a"}, {"type": "b"}]})
    assert good.status_code == 201
    assert [job["type"] for job in good.json()["data"]] == ["a", "b"]
    assert good.json()["created"] == [True, True]


async def test_health_and_docs(server: object) -> None:
    from tests.support.server import RunningServer

    assert isinstance(server, RunningServer)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json()["status"] == "ready"
        spec = (await http.get("/openapi.json")).json()
        assert "/v1/workspaces/{ws}/jobs" in spec["paths"]
        docs = await http.get("/docs")
        assert docs.status_code == 200
        # The reference works offline: its script and styles come from this server.
        assert "cdn" not in docs.text.lower(), "the /docs page loads assets from a CDN"
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            assert asset in docs.text
            assert (await http.get(asset)).status_code == 200, f"{asset} is not served"


async def test_a_job_keeps_its_concurrency_key_and_timeout(client: httpx.AsyncClient) -> None:
    one = await create(client, concurrency_key="customer-42", timeout_seconds=30)
    assert (one["concurrency_key"], one["timeout_seconds"]) == ("customer-42", 30)
    batch = await client.post(
        "/jobs/batch",
        json={"jobs": [{"type": "a", "concurrency_key": "openai"}, {"type": "a"}] * 2},
    )
    assert [job["concurrency_key"] for job in batch.json()["data"]] == ["openai", None] * 2
    read = (await client.get(f"/jobs/{one['id']}")).json()
    assert (read["concurrency_key"], read["timeout_seconds"]) == ("customer-42", 30)
    for bad in ({"concurrency_key": ""}, {"concurrency_key": "x" * 201}, {"timeout_seconds": 0}):
        refused = await client.post("/jobs", json={"type": "a", **bad})
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"] == next(iter(bad))


SECONDS = {
    "timeout_seconds": 30.0,
    "retry_backoff_seconds": 1.0,
    "retry_backoff_max_seconds": 300.0,
}


def seconds_as_written(body: dict[str, object]) -> dict[str, tuple[str, object]]:
    """The seconds fields as the JSON wrote them: `30.0` parses as a float, `30` an int."""
    return {name: (type(body[name]).__name__, body[name]) for name in SECONDS}


async def test_a_jobs_seconds_are_written_alike_in_every_answer(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """Created, read, listed, created again under its key, claimed and cancelled: the job's
    seconds are floats each time (SQLite's inserts and updates once answered 30)."""
    expected = {name: ("float", value) for name, value in SECONDS.items()}
    body = {"type": "num.t", "timeout_seconds": 30, "idempotency_key": "num"}
    created = await client.post("/jobs", json=body)
    assert created.status_code == 201
    assert seconds_as_written(created.json()) == expected
    job_id = created.json()["id"]
    again = await client.post("/jobs", json=body)
    assert again.status_code == 200
    assert seconds_as_written(again.json()) == expected
    assert seconds_as_written((await client.get(f"/jobs/{job_id}")).json()) == expected
    [listed] = (await client.get("/jobs")).json()["data"]
    assert seconds_as_written(listed) == expected
    [batched] = (await client.post("/jobs/batch", json={"jobs": [body]})).json()["data"]
    assert seconds_as_written(batched) == expected
    claimed = await client.post(
        "/claims",
        json={"worker_id": "w"},
        headers={"Authorization": f"Bearer {keys['worker']}"},
    )
    [claimed_job] = claimed.json()["data"]
    assert seconds_as_written(claimed_job) == expected
    cancelled = await client.post(f"/jobs/{job_id}/cancel")
    assert seconds_as_written(cancelled.json()) == expected
