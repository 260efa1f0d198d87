"""/metrics parses as Prometheus text and moves when jobs run; requests carry an id into
the logs; keys never appear in logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.logs import JsonFormatter
from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server


async def scrape(server: RunningServer) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str
) -> float:
    return sum(
        value
        for key, value in samples.get(name, {}).items()
        if all(dict(key).get(label) == wanted for label, wanted in labels.items())
    )


async def test_metrics_parse_and_move_when_jobs_run(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    before = await scrape(server)
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    await client.post("/jobs/batch", json={"jobs": [{"type": "email"}] * 3})
    claimed = (
        await client.post("/claims", json={"worker_id": "w", "limit": 3}, headers=worker)
    ).json()["data"]
    await client.post(
        f"/jobs/{claimed[0]['id']}/complete",
        json={"lease_id": claimed[0]["lease_id"]},
        headers=worker,
    )
    await client.post(
        f"/jobs/{claimed[1]['id']}/fail",
        json={"lease_id": claimed[1]["lease_id"], "error": "x"},
        headers=worker,
    )
    await client.post(f"/jobs/{claimed[2]['id']}/cancel")
    for collector in server.runtime.metrics.read_at_scrape:  # skip the cache
        collector._read_at = 0
    after = await scrape(server)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("conveyor_jobs_created_total", type="email") == 3
    assert moved("conveyor_jobs_claimed_total", type="email") == 3
    assert moved("conveyor_jobs_completed_total", type="email") == 1
    assert moved("conveyor_jobs_failed_total", type="email") == 1
    assert moved("conveyor_jobs_cancelled_total", type="email") == 1
    assert moved("conveyor_job_queue_wait_seconds_count", type="email") == 3
    assert moved("conveyor_job_run_seconds_count", type="email") == 1
    await client.post("/jobs", json={"type": "email"})
    for collector in server.runtime.metrics.read_at_scrape:
        collector._read_at = 0
    depth = await scrape(server)
    assert total(depth, "conveyor_jobs", workspace="acme", type="email", status="QUEUED") == 1
    assert total(depth, "conveyor_jobs", status="COMPLETED") == 0, "queue depth only"
    assert moved("conveyor_http_requests_total", route="/v1/workspaces/{ws}/claims") >= 1
    assert total(after, "conveyor_db_statements") > 0
    for samples in after.values():
        for key in samples:
            for label, value in key:
                assert label not in ("job_id", "id", "key")
                assert value not in {job["id"] for job in claimed}, "a job id in a label"


async def test_metrics_can_require_a_token(database_url: DatabaseURL) -> None:
    settings = settings_for(database_url, metrics_token="s3cret")
    async with running_server(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/metrics")).status_code == 401
        for header in ("Bearer s3cret", "bearer s3cret", "BEARER  s3cret"):  # RFC 9110 §11.1
            allowed = await http.get("/metrics", headers={"Authorization": header})
            assert allowed.status_code == 200, header
        for header in ("Bearer s3cre", "Basic s3cret", "s3cret", "Bearer"):
            refused = await http.get("/metrics", headers={"Authorization": header})
            assert refused.status_code == 401, header


async def test_metrics_off_loopback_need_a_token(database_url: DatabaseURL) -> None:
    """They name every workspace: a server listening beyond this machine keeps them to
    whoever holds the metrics token."""
    settings = settings_for(database_url, host="0.0.0.0")
    async with running_server(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 403
        assert "CONVEYOR_METRICS_TOKEN" in refused.json()["detail"]


async def test_requests_carry_an_id_into_the_log_and_keys_stay_out(
    client: httpx.AsyncClient, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor.access")
    response = await client.get("/jobs", headers={"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    generated = await client.get("/jobs", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    me = await client.get(str(client.base_url.copy_with(path="/v1/me")))
    assert me.status_code == 200
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any(
        '"route":"/v1/me"' in line and f'"key_id":"{me.json()["key_id"]}"' in line for line in lines
    ), "every authenticated request logs its key id"
    assert any(
        '"request_id":"trace-42"' in line and '"route":"/v1/workspaces/{ws}/jobs"' in line
        for line in lines
    )
    assert any('"key_id":' in line for line in lines)
    for line in lines:
        for key in keys.values():
            assert key not in line, "an API key reached the log"


async def test_limits_show_in_the_metrics(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await client.put("/limits/openai", json={"max_running": 2, "paused": False})
    await client.put("/limits/type:render", json={"paused": True})
    await client.post(
        "/jobs/batch", json={"jobs": [{"type": "t", "concurrency_key": "openai"}] * 3}
    )
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    await client.post("/claims", json={"worker_id": "w", "limit": 5}, headers=worker)
    samples = await scrape(server)
    openai = {"workspace": "acme", "limit": "openai"}
    assert total(samples, "conveyor_limit_running", **openai) == 2
    assert total(samples, "conveyor_limit_queued", **openai) == 1
    assert total(samples, "conveyor_limit_max_running", **openai) == 2
    assert total(samples, "conveyor_limit_paused", workspace="acme", limit="type:render") == 1
