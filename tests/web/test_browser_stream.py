"""A real browser's EventSource (its own reconnect and Last-Event-ID) follows a job across
a server restart without a gap or a duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from playwright.async_api import Browser

from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.postgres import free_port
from tests.support.server import running_server
from tests.worker.conftest import eventually

FOLLOW_JOB = """
async ([apiKey, path, types]) => {
  const signIn = await fetch('/v1/session', {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({api_key: apiKey}),
  });
  if (!signIn.ok) throw new Error('sign-in failed: ' + signIn.status);
  window.received = [];
  window.opened = 0;
  window.finalStatus = null;
  const source = new EventSource(path);
  source.onopen = () => { window.opened += 1; };
  for (const type of types) {
    source.addEventListener(type, (event) => {
      window.received.push({id: event.lastEventId, type});
    });
  }
  source.addEventListener('stream.complete', (event) => {
    window.finalStatus = JSON.parse(event.data).status;
    source.close();
  });
}
"""


async def test_event_source_resumes_across_a_server_restart(
    browser: Browser, database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    port = free_port()
    settings = settings_for(database_url, sse_ping_seconds=1.0)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    base = f"http://127.0.0.1:{port}/v1/workspaces/acme"

    async def tick(http: httpx.AsyncClient, job_id: str, lease: str, n: int) -> None:
        response = await http.post(
            f"{base}/jobs/{job_id}/events",
            json={"type": "test.tick", "payload": {"n": n}, "lease_id": lease},
            headers=worker,
        )
        assert response.status_code == 201, response.text

    page = await browser.new_page()
    async with httpx.AsyncClient(timeout=10) as http:
        async with running_server(settings, port=port):
            job_id = (await http.post(f"{base}/jobs", json={"type": "t"}, headers=admin)).json()[
                "id"
            ]
            claimed = await http.post(
                f"{base}/claims", json={"worker_id": "w", "lease_seconds": 600}, headers=worker
            )
            lease = claimed.json()["data"][0]["lease_id"]
            await page.goto(f"http://127.0.0.1:{port}/healthz")
            await page.evaluate(
                FOLLOW_JOB,
                [
                    keys["client"],
                    f"/v1/workspaces/acme/jobs/{job_id}/events/stream",
                    ["job.created", "job.queued", "job.started", "test.tick", "job.completed"],
                ],
            )
            for n in range(5):
                await tick(http, job_id, lease, n)

            async def has(count: int) -> bool:
                received: list[Any] = await page.evaluate("window.received")
                return len(received) >= count

            await eventually(lambda: has(8), what="the first eight events in the browser")

        # The server is down; the browser keeps retrying on its own.
        await asyncio.sleep(0.5)
        async with running_server(settings, port=port):
            for n in range(5, 10):
                await tick(http, job_id, lease, n)
            done = await http.post(
                f"{base}/jobs/{job_id}/complete",
                json={"lease_id": lease, "result": {"ok": True}},
                headers=worker,
            )
            assert done.status_code == 200

            async def finished() -> bool:
                return bool(await page.evaluate("window.finalStatus"))

            await eventually(finished, within=30, what="stream.complete in the browser")
            received = await page.evaluate("window.received")
            opened = await page.evaluate("window.opened")
    ids = [int(event["id"]) for event in received]
    assert ids == list(range(1, 15)), f"gap or duplicate in {ids}"
    assert received[-1]["type"] == "job.completed"
    assert opened >= 2, "the browser reconnected by itself"
    assert await page.evaluate("window.finalStatus") == "COMPLETED"
