"""Workspace isolation below the API: a valid key of workspace `other`, on its own
workspace's routes, naming a job (lease, step) of workspace `acme`. The path's workspace
is the key's own, so the authorization lets every request through: only the store's
reads and writes, each scoped to the workspace, stand between it and the job. Every route
must answer 404 `not-found`, exactly as for a job that does not exist, and change
nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx

from conveyor.store import Store
from tests.api.test_authorization_matrix import fill, snapshot
from tests.support.server import RunningServer

JOB_ROUTES = [
    ("GET", "/jobs/{job}", None),
    ("GET", "/jobs/{job}/steps", None),
    ("GET", "/jobs/{job}/events", None),
    ("GET", "/jobs/{job}/events/stream", None),
    ("POST", "/jobs/{job}/cancel", None),
    ("POST", "/jobs/{failed}/retry", None),
    ("POST", "/jobs/{job}/heartbeat", {"lease_id": "{lease}"}),
    ("PATCH", "/jobs/{job}/status", {"status": "FAILED", "lease_id": "{lease}"}),
    ("PATCH", "/jobs/{job}/status", {"status": "CANCELLED"}),
    ("PATCH", "/jobs/{job}/progress", {"progress_percent": 50, "lease_id": "{lease}"}),
    ("POST", "/jobs/{job}/steps", {"name": "s", "lease_id": "{lease}"}),
    ("PATCH", "/jobs/{job}/steps/{step}", {"status": "COMPLETED", "lease_id": "{lease}"}),
    ("POST", "/jobs/{job}/events", {"type": "ai.x", "lease_id": "{lease}"}),
    ("POST", "/jobs/{job}/complete", {"lease_id": "{lease}", "result": 1}),
    ("POST", "/jobs/{job}/fail", {"lease_id": "{lease}", "error": "e"}),
    ("POST", "/jobs/{job}/release", {"lease_id": "{lease}"}),
]


async def test_another_workspace_s_job_is_not_found_on_every_job_route(
    server: RunningServer, keys: dict[str, str], store: Store, targets: dict[str, str]
) -> None:
    failures: list[str] = []
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/other",
        headers={"Authorization": f"Bearer {keys['other']}"},
        timeout=10,
    ) as other:
        assert (await other.get("/jobs")).status_code == 200, "the key is good in its workspace"
        for method, path, body in JOB_ROUTES:
            before = await snapshot(store)
            where = f"{method} {path} {body or ''}"
            async with other.stream(
                method, fill(path, targets), json=fill(body, targets) if body else None
            ) as response:
                problem: dict[str, Any] = {}
                if response.headers.get("content-type", "").endswith("json"):
                    problem = json.loads(await response.aread())
            if response.status_code != 404 or problem.get("type") != "/problems/not-found":
                failures.append(f"{where}: {response.status_code} {problem}")
            if await snapshot(store) != before:
                failures.append(f"{where}: changed the database")

        before = await snapshot(store)
        batch = await other.post(
            "/completions",
            json={"completions": [{"job_id": targets["job"], "lease_id": targets["lease"]}]},
        )
        outcome = (batch.json().get("data") or [{}])[0]
        if outcome.get("status") != "error" or outcome["error"]["type"] != "/problems/not-found":
            failures.append(f"POST /completions: {batch.status_code} {batch.text[:200]}")
        if await snapshot(store) != before:
            failures.append("POST /completions: changed the database")
    assert not failures, "\n".join(failures)
