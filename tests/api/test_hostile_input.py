"""Malformed, huge and hostile input: a clear 4xx naming the field, the server stays up,
and nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from conveyor.domain.events import LARGEST_SEQ
from conveyor.store.urls import DatabaseURL
from tests.api.operations import api_operations
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server

PROBLEM = "application/problem+json"


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        ({"type": "a", "payload": {"blob": "x" * 300_000}}, "payload", "bytes as JSON"),
        ({"type": "a", "payload": nested(40)}, "payload", "nested deeper"),
        ({"type": "a", "payload": {"n": 10**30}}, "payload", "64 bits"),
        ({"type": "a", "payload": "a\x00b"}, "payload", "NUL"),
        ({"type": "a", "payload": {"k\x00": 1}}, "payload", "NUL"),
        ({"type": "a", "agent_task_id": "t\x00"}, "agent_task_id", "NUL"),
        ({"type": "a", "idempotency_key": "k\x00"}, "idempotency_key", "NUL"),
    ],
)
async def test_bad_documents_are_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str, why: str
) -> None:
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in response.json()["detail"]
    assert why in response.json()["detail"]
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"type": "a", "payload": "\\ud800"}', 422),  # a lone surrogate
        (b'{"type": "a", "payload": NaN}', 422),
        (b'{"type": "a", "payload": Infinity}', 422),
        (b'{"type": "a", "payload": "\xff\xfe"}', 400),  # not UTF-8
        (b'{"type": "a", ' + b'"payload": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
        (b'{"type": "a"', 422),
        (b"", 422),
    ],
)
async def test_malformed_bodies_are_4xx_problems(
    client: httpx.AsyncClient, raw: bytes, status: int
) -> None:
    response = await client.post("/jobs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0


NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400"]
"""What Python's JSON parser reads as a float that is not finite (`1e400` as infinity)."""


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/limits/openai", '{"rate": {"count": 1, "per_seconds": %s}}', "rate.per_seconds"),
        ("PUT", "/limits/openai", '{"max_running": %s}', "max_running"),
        ("POST", "/jobs", '{"type": "t", "timeout_seconds": %s}', "timeout_seconds"),
        ("POST", "/jobs", '{"type": "t", "retry_backoff_seconds": %s}', "retry_backoff_seconds"),
        (
            "POST",
            "/jobs",
            '{"type": "t", "retry_backoff_max_seconds": %s}',
            "retry_backoff_max_seconds",
        ),
        (
            "POST",
            "/jobs/batch",
            '{"jobs": [{"type": "t", "timeout_seconds": %s}]}',
            "jobs.0.timeout_seconds",
        ),
        ("POST", "/claims", '{"worker_id": "w", "lease_seconds": %s}', "lease_seconds"),
        ("POST", "/claims", '{"worker_id": "w", "wait_seconds": %s}', "wait_seconds"),
        (
            "POST",
            "/schedules",
            '{"name": "n", "cron": "@daily", "job": {"type": "t", "timeout_seconds": %s}}',
            "job.timeout_seconds",
        ),
        (
            "POST",
            "/jobs/00000000-0000-0000-0000-000000000001/heartbeat",
            '{"lease_id": "00000000-0000-0000-0000-000000000002", "lease_seconds": %s}',
            "lease_seconds",
        ),
    ],
)
async def test_a_number_that_is_not_finite_is_refused_as_such_naming_its_field(
    client: httpx.AsyncClient, method: str, path: str, body: str, field: str
) -> None:
    """The README promises NaN and Infinity a clear refusal. An integer field said "Input
    should be a finite number"; a field of seconds took NaN for a number out of its range
    ("less than or equal to 604800"), which no caller could make sense of."""
    for number in NOT_FINITE:
        response = await client.request(
            method,
            path,
            content=(body % number).encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, (number, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"] == [
            {"field": field, "message": "Input should be a finite number"}
        ], number
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0
    assert (await client.get("/limits")).json()["data"] == []
    assert (await client.get("/schedules")).json()["data"] == []


@pytest.mark.parametrize("after_seq", [LARGEST_SEQ + 1, 2**63, 10**20])
async def test_a_seq_past_the_largest_is_refused_alike_by_a_jobs_event_list_and_stream(
    client: httpx.AsyncClient, after_seq: int
) -> None:
    """The event list took any `after_seq` to the database, which failed on it (500: more
    than SQLite's 64 bits, more than PostgreSQL's 32 of `events.seq`); the job's stream
    refused it. Both now answer the same 422 naming `after_seq`."""
    job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    refusals = []
    for path in (f"/jobs/{job}/events", f"/jobs/{job}/events/stream"):
        response = await client.get(path, params={"after_seq": after_seq})
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        refusals.append(response.json()["errors"])
    bound = f"Input should be less than or equal to {LARGEST_SEQ}"
    assert refusals[0] == refusals[1] == [{"field": "after_seq", "message": bound}]
    largest = await client.get(f"/jobs/{job}/events", params={"after_seq": LARGEST_SEQ})
    assert (largest.status_code, largest.json()["data"]) == (200, []), largest.text


async def test_wrong_content_type_is_415_saying_the_body_must_be_json(
    client: httpx.AsyncClient,
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        response = await client.post(
            "/jobs",
            content=b'{"type": "a"}',
            headers={} if content_type is None else {"content-type": content_type},
        )
        assert response.status_code == 415, (content_type, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "/problems/unsupported-media-type"
        assert "must be JSON, sent with Content-Type: application/json" in problem["detail"]
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0
    # JSON with parameters is JSON; a route whose body is optional needs none.
    created = await client.post(
        "/jobs",
        content=b'{"type": "a"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert created.status_code == 201, created.text
    cancelled = await client.post(f"/jobs/{created.json()['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text


async def test_every_route_that_takes_a_json_body_answers_415_to_another(
    server: RunningServer, keys: dict[str, str]
) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {keys['admin']}"}
    ) as http:
        with_bodies = [op for op in await api_operations(http) if op.takes_body]
        assert len(with_bodies) > 20
        for op in with_bodies:
            response = await http.request(
                op.method, op.url, content=b"{}", headers={"content-type": "text/plain"}
            )
            assert response.status_code == 415, (op, response.text)
            assert response.headers["content-type"] == PROBLEM


async def test_a_caller_without_a_key_hears_401_before_any_other_refusal(
    server: RunningServer,
) -> None:
    """An unknown query parameter or a body that is not JSON is refused only after the
    key is checked: without one, every route that needs a key answers 401 (as curl -d,
    which sends a form's content type, would be told), and the routes that need none
    (signing in) still refuse the request itself."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused_for_the_key = 0
        for op in await api_operations(http):
            if (op.method, op.path) == ("GET", "/v1/session"):
                continue  # needs no key: its 401 is the answer "not signed in"
            plain = await http.request(op.method, op.url)
            odd = await http.request(
                op.method,
                op.url,
                params={"no_such_filter": "x"},
                content=b"{}" if op.takes_body else None,
                headers={"content-type": "text/plain"},
            )
            if plain.status_code == 401:
                refused_for_the_key += 1
                assert odd.status_code == 401, (op, odd.text)
            else:
                assert odd.status_code in (415, 422), (op, odd.text)
        assert refused_for_the_key > 40


async def test_oversized_bodies_are_413_however_they_arrive(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    too_big = b'{"type": "a", "payload": "' + b"x" * 2_000_000 + b'"}'
    declared = await client.post(
        "/jobs", content=too_big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 65536):
            yield too_big[start : start + 65536]

    streamed = await client.post(
        "/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_worker_reports_are_checked_too(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    await client.post("/jobs", json={"type": "a"})
    [job] = (await client.post("/claims", json={"worker_id": "w"}, headers=worker)).json()["data"]
    huge_result = await client.post(
        f"/jobs/{job['id']}/complete",
        json={"lease_id": job["lease_id"], "result": {"blob": "x" * 300_000}},
        headers=worker,
    )
    assert huge_result.status_code == 422
    assert "result" in huge_result.json()["detail"]
    nul_event = await client.post(
        f"/jobs/{job['id']}/events",
        json={"type": "ai.note", "payload": {"t": "\x00"}, "lease_id": job["lease_id"]},
        headers=worker,
    )
    assert nul_event.status_code == 422
    nul_error = await client.post(
        f"/jobs/{job['id']}/fail",
        json={"lease_id": job["lease_id"], "error": "bad\x00"},
        headers=worker,
    )
    assert nul_error.status_code == 422
    after = (await client.get(f"/jobs/{job['id']}")).json()
    assert after["status"] == "RUNNING"
    assert after["version"] == job["version"]
    assert [e["type"] for e in after["events"]] == ["job.created", "job.queued", "job.started"]


async def test_hostile_query_and_path_values(client: httpx.AsyncClient) -> None:
    assert (await client.get("/jobs", params={"type": "a\x00b"})).status_code == 422
    assert (await client.get("/jobs", params={"agent_task_id": "a\x00b"})).status_code == 422
    assert (await client.get("/jobs", params={"q": "'; drop table jobs; --"})).status_code == 422
    assert (await client.get("/jobs", params={"page": 10**12})).status_code == 422
    assert (await client.get("/jobs", params={"limit": -1})).status_code == 422
    async with httpx.AsyncClient(
        base_url=str(client.base_url).rsplit("/v1/", 1)[0], headers=client.headers
    ) as root:
        assert (await root.get("/v1/workspaces/a%00b/jobs")).status_code == 404
        assert (await root.get("/v1/workspaces/" + "x" * 500 + "/jobs")).status_code in (404, 422)


async def test_creates_and_claims_are_rate_limited_per_key(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    # A token a quarter of an hour: however slow the machine, none comes back during the
    # test (the refill is tested on a clock of its own: test_limits.py).
    settings = settings_for(database_url, rate_limit_per_second=1 / 900, rate_limit_burst=3)
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme") as http,
    ):
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        statuses = [
            (await http.post("/jobs", json={"type": "a"}, headers=admin)).status_code
            for _ in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
        limited = await http.post("/jobs", json={"type": "a"}, headers=admin)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 900
        assert limited.json()["type"] == "/problems/rate-limited"
        client_key = {"Authorization": f"Bearer {keys['client']}"}
        assert (await http.post("/jobs", json={"type": "a"}, headers=client_key)).status_code == 201
        assert (await http.get("/jobs", headers=admin)).status_code == 200, "reads are not limited"
