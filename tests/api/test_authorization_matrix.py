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

from conveyor.domain.workspaces import INSTANCE_ONLY, Permission, Role, role_allows
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
    Route("PATCH", "/jobs/{job}/status", P.START, {"status": "RUNNING"}),
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
    # without a lease, on a job nobody holds: a workspace's own keys, never an instance worker
    Route("PATCH", "/jobs/{pending}/progress", P.REPORT_WITHOUT_LEASE, {"progress_percent": 5}),
    Route("POST", "/jobs/{pending}/steps", P.REPORT_WITHOUT_LEASE, {"name": "s"}),
    Route(
        "PATCH",
        "/jobs/{pending}/steps/{pending_step}",
        P.REPORT_WITHOUT_LEASE,
        {"status": "COMPLETED"},
    ),
    Route("POST", "/jobs/{pending}/events", P.REPORT_WITHOUT_LEASE, {"type": "ai.x"}),
    Route("POST", "/jobs/{job}/complete", P.REPORT, {"lease_id": "{lease}", "result": 1}),
    Route("POST", "/jobs/{job}/fail", P.REPORT, {"lease_id": "{lease}", "error": "e"}),
    Route("POST", "/jobs/{job}/release", P.REPORT, {"lease_id": "{lease}"}),
    Route(
        "POST",
        "/completions",
        P.REPORT,
        {"completions": [{"job_id": "{job}", "lease_id": "{lease}", "result": 1}]},
    ),
    Route("GET", "/limits", P.READ),
    Route("GET", "/limits/openai", P.READ),
    Route("PUT", "/limits/anthropic", P.MANAGE_LIMITS, {"max_running": 3}),
    Route("DELETE", "/limits/openai", P.MANAGE_LIMITS),
    Route("GET", "/schedules", P.READ),
    Route(
        "POST",
        "/schedules",
        P.MANAGE_SCHEDULES,
        {"name": "matrix-new", "cron": "@daily", "job": {"type": "t"}},
    ),
    Route("GET", "/schedules/{schedule}", P.READ),
    Route("GET", "/schedules/{schedule}/runs", P.READ),
    Route("PATCH", "/schedules/{schedule}", P.MANAGE_SCHEDULES, {"paused": True}),
    Route("POST", "/schedules/{schedule}/trigger", P.MANAGE_SCHEDULES),
    Route("DELETE", "/schedules/{schedule}", P.MANAGE_SCHEDULES),
    Route("POST", "/jobs/bulk/cancel", P.CANCEL, {"type": "t", "dry_run": True}),
    Route("POST", "/jobs/bulk/retry", P.RETRY, {"type": "other", "dry_run": True}),
    Route("GET", "/settings", P.MANAGE_SETTINGS),
    Route("PATCH", "/settings", P.MANAGE_SETTINGS, {"retention": {"failed_days": 60}}),
    Route("PATCH", "/settings", P.SET_WEIGHT, {"weight": 3, "retention": {"failed_days": 60}}),
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
        for table in (
            "jobs",
            "events",
            "steps",
            "api_keys",
            "sessions",
            "workspaces",
            "schedules",
            "schedule_runs",
            "limits",
        ):
            row = await connection.fetchrow(f"SELECT count(*) AS n FROM {table}")
            assert row is not None
            counts[table] = int(row["n"])
        versions = await connection.fetch(
            "SELECT CAST(id AS TEXT) AS id, version, status, lease_expires_at FROM jobs"
        )
        revoked = await connection.fetchrow(
            "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NOT NULL"
        )
        schedules = await connection.fetch("SELECT name, version FROM schedules")
        settings = await connection.fetch(
            "SELECT CAST(id AS TEXT) AS id, settings, weight FROM workspaces ORDER BY id"
        )
    return {
        **counts,
        "jobs_state": sorted(
            (r["id"], r["version"], r["status"], str(r["lease_expires_at"])) for r in versions
        ),
        "revoked": int(revoked["n"]) if revoked else 0,
        "schedules_state": sorted((r["name"], r["version"]) for r in schedules),
        "settings": [(r["id"], r["settings"], r["weight"]) for r in settings],
    }


def role_without(permission: Permission | None) -> Role | None:
    if permission is None:
        return None
    return next((role for role in Role if not role_allows(role, permission)), None)


