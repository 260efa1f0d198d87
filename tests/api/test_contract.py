"""Details of the HTTP contract the fuzzer found wrong: `Allow` names exactly the methods
of the path asked for; `GET /jobs/batch` is the batch route's 405; numbers and booleans
in bodies are strict (`false` is no number, `1` no boolean, `"5"` neither); the schema
says what it cannot express; every documented answer is in the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

import conveyor.api.app  # noqa: F401  (every route's request models)
from conveyor.api.schemas import Strict
from tests.api.operations import api_operations
from tests.support.server import RunningServer

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/jobs", "GET, HEAD, POST"),
        ("DELETE", "/jobs", "GET, HEAD, POST"),
        ("OPTIONS", "/jobs/{job}", "GET, HEAD"),
        ("PUT", "/jobs/{job}", "GET, HEAD"),
        ("GET", "/jobs/batch", "POST"),
        ("HEAD", "/jobs/batch", "POST"),
        ("OPTIONS", "/jobs/{job}/cancel", "POST"),
        ("GET", "/jobs/{job}/steps/{job}", "PATCH"),
        ("OPTIONS", "/jobs/{job}/steps", "GET, HEAD, POST"),
        ("POST", "/jobs/{job}/events/stream", "GET, HEAD"),
        ("GET", "/claims", "POST"),
    ],
)
async def test_405_names_exactly_the_methods_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    response = await client.request(method, path.replace("{job}", job))
    assert response.status_code == 405, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == allowed


async def test_job_ids_that_are_not_uuids_are_still_422(client: httpx.AsyncClient) -> None:
    for path in ("/jobs/batch2", "/jobs/not-a-uuid", "/jobs/batch/steps"):
        response = await client.get(path)
        assert response.status_code == 422, f"{path}: {response.status_code}"
        assert response.json()["errors"][0]["field"] == "job_id"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/claims", {"worker_id": "w", "wait_seconds": False}, "wait_seconds"),
        ("/claims", {"worker_id": "w", "limit": True}, "limit"),
        ("/claims", {"worker_id": "w", "lease_seconds": True}, "lease_seconds"),
        ("/jobs", {"type": "t", "priority": True}, "priority"),
        ("/jobs", {"type": "t", "max_attempts": True}, "max_attempts"),
        ("/jobs", {"type": "t", "priority": "2"}, "priority"),
        ("/jobs", {"type": "t", "priority": 2.5}, "priority"),
        ("/claims", {"worker_id": "w", "wait_seconds": "1"}, "wait_seconds"),
        ("/jobs", {"type": "t", "retry_backoff_seconds": False}, "retry_backoff_seconds"),
        ("/jobs", {"type": "t", "hold": 1}, "hold"),
        ("/jobs", {"type": "t", "hold": "false"}, "hold"),
    ],
)
async def test_numbers_and_booleans_are_strict(
    client: httpx.AsyncClient, keys: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    response = await client.post(path, json=body, headers=worker if path == "/claims" else None)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert (await client.get("/jobs")).json()["meta"]["total"] == 0


async def test_an_integer_may_be_written_with_a_point(client: httpx.AsyncClient) -> None:
    """JSON has one kind of number: 2.0 is the integer 2 (Python's json writes it so)."""
    created = await client.post("/jobs", json={"type": "t", "priority": 2.0, "max_attempts": 3.0})
    assert created.status_code == 201, created.text
    assert (created.json()["priority"], created.json()["max_attempts"]) == (2, 3)


async def test_worker_reports_have_strict_numbers_too(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    await client.post("/jobs", json={"type": "t"})
    [job] = (await client.post("/claims", json={"worker_id": "w"}, headers=worker)).json()["data"]
    lease = job["lease_id"]
    refused = [
        await client.patch(
            f"/jobs/{job['id']}/progress",
            json={"progress_percent": True, "lease_id": lease},
            headers=worker,
        ),
        await client.post(
            f"/jobs/{job['id']}/heartbeat",
            json={"lease_id": lease, "lease_seconds": True},
            headers=worker,
        ),
        await client.post(
            f"/jobs/{job['id']}/fail",
            json={"lease_id": lease, "error": "e", "retryable": "yes"},
            headers=worker,
        ),
    ]
    assert [response.status_code for response in refused] == [422, 422, 422]
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "RUNNING"


async def test_the_backoff_cap_is_no_smaller_than_the_backoff(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/jobs", json={"type": "t", "retry_backoff_seconds": 60, "retry_backoff_max_seconds": 10}
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["retry_backoff_max_seconds"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        schema = (await http.get("/openapi.json")).json()
    cap = schema["components"]["schemas"]["CreateJobIn"]["properties"]["retry_backoff_max_seconds"]
    assert "must not be smaller than retry_backoff_seconds" in cap["description"]


async def test_the_openapi_document_has_every_answer_of_a_retry(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        schema = (await http.get("/openapi.json")).json()
    retry = schema["paths"]["/v1/workspaces/{ws}/jobs/{job_id}/retry"]["post"]["responses"]
    assert {"200", "201", "404", "409", "422"} <= set(retry)
    assert retry["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobOut"
    }
    assert "/v1/workspaces/{ws}/jobs/{job_id}" in schema["paths"], "no convertor in the path"


async def test_the_openapi_document_says_a_held_job_names_its_workspace(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        schema = (await http.get("/openapi.json")).json()
    claimed = schema["components"]["schemas"]["ClaimedJobOut"]
    assert {"lease_id", "workspace_id", "workspace"} <= set(claimed["required"])
    answers = schema["paths"]["/v1/workspaces/{ws}/jobs/{job_id}/status"]["patch"]["responses"]
    started = answers["200"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/ClaimedJobOut"} in started["anyOf"], started


async def test_a_repeated_retry_answers_200_with_the_same_job(client: httpx.AsyncClient) -> None:
    job = (await client.post("/jobs", json={"type": "t"})).json()
    await client.post(f"/jobs/{job['id']}/cancel")
    first = await client.post(f"/jobs/{job['id']}/retry", json={"idempotency_key": "again"})
    repeated = await client.post(f"/jobs/{job['id']}/retry", json={"idempotency_key": "again"})
    assert (first.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["id"] == first.json()["id"]


async def test_every_api_route_refuses_a_query_parameter_it_does_not_take(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """Lists, streams and the rest: none answers as if an unknown parameter had not been
    sent (an unknown filter would match everything)."""
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {keys['admin']}"}
    ) as http:
        operations = await api_operations(http)
        assert len(operations) > 40
        for op in operations:
            response = await http.request(op.method, op.url, params={"no_such_filter": "x"})
            assert response.status_code == 422, (op, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert [e["field"] for e in response.json()["errors"]] == ["no_such_filter"]


async def test_a_text_too_long_is_said_in_characters(client: httpx.AsyncClient) -> None:
    for body, field in (
        ({"type": "t", "concurrency_key": "k" * 201}, "concurrency_key"),
        ({"type": "t", "agent_task_id": "a" * 5000}, "agent_task_id"),
    ):
        response = await client.post("/jobs", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {"field": field, "message": "String should have at most 200 characters"}
        ]
    listed = await client.get("/jobs", params={"error_contains": "e" * 201})
    assert listed.json()["errors"] == [
        {"field": "error_contains", "message": "String should have at most 200 characters"}
    ]


def _request_models(model: type[BaseModel] = Strict) -> Iterator[type[BaseModel]]:
    for subclass in model.__subclasses__():
        yield subclass
        yield from _request_models(subclass)


def _bounded_texts(model: type[BaseModel]) -> Iterator[tuple[str, int]]:
    """Each text field of the model's with a longest length, and that length."""
    for name, schema in model.model_json_schema()["properties"].items():
        for variant in schema.get("anyOf", [schema]):
            if variant.get("type") == "string" and "maxLength" in variant:
                yield name, variant["maxLength"]


def test_every_bounded_text_of_a_request_says_its_bound_in_characters() -> None:
    checked = []
    for model in _request_models():
        for name, longest in _bounded_texts(model):
            body = json.dumps({name: "x" * (longest + 1)})
            with pytest.raises(ValidationError) as refused:
                model.model_validate_json(body)
            [message] = [
                error["msg"] for error in refused.value.errors() if error["loc"] == (name,)
            ]
            assert message == f"String should have at most {longest} characters", (model, name)
            checked.append(f"{model.__name__}.{name}")
    assert {"CreateJobIn.concurrency_key", "StepIn.name", "FiltersIn.error_contains"} <= set(
        checked
    )
