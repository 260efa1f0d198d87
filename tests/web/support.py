"""What the dashboard's browser tests share: a watched Chromium page (console errors,
uncaught exceptions and Content-Security-Policy violations fail the test), a worker over
HTTP, and a workspace with an hour of history."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from playwright.async_api import Browser, ConsoleMessage, Locator, Page, ViewportSize, expect

from conveyor.store import Store
from tests.support.server import RunningServer

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
WS = "/v1/workspaces/acme"

expect.set_options(timeout=10_000)

# Registered before any page script runs (Playwright injects it outside the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


# -- a watched browser page -----------------------------------------------------------------


@dataclass
class Dashboard:
    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)

    async def sign_in(self, key: str) -> None:
        page = self.page
        await page.goto(f"{self.base_url}/")
        await expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
        await page.get_by_label("API key").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(
            page.get_by_test_id("sign-out"), "signed in: the header shows Sign out"
        ).to_be_visible()
        # Set once: if the page ever reloads, this is gone (live updates must not reload).
        await page.evaluate("window.__sameDocument = true")

    async def go(self, route: str) -> None:
        await self.page.evaluate("route => { location.hash = route; }", route)

    async def still_same_document(self) -> bool:
        return bool(await self.page.evaluate("window.__sameDocument === true"))

    def nav(self, name: str) -> Locator:
        return self.page.get_by_role("navigation", name="Main").get_by_role(
            "link", name=name, exact=True
        )

    async def new_job_dialog(self, job_type: str) -> Locator:
        """Opens the New job dialog from the jobs page and types the job's type into it."""
        await self.go("#/jobs")
        await self.page.get_by_test_id("new-job").click()
        dialog = self.page.get_by_test_id("new-job-dialog")
        await dialog.get_by_label("Type").fill(job_type)
        return dialog

    async def new_limit_dialog(self, name: str) -> Locator:
        """Opens the New limit dialog from the Limits page and types the limit's name."""
        await self.nav("Limits").click()
        await self.page.get_by_test_id("new-limit").click()
        dialog = self.page.get_by_test_id("limit-dialog")
        await dialog.get_by_label("Name").fill(name)
        return dialog

    def job_row(self, job_id: str) -> Locator:
        return self.page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')

    async def watch(self) -> None:
        """Collect the page's console errors and uncaught exceptions in `problems`, and its
        CSP violations for `assert_clean`."""

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not _expected(message):
                self.problems.append(f"console error: {message.text} ({message.location})")

        self.page.on("console", on_console)
        self.page.on(
            "pageerror", lambda error: self.problems.append(f"uncaught exception: {error}")
        )
        await self.page.add_init_script(WATCH_CSP)

    async def new_tab(self, route: str) -> Dashboard:
        """Another tab of the same browser profile (signed in by the same cookie) at `route`,
        watched like this one: its problems are this one's too."""
        tab = Dashboard(await self.page.context.new_page(), self.base_url, self.problems)
        await tab.watch()
        await tab.page.goto(f"{self.base_url}/{route}")
        return tab

    async def assert_clean(self) -> None:
        violations = await self.page.evaluate("window.__cspViolations || []")
        found = self.problems + [f"CSP violation: {item}" for item in violations]
        assert not found, "the page reported problems:\n" + "\n".join(found)

    async def screenshot(self, path: Path, *, full_page: bool = False) -> None:
        """Save the page as a PNG at `path`, whole: a test run on both databases in two
        processes at once writes the same file twice, and the last one wins."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if full_page:  # from the top, where the sticky header belongs
            await self.page.evaluate("window.scrollTo(0, 0)")
        image = await self.page.screenshot(full_page=full_page)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_bytes(image)
        partial.replace(path)


def _expected(message: ConsoleMessage) -> bool:
    """The one error the browser logs by design: asking for the session before signing in
    answers 401 (GET /v1/session has no 'not signed in' answer other than 401)."""
    url = (message.location or {}).get("url", "")
    return "status of 401" in message.text and url.endswith("/v1/session")


@asynccontextmanager
async def dashboard(
    browser: Browser,
    server: RunningServer,
    *,
    viewport: ViewportSize = VIEWPORT,
    timezone_id: str | None = None,
    locale: str | None = None,
) -> AsyncIterator[Dashboard]:
    """A watched page in a browser context of its own (its own cookie jar); `timezone_id`
    and `locale` are the browser's (None: the machine's)."""
    context = await browser.new_context(viewport=viewport, timezone_id=timezone_id, locale=locale)
    watched = Dashboard(await context.new_page(), server.url)
    await watched.watch()
    context.set_default_timeout(10_000)
    try:
        yield watched
    except Exception as error:
        if watched.problems:  # a script error is usually why a step timed out
            error.add_note("the page reported:\n" + "\n".join(watched.problems))
        raise
    finally:
        await context.close()  # streams end before the server does


# -- the worker side, over HTTP ---------------------------------------------------------------


@dataclass
class Worker:
    http: httpx.AsyncClient
    worker_id: str = "w"

    async def call(self, method: str, path: str, body: Any, status: int = 200) -> Any:
        response = await self.http.request(method, f"{WS}{path}", json=body)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json()

    async def claim(
        self, *, types: list[str] | None = None, limit: int = 1
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"worker_id": self.worker_id, "limit": limit, "lease_seconds": 600}
        if types:
            body["types"] = types
        claimed: list[dict[str, Any]] = (await self.call("POST", "/claims", body))["data"]
        return claimed

    async def claim_one(self, job_id: str, job_type: str) -> str:
        claimed = await self.claim(types=[job_type])
        assert [job["id"] for job in claimed] == [job_id], f"claimed {claimed}"
        return str(claimed[0]["lease_id"])

    async def progress(self, job_id: str, lease: str, percent: int, message: str) -> None:
        await self.call(
            "PATCH",
            f"/jobs/{job_id}/progress",
            {"progress_percent": percent, "lease_id": lease, "message": message},
        )

    async def event(self, job_id: str, lease: str, event_type: str, payload: Any) -> None:
        await self.call(
            "POST",
            f"/jobs/{job_id}/events",
            {"type": event_type, "payload": payload, "lease_id": lease},
            201,
        )

    async def step(
        self,
        job_id: str,
        lease: str,
        name: str,
        *,
        kind: str = "COMMAND",
        phase: str = "EXECUTION",
        output: str | None = None,
        tokens: tuple[int, int] | None = None,
        status: str | None = "COMPLETED",
    ) -> None:
        step = await self.call(
            "POST",
            f"/jobs/{job_id}/steps",
            {"name": name, "type": kind, "phase": phase, "lease_id": lease},
            201,
        )
        update: dict[str, Any] = {"lease_id": lease}
        if output is not None:
            update["output"] = output
        if tokens is not None:
            update["tokens_input"], update["tokens_output"] = tokens
        if status is not None:
            update["status"] = status
        await self.call("PATCH", f"/jobs/{job_id}/steps/{step['id']}", update)

    async def complete(self, job_id: str, lease: str, result: Any) -> None:
        await self.call("POST", f"/jobs/{job_id}/complete", {"lease_id": lease, "result": result})

    async def fail(self, job_id: str, lease: str, error: str) -> None:
        await self.call("POST", f"/jobs/{job_id}/fail", {"lease_id": lease, "error": error})


@asynccontextmanager
async def as_key(server: RunningServer, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=15
    ) as http:
        yield http


async def create(client: httpx.AsyncClient, job_type: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/jobs", json={"type": job_type, **body})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


# -- a workspace with history ------------------------------------------------------------------


async def backdate(store: Store, job_id: str, finished_seconds_ago: float, took: float) -> None:
    """Spread finish times over the last hour, so the throughput chart shows an hour of
    work (test set-up only: the API, rightly, has no way to rewrite history)."""
    async with store.database.write() as connection:
        await connection.execute(
            "UPDATE jobs SET completed_at = conveyor_after(:done), "
            "started_at = conveyor_after(:start), created_at = conveyor_after(:created), "
            "run_at = conveyor_after(:created) WHERE id = :id",
            {
                "id": UUID(job_id),
                "done": -finished_seconds_ago,
                "start": -finished_seconds_ago - took,
                "created": -finished_seconds_ago - took - 2,
            },
        )


async def populate(
    store: Store, server: RunningServer, keys: dict[str, str], admin: httpx.AsyncClient
) -> None:
    """A workspace with an hour of history: finished jobs of several types, some running
    with progress and steps, some waiting."""
    rng = random.Random(7)
    types = ["email.send", "report.build", "ai.summarize", "image.resize"]
    async with as_key(server, keys["worker"]) as http:
        batch = [
            {"type": rng.choice(types), "payload": {"n": n}, "priority": rng.randint(1, 9)}
            for n in range(90)
        ]
        created = await admin.post("/jobs/batch", json={"jobs": batch})
        assert created.status_code == 201, created.text
        workers = [Worker(http, name) for name in ("worker-a", "worker-b", "worker-c")]
        finished = 0
        for index in range(0, 90, 30):
            claimed = await workers[index // 30].claim(limit=30)
            for job in claimed:
                roll = rng.random()
                if roll < 0.08:
                    await workers[0].fail(job["id"], job["lease_id"], "upstream timed out")
                else:
                    await workers[0].complete(job["id"], job["lease_id"], {"ok": True})
                minutes_ago = rng.triangular(0, 58, 8)
                await backdate(store, job["id"], minutes_ago * 60, rng.uniform(0.5, 40))
                finished += 1
        for n in range(3):
            job = await create(admin, "ai.summarize", payload={"doc": n}, priority=3)
            cancelled = await admin.post(f"/jobs/{job['id']}/cancel")
            assert cancelled.status_code == 200
            await backdate(store, job["id"], rng.uniform(60, 3000), 1)
        running = []
        for n, worker in enumerate(workers[:2]):
            job = await create(admin, "report.build", payload={"quarter": n + 1}, priority=2)
            lease = await worker.claim_one(job["id"], "report.build")
            await worker.step(job["id"], lease, "load data", output="42,118 rows\n", tokens=None)
            await worker.step(
                job["id"], lease, "draft summary", kind="AI_ACTION", tokens=(5120, 880)
            )
            await worker.progress(job["id"], lease, 35 + 30 * n, "rendering charts")
            running.append(job)
        for n in range(6):
            await create(admin, rng.choice(types), payload={"wave": n}, priority=rng.randint(1, 9))
    await asyncio.sleep(2.1)  # past the server's stats cache