CASES = [
    "no key",
    "unknown key",
    "not bearer",
    "revoked key",
    "wrong role",
    "workspace admin",  # for what only an instance admin may do
    "other workspace",
]
REFUSED_WITH = {"wrong role": 403, "workspace admin": 403, "other workspace": 404}
"""The answer to each case (401 to the rest)."""


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
    if case == "workspace admin":
        return {"Authorization": f"Bearer {keys['admin']}"}
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
                if case == "workspace admin" and route.permission not in INSTANCE_ONLY:
                    continue  # a workspace admin may do it
                expected = REFUSED_WITH.get(case, 401)
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
    assert checked > 160


async def test_the_right_key_can_do_each_route(
    client: httpx.AsyncClient, keys: dict[str, str], targets: dict[str, str]
) -> None:
    """The control: with the admin key the same requests go through (streams aside); what
    only an instance admin may do, with an instance admin key."""
    for route in ROUTES:
        if "stream" in route.path:
            continue
        instance_admin = {"Authorization": f"Bearer {keys['instance_admin']}"}
        response = await client.request(
            route.method,
            fill(route.path, targets),
            json=fill(route.body, targets) if route.body is not None else None,
            headers=instance_admin if route.permission in INSTANCE_ONLY else None,
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
        wrong_tokens = ("x", csrf[:-1], csrf + "x", csrf[::-1], "0" * len(csrf))
        for wrong in wrong_tokens:
            guessed = await browser.post(
                f"/v1/workspaces/acme/jobs/{targets['job']}/cancel",
                headers={"X-CSRF-Token": wrong},
            )
            assert guessed.status_code == 403, f"a wrong CSRF token {wrong!r} was accepted"
            assert guessed.json()["type"] == "/problems/csrf"
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


async def test_instance_keys_act_in_every_workspace_within_their_role(
    server: RunningServer, keys: dict[str, str], store: Store, targets: dict[str, str]
) -> None:
    """An instance worker key claims and reports on the jobs it holds, in any workspace,
    and nothing else (403, nothing changed); an instance admin key may do everything, in
    every workspace. A workspace that does not exist is 404 for both."""
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme", timeout=10) as http:
        for route in ROUTES:
            if "stream" in route.path:
                continue
            before = await snapshot(store)
            response = await http.request(
                route.method,
                fill(route.path, targets),
                json=fill(route.body, targets) if route.body is not None else None,
                headers={"Authorization": f"Bearer {keys['instance_worker']}"},
            )
            allowed = route.permission in (P.CLAIM, P.REPORT)
            if allowed and response.status_code in (401, 403, 404):
                failures.append(f"instance worker {route}: {response.status_code}, allowed")
            if not allowed:
                if response.status_code != 403:
                    failures.append(f"instance worker {route}: {response.status_code}, not 403")
                elif (
                    route.permission not in INSTANCE_ONLY  # refused first for its settings
                    and response.json().get("permission") != route.permission
                ):
                    failures.append(
                        f"instance worker {route}: {response.json()}, not its permission"
                    )
                if await snapshot(store) != before:
                    failures.append(f"instance worker {route}: changed the database")
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/other",
        headers={"Authorization": f"Bearer {keys['instance_admin']}"},
        timeout=10,
    ) as other:
        for method, path, body in (
            ("POST", "/jobs", {"type": "t"}),
            ("GET", "/jobs", None),
            ("PUT", "/limits/x", {"paused": True}),
            ("POST", "/keys", {"role": "client"}),
            ("GET", "/stats", None),
        ):
            response = await other.request(method, path, json=body)
            if response.status_code >= 400:
                failures.append(f"instance admin {method} {path}: {response.status_code}")
        missing = await other.get(f"{server.url}/v1/workspaces/nowhere/jobs")
        if missing.status_code != 404:
            failures.append(f"instance admin on a missing workspace: {missing.status_code}")
    assert not failures, "\n".join(failures)


