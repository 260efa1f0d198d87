"""Every route, called with every kind of wrong credential, answers 401/403/404 as
documented and changes nothing: rows and versions are compared before and after.

The job, lease and step the routes target are real, so that with the right key each
request would have succeeded: a refusal here is the authorization at work, not a 404 for
something that never existed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import pytest

from conveyor.domain.workspaces import Permission, Role, role_allows
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store
from tests.support.server import RunningServer


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    permission: Permission | None
    body: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


P = Permission
ROUTES = [
    Route("POST", "/jobs", P.CREATE, {"type": "t"}),
    Route("POST", "/jobs/batch", P.CREATE, {"jobs": [{"type": "t"}]}),
    Route("GET", "/jobs", P.READ),
    Route("GET", "/jobs/{job}", P.READ),
    Route("POST", "/jobs/{job}/cancel", P.CANCEL),
    Route("POST", "/jobs/{failed}/retry", P.RETRY),
    Route("GET", "/jobs/{job}/steps", P.READ),
    Route("GET", "/jobs/{job}/events", P.READ),
    Route("GET", "/jobs/{job}/events/stream", P.STREAM),
    Route("GET", "/events/stream", P.STREAM),
    Route("GET", "/stats", P.READ),
    Route("POST", "/claims", P.CLAIM, {"worker_id": "w"}),
    Route("POST", "/jobs/{job}/heartbeat", P.REPORT, {"lease_id": "{lease}"}),
    Route("PATCH", "/jobs/{job}/status", P.REPORT, {"status": "FAILED", "lease_id": "{lease}"}),
    Route(
        "PATCH", "/jobs/{job}/progress", P.REPORT, {"progress_percent": 50, "lease_id": "{lease}"}
    ),
    Route("POST", "/jobs/{job}/steps", P.REPORT, {"name": "s", "lease_id": "{lease}"}),
    Route(
        "PATCH",
        "/jobs/{job}/steps/{step}",
        P.REPORT,
        {"status": "COMPLETED", "lease_id": "{lease}"},
    ),
    Route("POST", "/jobs/{job}/events", P.REPORT, {"type": "ai.x", "lease_id": "{lease}"}),
    Route("POST", "/jobs/{job}/complete", P.REPORT, {"lease_id": "{lease}", "result": 1}),
    Route("POST", "/jobs/{job}/fail", P.REPORT, {"lease_id": "{lease}", "error": "e"}),
    Route("POST", "/jobs/{job}/release", P.REPORT, {"lease_id": "{lease}"}),
    Route(
        "POST",
        "/completions",
        P.REPORT,
        {"completions": [{"job_id": "{job}", "lease_id": "{lease}", "result": 1}]},
    ),
    Route("POST", "/jobs/bulk/cancel", P.CANCEL, {"type": "t", "dry_run": True}),
    Route("POST", "/jobs/bulk/retry", P.RETRY, {"type": "other", "dry_run": True}),
    Route("GET", "/settings", P.MANAGE_SETTINGS),
    Route("PATCH", "/settings", P.MANAGE_SETTINGS, {"retention": {"failed_days": 60}}),
    Route("GET", "/keys", P.MANAGE_KEYS),
    Route("POST", "/keys", P.MANAGE_KEYS, {"role": "admin"}),
    Route("DELETE", "/keys/{key}", P.MANAGE_KEYS),
]


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in ids.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


async def snapshot(store: Store) -> dict[str, Any]:
    async with store.database.read() as connection:
        counts = {}
        for table in ("jobs", "events", "steps", "api_keys", "sessions", "workspaces"):
            row = await connection.fetchrow(f"SELECT count(*) AS n FROM {table}")
            assert row is not None
            counts[table] = int(row["n"])
        versions = await connection.fetch(
            "SELECT CAST(id AS TEXT) AS id, version, status, lease_expires_at FROM jobs"
        )
        revoked = await connection.fetchrow(
            "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NOT NULL"
        )
        settings = await connection.fetch(
            "SELECT CAST(id AS TEXT) AS id, settings FROM workspaces ORDER BY id"
        )
    return {
        **counts,
        "jobs_state": sorted(
            (r["id"], r["version"], r["status"], str(r["lease_expires_at"])) for r in versions
        ),
        "revoked": int(revoked["n"]) if revoked else 0,
        "settings": [(r["id"], r["settings"]) for r in settings],
    }


@pytest.fixture
async def targets(client: httpx.AsyncClient, keys: dict[str, str], store: Store) -> dict[str, str]:
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    job = (await client.post("/jobs", json={"type": "t"})).json()
    [claimed] = (await client.post("/claims", json={"worker_id": "w"}, headers=worker)).json()[
        "data"
    ]
    step = await client.post(
        f"/jobs/{job['id']}/steps",
        json={"name": "s", "lease_id": claimed["lease_id"]},
        headers=worker,
    )
    failed = (await client.post("/jobs", json={"type": "other"})).json()
    await client.post(f"/jobs/{failed['id']}/cancel")
    spare = (await client.post("/keys", json={"role": "client", "name": "spare"})).json()
    revoked = (await client.post("/keys", json={"role": "admin"})).json()
    await client.delete(f"/keys/{revoked['id']}")
    return {
        "job": job["id"],
        "lease": claimed["lease_id"],
        "step": step.json()["id"],
        "failed": failed["id"],
        "key": spare["id"],
        "revoked_token": revoked["token"],
    }


def role_without(permission: Permission | None) -> Role | None:
    if permission is None:
        return None
    return next((role for role in Role if not role_allows(role, permission)), None)


CASES = ["no key", "unknown key", "not bearer", "revoked key", "wrong role", "other workspace"]


def credentials(case: str, route: Route, keys: dict[str, str], revoked: str) -> dict[str, str]:
    if case == "no key":
        return {}
    if case == "unknown key":
        return {"Authorization": f"Bearer cvk_{uuid4().hex}_not-a-secret"}
    if case == "not bearer":
        return {"Authorization": f"Basic {keys['admin']}"}
    if case == "revoked key":
        return {"Authorization": f"Bearer {revoked}"}
    if case == "wrong role":
        role = role_without(route.permission)
        assert role is not None
        return {"Authorization": f"Bearer {keys[role.value]}"}
    assert case == "other workspace"
    return {"Authorization": f"Bearer {keys['other']}"}


async def test_wrong_credentials_are_refused_and_change_nothing(
    server: RunningServer, keys: dict[str, str], store: Store, targets: dict[str, str]
) -> None:
    """Walks the whole matrix against one server and reports every failing pair."""
    failures: list[str] = []
    checked = 0
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme", timeout=10) as http:
        for route in ROUTES:
            for case in CASES:
                if case == "wrong role" and role_without(route.permission) is None:
                    continue  # every role may do it
                expected = {"wrong role": 403, "other workspace": 404}.get(case, 401)
                before = await snapshot(store)
                response = await http.request(
                    route.method,
                    fill(route.path, targets),
                    json=fill(route.body, targets) if route.body is not None else None,
                    headers=credentials(case, route, keys, targets["revoked_token"]),
                )
                checked += 1
                where = f"{route} with {case}"
                if response.status_code != expected:
                    failures.append(f"{where}: {response.status_code}, expected {expected}")
                elif response.headers["content-type"] != "application/problem+json":
                    failures.append(f"{where}: not a problem+json answer")
                elif expected == 401 and not response.headers.get(
                    "www-authenticate", ""
                ).startswith("Bearer"):
                    failures.append(f"{where}: 401 without WWW-Authenticate")
                if await snapshot(store) != before:
                    failures.append(f"{where}: changed the database")
    assert not failures, "\n".join(failures)
    assert checked > 130


async def test_the_right_key_can_do_each_route(
    client: httpx.AsyncClient, targets: dict[str, str]
) -> None:
    """The control: with the admin key the same requests go through (streams aside)."""
    for route in ROUTES:
        if "stream" in route.path:
            continue
        response = await client.request(
            route.method,
            fill(route.path, targets),
            json=fill(route.body, targets) if route.body is not None else None,
        )
        assert response.status_code < 400 or (
            response.status_code == 409 and route.path.startswith("/jobs/{job}/")
        ), f"{route}: {response.status_code} {response.text}"


async def test_cookie_sessions_need_the_csrf_token_to_change_anything(
    server: RunningServer, keys: dict[str, str], store: Store, targets: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as browser:
        signed_in = await browser.post("/v1/session", json={"api_key": keys["admin"]})
        assert signed_in.status_code == 200
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        csrf = signed_in.json()["csrf_token"]
        before = await snapshot(store)
        forged = await browser.post(f"/v1/workspaces/acme/jobs/{targets['job']}/cancel")
        assert forged.status_code == 403
        assert forged.json()["type"] == "/problems/csrf"
        assert await snapshot(store) == before
        reading = await browser.get("/v1/workspaces/acme/jobs")
        assert reading.status_code == 200
        allowed = await browser.post(
            f"/v1/workspaces/acme/jobs/{targets['job']}/cancel", headers={"X-CSRF-Token": csrf}
        )
        assert allowed.status_code == 200
        await browser.delete("/v1/session", headers={"X-CSRF-Token": csrf})
        assert (await browser.get("/v1/workspaces/acme/jobs")).status_code == 401
    bad = await WorkspaceService(store).session("not-a-session")
    assert bad is None