async def test_claims_across_workspaces_need_an_instance_key_to_cross(
    server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    """`POST /v1/claims`: an instance worker claims from every workspace (or those it
    names) and each job says its workspace; a workspace's key claims from its own alone."""
    await client.post("/jobs", json={"type": "t"})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        admin_of_other = {"Authorization": f"Bearer {keys['other']}"}
        await http.post("/v1/workspaces/other/jobs", json={"type": "t"}, headers=admin_of_other)
        worker = {"Authorization": f"Bearer {keys['worker']}"}
        crossing = await http.post(
            "/v1/claims", json={"worker_id": "w", "workspaces": ["other"]}, headers=worker
        )
        assert crossing.status_code == 404, crossing.text
        own = await http.post("/v1/claims", json={"worker_id": "w", "limit": 5}, headers=worker)
        assert [job["workspace"] for job in own.json()["data"]] == ["acme"]
        instance = {"Authorization": f"Bearer {keys['instance_worker']}"}
        named = await http.post(
            "/v1/claims",
            json={"worker_id": "w", "limit": 5, "workspaces": ["other"]},
            headers=instance,
        )
        [job] = named.json()["data"]
        assert (job["workspace"], job["workspace_id"] is not None) == ("other", True)
        client_key = {"Authorization": f"Bearer {keys['client']}"}
        refused = await http.post("/v1/claims", json={"worker_id": "w"}, headers=client_key)
        assert refused.status_code == 403


LEASELESS_REPORTS: list[tuple[str, str, dict[str, Any]]] = [
    ("PATCH", "/jobs/{job_id}/progress", {"progress_percent": 0}),
    ("PATCH", "/jobs/{job_id}/progress", {"progress_percent": 40, "message": "halfway"}),
    ("POST", "/jobs/{job_id}/steps", {"name": "probe"}),
    ("PATCH", "/jobs/{job_id}/steps/{step_id}", {"status": "COMPLETED", "output": "o"}),
    ("POST", "/jobs/{job_id}/events", {"type": "ai.tool_called", "payload": {"x": 1}}),
    ("PATCH", "/jobs/{job_id}/status", {"status": "COMPLETED", "result": 1}),
    ("PATCH", "/jobs/{job_id}/status", {"status": "FAILED", "error": "e"}),
    ("PATCH", "/jobs/{job_id}/status", {"status": "PENDING"}),
]
"""Every report whose `lease_id` may be left out, as an instance worker would send it."""


async def _job_as_its_workspace_sees_it(
    http: httpx.AsyncClient, workspace: str, job_id: str, admin: str
) -> dict[str, Any]:
    response = await http.get(
        f"/v1/workspaces/{workspace}/jobs/{job_id}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_an_instance_worker_reports_only_on_the_jobs_it_holds(
    server: RunningServer, keys: dict[str, str], store: Store
) -> None:
    """Without a lease, an instance worker's report on a PENDING or QUEUED job of any
    workspace is a 403 that writes nothing (no version, progress, event or step) and says
    nothing of the job; with a wrong lease it is the usual 409 lease-lost; with the lease
    of a job it holds it goes through. The job's own workspace worker may still report
    without a lease (the control: the same request would have written)."""
    instance = {"Authorization": f"Bearer {keys['instance_worker']}"}
    secret = "the payload only the workspace may read"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        owners = {"acme": keys["admin"], "other": keys["other"]}
        jobs: dict[str, dict[str, Any]] = {}
        steps: dict[str, str] = {}
        for workspace, hold in (("acme", False), ("other", True)):  # QUEUED, PENDING
            admin = {"Authorization": f"Bearer {owners[workspace]}"}
            created = await http.post(
                f"/v1/workspaces/{workspace}/jobs",
                json={"type": "private.report", "hold": hold, "payload": {"secret": secret}},
                headers=admin,
            )
            job = created.json()
            step = await http.post(
                f"/v1/workspaces/{workspace}/jobs/{job['id']}/steps",
                json={"name": "set-up"},
                headers=admin,
            )
            assert step.status_code == 201, step.text
            steps[workspace] = step.json()["id"]
            jobs[workspace] = await _job_as_its_workspace_sees_it(
                http, workspace, job["id"], owners[workspace]
            )
        assert {job["status"] for job in jobs.values()} == {"QUEUED", "PENDING"}

        failures: list[str] = []
        before = await snapshot(store)
        for workspace, job in jobs.items():
            ids = {"job_id": job["id"], "step_id": steps[workspace]}
            for method, path, body in LEASELESS_REPORTS:
                response = await http.request(
                    method,
                    f"/v1/workspaces/{workspace}" + path.format(**ids),
                    json=body,
                    headers=instance,
                )
                where = f"{method} {path} {body} on {workspace}'s {job['status']} job"
                if response.status_code != 403:
                    failures.append(f"{where}: {response.status_code} {response.text}")
                    continue
                problem = response.json()
                if response.headers["content-type"] != "application/problem+json":
                    failures.append(f"{where}: not a problem+json answer")
                if problem.get("permission") != "report_without_lease":
                    failures.append(f"{where}: permission {problem.get('permission')}")
                if "only on the jobs it holds" not in problem.get("detail", ""):
                    failures.append(f"{where}: detail {problem.get('detail')!r}")
                if any(told in response.text for told in (secret, job["type"], job["status"])):
                    failures.append(f"{where}: the answer tells of the job")
        assert not failures, "\n".join(failures)
        assert await snapshot(store) == before
        for workspace, job in jobs.items():
            now = await _job_as_its_workspace_sees_it(http, workspace, job["id"], owners[workspace])
            assert now["version"] == job["version"]
            assert now["progress_percent"] == job["progress_percent"]
            assert now["events"] == job["events"]
            assert [(s["id"], s["status"]) for s in now["steps"]] == [(steps[workspace], "RUNNING")]

        # A lease that is not the job's: as for any worker, 409 lease-lost, nothing written.
        for workspace, job in jobs.items():
            wrong = await http.patch(
                f"/v1/workspaces/{workspace}/jobs/{job['id']}/progress",
                json={"progress_percent": 1, "lease_id": str(uuid4())},
                headers=instance,
            )
            assert wrong.status_code == 409, wrong.text
            assert wrong.json()["type"] == "/problems/lease-lost"
            assert secret not in wrong.text
        assert await snapshot(store) == before

        # The job's own workspace worker may report without a lease on its queued job.
        own_worker = {"Authorization": f"Bearer {keys['worker']}"}
        allowed = await http.patch(
            f"/v1/workspaces/acme/jobs/{jobs['acme']['id']}/progress",
            json={"progress_percent": 10},
            headers=own_worker,
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["version"] == jobs["acme"]["version"] + 1

        # Once the instance worker holds the job, it reports with its lease.
        claimed = await http.post(
            "/v1/claims", json={"worker_id": "pool", "workspaces": ["acme"]}, headers=instance
        )
        [held] = claimed.json()["data"]
        assert held["id"] == jobs["acme"]["id"]
        for method, path, body in (
            ("PATCH", "/jobs/{job_id}/progress", {"progress_percent": 50}),
            ("POST", "/jobs/{job_id}/events", {"type": "ai.tool_called"}),
            ("POST", "/jobs/{job_id}/steps", {"name": "work"}),
        ):
            reported = await http.request(
                method,
                "/v1/workspaces/acme" + path.format(job_id=held["id"]),
                json={**body, "lease_id": held["lease_id"]},
                headers=instance,
            )
            assert reported.status_code < 300, f"{method} {path}: {reported.text}"


async def test_every_report_that_may_leave_out_its_lease_is_checked(
    server: RunningServer,
) -> None:
    """The lease-less rule holds on the routes above: any route whose body takes an optional
    `lease_id` must be among them (a new one would otherwise escape the test)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        schema = (await http.get("/openapi.json")).json()
    optional: set[str] = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            reference = content.get("application/json", {}).get("schema", {}).get("$ref")
            if reference is None:
                continue
            body = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
            if "lease_id" in body.get("properties", {}) and "lease_id" not in body.get(
                "required", []
            ):
                optional.add(f"{method.upper()} {path}")
    checked = {f"{method} /v1/workspaces/{{ws}}{path}" for method, path, _ in LEASELESS_REPORTS}
    assert optional == checked


async def test_a_key_that_may_not_report_hears_so_with_or_without_a_lease(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """A client key's `PATCH …/status` to COMPLETED is refused for `report` whether or not
    it sends a lease: without one it was told `report_without_lease`, as if only its lease
    were missing."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    client = {"Authorization": f"Bearer {keys['client']}"}
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme") as http:
        job = (await http.post("/jobs", json={"type": "t"}, headers=admin)).json()
        for body in ({"status": "COMPLETED"}, {"status": "COMPLETED", "lease_id": str(uuid4())}):
            refused = await http.patch(f"/jobs/{job['id']}/status", json=body, headers=client)
            assert refused.status_code == 403, refused.text
            assert refused.json()["permission"] == "report", (body, refused.json())
